() => {
  // Diffusion Lab's layout helper (pages/layout.py loads this file; it runs once per page).
  //
  // 1. Narrow plots: a Plotly figure with subplots side by side (tab 1's 2×2 schedules, the
  //    1×2 / 1×3 figures of tabs 3 and 4) is restacked one subplot per row on a phone, or
  //    where a column would be narrower than STACK_COL_PX: new axis domains, a taller figure,
  //    subplot titles moved with their subplot. In presentation mode a grid's rows get GAP px
  //    between them (room for the larger text).
  // 2. Phones (viewport below NARROW px): an animation's slider gets a line of its own below
  //    its ▶/❚❚ buttons; titles wider than the figure get a smaller font.
  // 3. Presentation mode (body.dl-present, set by the checkbox at the top of the app): plot
  //    fonts × FONT_SCALE and lines × LINE_SCALE through Plotly.relayout / restyle, so Plotly
  //    lays the bigger text out itself (automargin) rather than CSS enlarging text it placed.
  //    Explanation accordions and advanced settings are tagged .dl-explain (hidden by the CSS).
  // 4. Tab bars (they scroll sideways on a phone) keep the selected tab in view.
  //
  // Every value changed on a figure is first recorded (its value from the server) on the
  // figure's own layout object; when the wanted state changes (width, mode) the figure goes
  // back to those values and the new state is applied from scratch. A new figure from the
  // server comes with a new layout object and is adjusted afresh; the same one never twice.
  if (window.dlLayout) return;
  const NARROW = __NARROW__;
  const FONT_SCALE = __FONT_SCALE__;
  const LINE_SCALE = __LINE_SCALE__;
  const EXPLAIN = __EXPLAIN__;  // accordion label prefixes hidden in presentation mode
  const STACK_MAX = 6;          // figures with more subplots (image grids) are left alone
  const STACK_COL_PX = {normal: 200, present: 220};  // narrower columns get stacked
  const GAP = 84;  // px between stacked rows: tick labels, an axis title, the next row's title
  const narrowQuery = window.matchMedia(`(max-width: ${NARROW - 0.02}px)`);

  const get = (obj, path) => path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
  const orNull = (v) => (v === undefined ? null : v);

  // The subplots of gd's layout (make_subplots anchors each x axis to its y axis), top row
  // first, left to right, with their domains; null when gd is not a grid of 2..STACK_MAX
  // subplots side by side, each with its own x and y axis. Read from the layout, not from
  // Plotly's full layout, which leaves out a subplot that has no traces yet.
  function grid(gd) {
    const lay = gd.layout, list = [], ys = new Set();
    for (const xn of Object.keys(lay).filter((k) => /^xaxis\d*$/.test(k))) {
      const xa = lay[xn];
      if (!xa || xa.overlaying) continue;
      if (!/^y\d*$/.test(xa.anchor || '')) return null;
      const yn = 'yaxis' + xa.anchor.slice(1), ya = lay[yn];
      if (!ya || ys.has(yn)) return null;
      ys.add(yn);
      list.push({xn, yn, xd: (xa.domain || [0, 1]).slice(), yd: (ya.domain || [0, 1]).slice()});
    }
    if (list.length < 2 || list.length > STACK_MAX) return null;
    if (new Set(list.map((s) => s.xd[0].toFixed(3))).size < 2) return null;  // one per row already
    list.sort((a, b) => (b.yd[1] - a.yd[1]) || (a.xd[0] - b.xd[0]));
    return list;
  }

  // One figure's adjustments: `set(key, value)` records the server's value of key (once) and
  // queues the change; `flush()` sends the queued changes to Plotly.
  function editor(gd) {
    const lay = gd.layout, rec = lay._dl.orig;
    let upd = {};
    return {
      set(key, value) {
        if (!(key in rec)) rec[key] = orNull(get(lay, key.replace(/\[(\d+)\]/g, '.$1')));
        upd[key] = value;
      },
      flush() {
        const u = upd; upd = {};
        return Object.keys(u).length ? window.Plotly.relayout(gd, u) : null;
      },
    };
  }

  // Stacked: one subplot per row, full width. Otherwise (presentation mode, several rows):
  // the same columns, rows keep their height and get GAP px between them for the larger text.
  function respace(gd, ed, list, stacked, on) {
    const fl = gd._fullLayout, lay = gd.layout, oldH = fl._size.h;
    const gap = Math.round(GAP * (on ? FONT_SCALE : 1));
    const tops = [...new Set(list.map((s) => s.yd[1].toFixed(3)))];
    const rows = stacked ? list.map((s) => [s])
      : tops.map((t) => list.filter((s) => s.yd[1].toFixed(3) === t));
    if (rows.length < 2) return null;
    const panel = Math.round(Math.min(300, Math.max(190, fl.width * 0.62)));
    const heights = rows.map((r) => (stacked ? panel : (r[0].yd[1] - r[0].yd[0]) * oldH));
    const plotH = heights.reduce((a, b) => a + b, 0) + (rows.length - 1) * gap;
    ed.set('height', Math.round(plotH + fl.margin.t + fl.margin.b));
    let top = 0;
    rows.forEach((r, k) => {
      for (const s of r) {
        s.nd = [1 - (top + heights[k]) / plotH, 1 - top / plotH];
        s.nx = stacked ? [0, 1] : s.xd;
        if (stacked) ed.set(s.xn + '.domain', s.nx);
        ed.set(s.yn + '.domain', s.nd);
      }
      top += heights[k] + gap;
    });
    // Paper-placed annotations on or just above a subplot (make_subplots' titles) move with it.
    (lay.annotations || []).forEach((a, i) => {
      if ((a.xref || 'paper') !== 'paper' || (a.yref || 'paper') !== 'paper') return;
      const x = a.x ?? 0.5, y = a.y ?? 0.5;
      const s = list.find((s) => x >= s.xd[0] - 0.02 && x <= s.xd[1] + 0.02 &&
                                 y >= s.yd[0] - 0.02 && y <= s.yd[1] + 0.12);
      if (!s) return;
      if (stacked) ed.set(`annotations[${i}].x`, (x - s.xd[0]) / (s.xd[1] - s.xd[0]));
      ed.set(`annotations[${i}].y`, y <= s.yd[1]
        ? s.nd[0] + (y - s.yd[0]) / (s.yd[1] - s.yd[0]) * (s.nd[1] - s.nd[0])
        : s.nd[1] + (y - s.yd[1]) * oldH / plotH);  // keeps its pixel offset above the subplot
    });
    // A legend above the plot keeps its distance in pixels, not in (now taller) paper units.
    const ly = get(fl, 'legend.y');
    if (fl.showlegend && typeof ly === 'number' && ly > 1) ed.set('legend.y', 1 + (ly - 1) * oldH / plotH);
    return ed.flush();
  }

  // An animation's ▶/❚❚ buttons and its slider share one line on a wide screen; on a phone
  // the slider gets the whole width, on a line of its own below the buttons.
  function widenSliders(gd, ed) {
    const fl = gd._fullLayout, h = fl._size.h, menus = fl.updatemenus || [];
    let extra = 0;
    (fl.sliders || []).forEach((s, i) => {
      if (s.len > 0.9) return;
      ed.set(`sliders[${i}].x`, 0);
      ed.set(`sliders[${i}].len`, 1);
      if (menus.length) {
        ed.set(`sliders[${i}].y`, Math.min(...menus.map((m) => m.y)) - 40 / h);
        extra = 40;
      }
    });
    if (extra) {
      ed.set('margin.b', fl.margin.b + extra);
      ed.set('height', fl.height + extra);
    }
    return ed.flush();
  }

  async function present(gd, ed) {
    const fl = gd._fullLayout, lay = gd.layout;
    const scale = (key, full) => {
      if (typeof full === 'number') ed.set(key, Math.round(full * FONT_SCALE * 10) / 10);
    };
    scale('font.size', get(fl, 'font.size'));
    ed.set('margin.t', Math.round(fl.margin.t * FONT_SCALE));  // the title's larger font
    if (get(fl, 'title.text')) scale('title.font.size', get(fl, 'title.font.size'));
    if (fl.showlegend) scale('legend.font.size', get(fl, 'legend.font.size'));
    for (const k of Object.keys(fl)) {
      if (!/^[xy]axis\d*$/.test(k) || !fl[k] || fl[k].visible === false) continue;
      scale(k + '.tickfont.size', get(fl[k], 'tickfont.size'));
      if (get(fl[k], 'title.text')) scale(k + '.title.font.size', get(fl[k], 'title.font.size'));
      ed.set(k + '.automargin', true);
    }
    (fl.annotations || []).forEach((a, i) => scale(`annotations[${i}].font.size`, get(a, 'font.size')));
    (fl.sliders || []).forEach((s, i) => {
      scale(`sliders[${i}].font.size`, get(s, 'font.size'));
      scale(`sliders[${i}].currentvalue.font.size`, get(s, 'currentvalue.font.size'));
    });
    (fl.updatemenus || []).forEach((m, i) => scale(`updatemenus[${i}].font.size`, get(m, 'font.size')));
    const d = lay._dl;
    (gd._fullData || []).forEach((t) => {
      const w = get(t, 'line.width');
      if (typeof w !== 'number' || w <= 0 || !(t.mode || 'lines').includes('lines')) return;
      d.idx.push(t.index); d.widths.push(orNull(get(gd.data[t.index], 'line.width')));
      d.newWidths.push(w * LINE_SCALE);
    });
    if (d.idx.length) await window.Plotly.restyle(gd, {'line.width': d.newWidths}, d.idx);
    return ed.flush();
  }

  // A title or subplot title that sticks out of the figure gets a smaller font.
  function fitTexts(gd, ed) {
    const fl = gd._fullLayout, box = gd.getBoundingClientRect();
    const shrink = (key, el, size) => {
      const r = el && el.getBoundingClientRect();
      if (!r || !r.width || !size) return;
      const mid = (r.left + r.right) / 2, half = r.width / 2;
      const room = Math.min(box.right - 4 - mid, mid - box.left - 4);
      if (room < half) ed.set(key, Math.max(9, Math.floor(size * room / half)));
    };
    shrink('title.font.size', gd.querySelector('.infolayer .gtitle'), get(fl, 'title.font.size'));
    for (const g of gd.querySelectorAll('.infolayer .annotation[data-index]')) {
      const i = +g.getAttribute('data-index');
      shrink(`annotations[${i}].font.size`, g, get(fl, `annotations.${i}.font.size`));
    }
    return ed.flush();
  }

  // Back to the figure as the server sent it.
  async function restore(gd) {
    const d = gd.layout._dl;
    if (d.idx.length) await window.Plotly.restyle(gd, {'line.width': d.widths}, d.idx);
    if (Object.keys(d.orig).length) await window.Plotly.relayout(gd, d.orig);
    gd.layout._dl = null;
  }

  async function adjust(gd, narrow, on) {
    const lay = gd.layout, fl = gd._fullLayout;
    const g = lay._dl ? lay._dl.grid : grid(gd);
    const col = g ? fl._size.w * Math.min(...g.map((s) => s.xd[1] - s.xd[0])) : Infinity;
    const stacked = narrow || col < STACK_COL_PX[on ? 'present' : 'normal'];
    const want = `${g && stacked ? 'stack' : ''}|${narrow ? 'phone' : ''}|${on ? 'present' : ''}`;
    if ((lay._dl ? lay._dl.state : '||') === want) return;
    if (lay._dl) await restore(gd);
    if (want === '||') return;
    lay._dl = {state: want, grid: g, orig: {}, idx: [], widths: [], newWidths: []};
    const ed = editor(gd);
    if (g && (stacked || on)) await respace(gd, ed, g.map((s) => ({...s})), stacked, on);
    if (narrow) await widenSliders(gd, ed);
    if (on) await present(gd, ed);
    if (narrow || on) await fitTexts(gd, ed);
  }

  let busy = false, again = false;
  async function fixPlots() {
    if (!window.Plotly) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      const on = document.body.classList.contains('dl-present'), narrow = narrowQuery.matches;
      for (const gd of document.querySelectorAll('.js-plotly-plot')) {
        const lay = gd.layout;
        if (!lay || !gd._fullLayout || !gd.offsetParent || lay._dlFailed) continue;
        try {
          // A column that changed width without a window resize (presentation mode's CSS)
          // leaves the drawing at the old width (Plotly's autosize wrote it into the layout,
          // with the server's height, so Plots.resize does nothing): redraw at the new width.
          if (gd.clientWidth && Math.abs(gd.clientWidth - gd._fullLayout.width) > 2) {
            await window.Plotly.relayout(gd, {width: gd.clientWidth});
          }
          await adjust(gd, narrow, on);
        } catch (err) {
          lay._dlFailed = true;  // never retry a figure Plotly refused (no loop of errors)
          console.warn('dlLayout', err);
        }
        lay._dlSeen = true;  // looked at (the browser tests wait for it)
      }
    } finally {
      busy = false;
      if (again) { again = false; schedule(); }
    }
  }

  function tagExplanations() {
    for (const b of document.querySelectorAll('.gr-accordion > .label-wrap:not([data-dl])')) {
      b.setAttribute('data-dl', '1');
      const text = b.innerText.trim();
      if (EXPLAIN.some((p) => text.startsWith(p))) b.parentElement.classList.add('dl-explain');
    }
  }

  const lastTab = new WeakMap();
  function showSelectedTabs() {
    for (const bar of document.querySelectorAll(
        '#dl-tabs > .tab-wrapper > .tab-container[role=tablist], ' +
        '.dl-subtabs > .tab-wrapper > .tab-container[role=tablist]')) {
      const sel = bar.querySelector('[role=tab][aria-selected=true]');
      if (!sel || lastTab.get(bar) === sel) continue;
      lastTab.set(bar, sel);
      if (bar.scrollWidth > bar.clientWidth) {  // scroll the bar only (never the page)
        bar.scrollLeft = sel.offsetLeft - (bar.clientWidth - sel.offsetWidth) / 2;
      }
    }
  }

  let timer = null;
  function schedule() {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      tagExplanations();
      showSelectedTabs();
      fixPlots();
    }, 60);
  }

  // Presentation mode is switched by the checkbox's own JS (pages/layout.py), which calls this.
  window.dlLayout = {refresh: schedule};

  // The choice this browser remembered: on at once, and the checkbox ticked (its change event
  // stores it again) as soon as it is on the page.
  let remembered = false;
  try { remembered = localStorage.getItem('dl-present') === '1'; } catch (e) { /* private */ }
  if (remembered) {
    document.body.classList.add('dl-present');
    // Keep at it for a while: a click before Gradio has wired the checkbox is lost (seen in
    // a loaded test run). Stop once the learner turns it off (the stored choice says '0').
    const tick = (tries) => {
      let stored = '1';
      try { stored = localStorage.getItem('dl-present'); } catch (e) { /* private */ }
      if (stored !== '1' || tries <= 0) return;
      const box = document.querySelector('#dl-present-box input[type=checkbox]');
      if (box && !box.checked) box.click();
      setTimeout(() => tick(tries - 1), 300);
    };
    setTimeout(() => tick(60), 300);
  }
  new MutationObserver(schedule).observe(document.body, {childList: true, subtree: true,
                                                         attributes: true,
                                                         attributeFilter: ['aria-selected']});
  window.addEventListener('resize', schedule);
  schedule();
}
