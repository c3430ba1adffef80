() => {
  // Tab 3's vector field follows its t slider at once (pages/toy2d: FIELD_FAST_JS loads this
  // file once per page, with __CONFIG__ filled in).
  //
  // After ▶ Train the server sends, once, the learned field at every t (a "field table" in
  // layout.meta.dl_field_table of one field figure: pages/toy2d/figures.py field_table_meta).
  // On each `input` event of the t slider (a key press, a drag step) this draws the field for
  // the new t from it at once — the cloud x_t, the arrows and the title, as the server's
  // vector_field_figure draws them — while the slider's own event still goes to the server,
  // whose figure (hover numbers, marker colours) follows and stays the source of truth.
  //
  // A table draws only on a figure of the same weights (layout.meta.dl_field.key: the session
  // and its training step) that shows the learned field; ▶ Train drops it (drop()), so no
  // other weights' field is ever drawn. A small step (the view's half-width moves < 1 %)
  // rewrites the three traces' SVG in place through Plotly's own axis mappings (c2p), a few
  // ms; a larger one is one Plotly.update of the traces, the axes and the title. A server
  // figure for an older t (an answer overtaken by newer key presses) is redrawn for the
  // slider's t as soon as Plotly has drawn it.
  //
  // While the keys keep coming, the server's answers are kept, not drawn: a full Plotly redraw
  // of the field figure costs 5–10× a bare one-trace plot's and would hold up the next key
  // press. The newest answer is drawn once the slider has rested QUIET_MS (its marker colours,
  // colour bar and hover numbers then catch up); any other figure for the plot (another Show,
  // another model, ▶ Play) is drawn at once and replaces a kept one.
  if (window.__dlToyField) return [];
  const CFG = __CONFIG__;  // {plot: elem_id of the field's gr.Plot, slider: of the t slider}
  const QUIET_MS = 700;
  const F = window.__dlToyField = {table: null, pending: null, kept: null, lastInput: -1e9};

  const bytes = (s) => {
    const b = atob(s), u = new Uint8Array(b.length);
    for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i);
    return u;
  };
  const typed = (s, T) => new T(bytes(s).buffer);
  const inflate = async (s) => new Uint8Array(await new Response(
    new Blob([bytes(s)]).stream().pipeThrough(new DecompressionStream('deflate'))).arrayBuffer());

  // Keep the table of figure meta `m` (dl_field_table); async (the tips are zlib-compressed).
  F.take = async (m) => {
    if (!m || !m.key || (F.table && F.table.key === m.key) || F.pending === m.key) return;
    F.pending = m.key;
    const delta = await inflate(m.tips);
    if (F.pending !== m.key) return;  // dropped or replaced meanwhile
    install();
    const t = typed(m.t, Int32Array), K = t.length, G = m.grid, N = G * G * 2;
    if (delta.length !== K * N) { F.pending = null; return; }
    const tips = new Int8Array(K * N);  // each t's minus the previous t's, mod 256 (pack_tips)
    for (let i = 0; i < N; i++) tips[i] = delta[i];
    for (let i = N; i < K * N; i++) tips[i] = tips[i - N] + delta[i];  // Int8Array wraps
    const below = new Int32Array(m.T);  // the last tabled t at or below each t (its index)
    for (let k = 0, j = 0; j < m.T; j++) { while (k + 1 < K && t[k + 1] <= j) k++; below[j] = k; }
    F.table = {key: m.key, T: m.T, G, K, t, below, tips, half: typed(m.half, Float64Array),
               sab: typed(m.sab, Float32Array), s1mab: typed(m.s1mab, Float32Array),
               alpha_bar: typed(m.alpha_bar, Float64Array), x0: typed(m.x0, Float32Array),
               eps: typed(m.eps, Float32Array), length: m.length, head: m.head,
               cos: Math.cos(m.head_deg * Math.PI / 180),
               sin: Math.sin(m.head_deg * Math.PI / 180), title: m.title};
    F.pending = null;
  };
  F.drop = () => { F.table = null; F.pending = null; flush(); };

  // The learned field at t in data coordinates, as vector_field_figure draws it:
  // {half, cloud: [x, y], arrows: [x, y] (shaft, NaN, head, NaN per arrow), bases: [x, y],
  // title}; null without a table or for a t outside 0..T−1. Between two tabled t (a
  // decimated table, large T) the tips and the half-width are interpolated linearly.
  F.field = (t) => {
    const b = F.table;
    if (!b || !Number.isInteger(t) || t < 0 || t >= b.T) return null;
    const k0 = b.below[t], k1 = Math.min(k0 + 1, b.K - 1);
    const w = b.t[k0] === t || k1 === k0 ? 0 : (t - b.t[k0]) / (b.t[k1] - b.t[k0]);
    const half = b.half[k0] * (1 - w) + b.half[k1] * w;
    const G = b.G, G2 = G * G, lo = -half * 0.95, step = (2 * half * 0.95) / (G - 1);
    const axis = Float64Array.from({length: G}, (_, i) => (i === G - 1 ? -lo : lo + i * step));
    const length = b.length * (axis[1] - axis[0]);
    const ax = new Float64Array(G2 * 7), ay = new Float64Array(G2 * 7);
    const bx = new Float64Array(G2), by = new Float64Array(G2);
    const o0 = k0 * G2 * 2, o1 = k1 * G2 * 2, c = b.cos, s = b.sin;
    for (let i = 0; i < G2; i++) {
      const gx = axis[i % G], gy = axis[(i / G) | 0];
      const sx = ((1 - w) * b.tips[o0 + 2 * i] + w * b.tips[o1 + 2 * i]) / 127 * length;
      const sy = ((1 - w) * b.tips[o0 + 2 * i + 1] + w * b.tips[o1 + 2 * i + 1]) / 127 * length;
      const mag = Math.hypot(sx, sy), ux = mag > 0 ? -sx / mag : 0, uy = mag > 0 ? -sy / mag : 0;
      const head = b.head * mag, tx = gx + sx, ty = gy + sy, j = 7 * i;  // (ux, uy): back
      ax[j] = gx; ay[j] = gy; ax[j + 1] = tx; ay[j + 1] = ty; ax[j + 2] = ay[j + 2] = NaN;
      ax[j + 3] = tx + head * (c * ux - s * uy); ay[j + 3] = ty + head * (s * ux + c * uy);
      ax[j + 4] = tx; ay[j + 4] = ty;
      ax[j + 5] = tx + head * (c * ux + s * uy); ay[j + 5] = ty + head * (-s * ux + c * uy);
      ax[j + 6] = ay[j + 6] = NaN;
      bx[i] = gx; by[i] = gy;
    }
    const P = b.x0.length / 2, cx = new Float32Array(P), cy = new Float32Array(P);
    const f = Math.fround, a1 = b.sab[t], a2 = b.s1mab[t];
    for (let i = 0; i < P; i++) {  // x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε (DDPM eq. 4), in float32
      cx[i] = f(f(a1 * b.x0[2 * i]) + f(a2 * b.eps[2 * i]));
      cy[i] = f(f(a1 * b.x0[2 * i + 1]) + f(a2 * b.eps[2 * i + 1]));
    }
    const title = b.title.replace('{t}', String(t))
      .replace('{alpha_bar}', b.alpha_bar[t].toFixed(3));
    return {t, half, cloud: [cx, cy], arrows: [ax, ay], bases: [bx, by], title};
  };

  const plot = () => document.querySelector(`#${CFG.plot} .js-plotly-plot`);
  const slider = () => document.querySelector(`#${CFG.slider} input[type=range]`);
  // The figure on screen can take the table: same weights, the learned field, 3 traces.
  const usable = (gd) => {
    const m = gd && gd.layout && gd.layout.meta && gd.layout.meta.dl_field;
    return !!(m && F.table && m.key === F.table.key && m.show === 'learned' && window.Plotly &&
              gd._fullLayout && gd.data && gd.data.length === 3);
  };

  // Rewrite the traces' SVG for field f on the current axes; false: not possible here.
  const redrawSvg = (gd, f) => {
    const fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis;
    const groups = gd.querySelectorAll('.scatterlayer g.trace');
    if (!xa || !ya || groups.length !== 3) return false;
    const px = (x) => xa.c2p(x).toFixed(1), py = (y) => ya.c2p(y).toFixed(1);
    const edits = [];
    for (const g of groups) {
      const tr = g.__data__ && g.__data__[0] && g.__data__[0].trace;
      if (!tr) return false;
      if (tr.index === 1) {  // the arrows: one path, a sub-path per shaft and per head
        const line = g.querySelector('path.js-line');
        if (!line) return false;
        const [x, y] = f.arrows, parts = [];
        for (let j = 0; j < x.length; j += 7) {
          parts.push(`M${px(x[j])},${py(y[j])}L${px(x[j + 1])},${py(y[j + 1])}` +
                     `M${px(x[j + 3])},${py(y[j + 3])}L${px(x[j + 4])},${py(y[j + 4])}` +
                     `L${px(x[j + 5])},${py(y[j + 5])}`);
        }
        edits.push([line, 'd', parts.join('')]);
      } else {  // the cloud (0) and the arrow bases (2): one marker per point
        const [x, y] = tr.index === 0 ? f.cloud : f.bases;
        for (const p of g.querySelectorAll('path.point')) {
          const i = p.__data__ && p.__data__.i;
          if (!(i >= 0 && i < x.length)) return false;
          edits.push([p, 'transform', `translate(${px(x[i])},${py(y[i])})`]);
        }
      }
    }
    for (const [el, attr, v] of edits) el.setAttribute(attr, v);
    const title = gd.querySelector('.g-gtitle .gtitle');
    if (title) title.textContent = f.title;
    return true;
  };

  // Draw the learned field at t on the plot at once → 'svg', 'update' or null (left to the
  // server's figure).
  F.draw = (t) => {
    const gd = plot();
    if (!usable(gd)) return null;
    const f = F.field(t);
    if (!f) return null;
    const r = gd._fullLayout.xaxis.range, now = (r[1] - r[0]) / 2;
    gd.__dlFastMeta = gd.layout.meta;  // this figure now shows t (see follow)
    gd.__dlFastT = t;
    if (Math.abs(f.half - now) <= 0.01 * now && redrawSvg(gd, f)) return 'svg';
    window.Plotly.update(gd, {x: [f.cloud[0], f.arrows[0], f.bases[0]],
                              y: [f.cloud[1], f.arrows[1], f.bases[1]]},
                         {'xaxis.range': [-f.half, f.half], 'yaxis.range': [-f.half, f.half],
                          'title.text': f.title}, [0, 1, 2]);
    return 'update';
  };

  // After Plotly drew a server figure: if it is the answer for another t than the slider shows
  // now (keys pressed meanwhile), draw the slider's t again.
  const follow = (gd) => {
    const m = gd.layout && gd.layout.meta && gd.layout.meta.dl_field, el = slider();
    if (!m || !el || !usable(gd)) return;
    const shown = gd.__dlFastMeta === gd.layout.meta ? gd.__dlFastT : m.t;
    const want = Number(el.value);
    if (want !== shown) F.draw(want);
  };

  // Gradio draws every gr.Plot value with Plotly.react, looked up on window.Plotly at each
  // call (Plotly loads with the first plot, after this runs: install() wraps it on first use).
  let react = null, timer = null;
  const flush = () => {
    clearTimeout(timer);
    const k = F.kept;
    F.kept = null;
    if (k) react.apply(window.Plotly, k);
  };
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(flush, QUIET_MS);
  };
  const install = () => {
    const P = window.Plotly;
    if (react || !P || !P.react) return;
    react = P.react;
    P.react = function (gd, data, layout, ...rest) {
      const mine = gd && gd.closest && gd.closest(`#${CFG.plot}`);
      if (mine) {
        const m = layout && layout.meta && layout.meta.dl_field;
        const keep = m && F.table && m.key === F.table.key && m.show === 'learned' &&
          !layout.meta.dl_field_table && performance.now() - F.lastInput < QUIET_MS;
        if (keep) {
          F.kept = [gd, data, layout, ...rest];
          return Promise.resolve(gd);
        }
        F.kept = null;  // superseded
      }
      const done = react.call(this, gd, data, layout, ...rest);
      if (mine) Promise.resolve(done).then(() => follow(gd)).catch(() => {});
      return done;
    };
  };

  const paintFirst = __PAINT_FIRST__;
  document.addEventListener('input', (ev) => {
    const el = ev.target;
    if (!el || el.tagName !== 'INPUT' || el.type !== 'range' || !el.closest(`#${CFG.slider}`) ||
        el.__dlReplay)
      return;
    try {
      if (F.draw(Number(el.value))) {
        F.lastInput = performance.now();
        rearm();
        paintFirst(ev, el);
      }
    } catch (e) { console.warn('toy field fast path:', e); }
  }, true);
  return [];
}
