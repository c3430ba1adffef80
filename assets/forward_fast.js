() => {
  // Tab 2's t slider, drawn in the browser (pages/forward/fast.py loads this file; it runs once
  // per page). x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (DDPM eq. 4), t = 0..T−1, from the x0, ε and
  // schedule columns the server sent (window.__dlForwardData.img / .sched). On each `input`
  // event of the slider: the three pictures (new <img> sources, 24-bit BMPs) and the
  // histogram's bars are redrawn at once; Gradio's round trip follows and replaces them. The
  // arithmetic is the server's: float32 products and sum (forward.q_sample), clip to [−1, 1],
  // rint((v + 1)·127.5) half to even, integer nearest-neighbour enlargement to DISPLAY_MIN
  // (views.to_image), torch.histc's equal bins over ±RANGE, density = count / (N·width).
  if (window.__dlForwardFast) return [];
  window.__dlForwardFast = true;
  const T_ID = __T_ELEM_ID__, HIST_ID = __HIST_ELEM_ID__, IMG_IDS = __IMAGE_ELEM_IDS__;
  const BINS = __HIST_BINS__, RANGE = __HIST_RANGE__, DISPLAY_MIN = __DISPLAY_MIN__;
  const f32 = Math.fround;
  const WIDTH = f32(2 * RANGE / BINS);

  const bytes = (b64) => {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  };
  const int16s = (b64, step) => {  // little-endian int16 · step → Float32Array (exact)
    const b = bytes(b64), n = b.length >> 1, out = new Float32Array(n);
    const v = new DataView(b.buffer);
    for (let i = 0; i < n; i++) out[i] = v.getInt16(2 * i, true) * step;
    return out;
  };
  const float32s = (b64) => {
    const b = bytes(b64), n = b.length >> 2, out = new Float32Array(n);
    const v = new DataView(b.buffer);
    for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
    return out;
  };
  // Decoded payloads, rebuilt when the server sends a new one (null: none, the server draws).
  const ready = {img: null, sched: null, rawImg: undefined, rawSched: undefined};
  const prepare = () => {
    const d = window.__dlForwardData || {};
    if (d.img !== ready.rawImg) {
      ready.rawImg = d.img;
      ready.img = null;
      const p = d.img;
      if (p && p.shape && p.shape.length === 3 && (p.shape[0] === 1 || p.shape[0] === 3)) {
        const [C, H, W] = p.shape, x0 = int16s(p.x0, p.x0_step), eps = int16s(p.eps, p.eps_step);
        if (x0.length === C * H * W && eps.length === x0.length)
          ready.img = {C, H, W, x0, eps, signal: new Float32Array(x0.length),
                       noise: new Float32Array(x0.length), x_t: new Float32Array(x0.length)};
      }
    }
    if (d.sched !== ready.rawSched) {
      ready.rawSched = d.sched;
      ready.sched = null;
      const p = d.sched;
      if (p && Number.isInteger(p.T)) {
        const a = float32s(p.signal), b = float32s(p.noise);
        if (a.length === p.T && b.length === p.T) ready.sched = {T: p.T, a, b};
      }
    }
  };
  window.__dlForwardPrepare = () => {
    try { prepare(); } catch (e) { console.warn('forward fast path:', e); }
  };

  // [C, H, W] values → data: URL of a 24-bit BMP (lossless, no colour profile, decoded in
  // this process: no blob round trip), each pixel repeated k × k. The grey level is
  // views.to_image's rint((clip(v, −1, 1) + 1)·127.5) in float32: a Uint8ClampedArray clips to
  // 0..255 and rounds half to even, as numpy's rint does. Scratch buffers are reused.
  const B64 = new TextEncoder().encode(
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
  const ascii = new TextDecoder('latin1');
  const scratch = {lv: new Uint8ClampedArray(0), bmp: new Uint8Array(0), b64: new Uint8Array(0)};
  const grow = (key, n, Kind) => {
    if (scratch[key].length < n) scratch[key] = new Kind(n);
    return scratch[key].subarray(0, n);
  };
  const base64 = (buf) => {
    const n = buf.length, out = grow('b64', 4 * Math.ceil(n / 3), Uint8Array);
    let o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
      const v = (buf[i] << 16) | (buf[i + 1] << 8) | buf[i + 2];
      out[o++] = B64[v >> 18]; out[o++] = B64[(v >> 12) & 63];
      out[o++] = B64[(v >> 6) & 63]; out[o++] = B64[v & 63];
    }
    if (i < n) {
      const v = (buf[i] << 16) | ((i + 1 < n ? buf[i + 1] : 0) << 8);
      out[o++] = B64[v >> 18]; out[o++] = B64[(v >> 12) & 63];
      out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : 61; out[o++] = 61;  // '='
    }
    return ascii.decode(out);
  };
  const bmpUrl = (vals, C, H, W, k) => {
    const plane = H * W, lv = grow('lv', C * plane, Uint8ClampedArray);
    for (let i = 0; i < lv.length; i++) lv[i] = f32(f32(vals[i] + 1) * 127.5);
    const w = W * k, h = H * k, row = (3 * w + 3) & ~3, buf = grow('bmp', 54 + row * h, Uint8Array);
    buf.fill(0, 0, 54);
    const dv = new DataView(buf.buffer, buf.byteOffset, 54);
    buf[0] = 66; buf[1] = 77;  // "BM"
    dv.setUint32(2, buf.length, true);
    dv.setUint32(10, 54, true);
    dv.setUint32(14, 40, true);
    dv.setInt32(18, w, true);
    dv.setInt32(22, -h, true);  // top-down rows
    dv.setUint16(26, 1, true);
    dv.setUint16(28, 24, true);
    dv.setUint32(34, row * h, true);
    const g0 = C === 3 ? plane : 0, b0 = C === 3 ? 2 * plane : 0;
    for (let y = 0; y < H; y++) {
      let o = 54 + y * k * row;
      for (let x = 0, i = y * W; x < W; x++, i++) {
        const r = lv[i], g = lv[g0 + i], b = lv[b0 + i];
        for (let dx = 0; dx < k; dx++) { buf[o++] = b; buf[o++] = g; buf[o++] = r; }
      }
      for (let dy = 1; dy < k; dy++)  // the row's copies
        buf.copyWithin(54 + (y * k + dy) * row, 54 + y * k * row, 54 + (y * k + 1) * row);
    }
    return 'data:image/bmp;base64,' + base64(buf);
  };
  const setImage = (id, url) => {
    const im = document.querySelector(`#${id} img`);
    if (!im) return false;
    im.src = url;
    return true;
  };

  // The frame at t → {signal, noise, x_t (Float32Array [C·H·W]), counts} or null.
  const frame = (t) => {
    const m = ready.img, s = ready.sched;
    if (!m || !s || !Number.isInteger(t) || t < 0 || t >= s.T) return null;
    const a = s.a[t], b = s.b[t], {x0, eps, signal, noise, x_t} = m;
    const counts = new Float64Array(BINS), lo = f32(-RANGE), hi = f32(RANGE);
    for (let i = 0; i < x0.length; i++) {
      const u = f32(a * x0[i]), v = f32(b * eps[i]), x = f32(u + v);  // DDPM eq. 4
      signal[i] = u; noise[i] = v; x_t[i] = x;
      if (x >= lo && x <= hi) {  // torch.histc: values outside the range are not counted
        let p = Math.floor((x - lo) * BINS / (hi - lo));
        if (p >= BINS) p = BINS - 1;
        counts[p] += 1;
      }
    }
    return {signal, noise, x_t, counts};
  };
  window.__dlForwardFrame = frame;  // for the tests

  // The bars at the new heights. When they fit the current y axis, only each bar's SVG path
  // is rewritten, through Plotly's own axis mappings (c2p): ~1 ms, where a Plotly restyle
  // costs ~20 ms (a bare one-trace redraw is the whole budget). Otherwise (or when the SVG is
  // not as expected) a restyle rescales the axis. The server's figure follows either way.
  // → 'bars', 'restyle' or null (left to the server).
  const redrawHistogram = (counts, n) => {
    const gd = document.querySelector(`#${HIST_ID} .js-plotly-plot`);
    if (!window.Plotly || !gd || !gd.data || !gd.data.length || gd.data[0].type !== 'bar' ||
        !gd.calcdata || !gd.calcdata[0] || gd.calcdata[0].length !== BINS) return null;
    const y = new Array(BINS);
    let top = 0;
    for (let i = 0; i < BINS; i++) { y[i] = counts[i] / (n * WIDTH); top = Math.max(top, y[i]); }
    const fl = gd._fullLayout, xa = fl && fl.xaxis, ya = fl && fl.yaxis;
    const points = gd.querySelectorAll('.barlayer .trace.bars .point');
    if (xa && ya && ya.range && top <= ya.range[1] && points.length === BINS) {
      const base = ya.c2p(0), paths = [];
      for (let i = 0; i < BINS; i++) {
        const di = points[i].__data__, path = points[i].querySelector('path');
        if (!di || !path || !Number.isFinite(di.p0) || !Number.isFinite(di.p1)) {
          paths.length = 0;
          break;
        }
        const x0 = xa.c2p(di.p0).toFixed(2), x1 = xa.c2p(di.p1).toFixed(2);
        const h = ya.c2p(y[i]).toFixed(2), b = base.toFixed(2);
        paths.push([path, `M${x0},${b}V${h}H${x1}V${b}Z`]);
      }
      if (paths.length === BINS) {
        for (const [path, d] of paths) path.setAttribute('d', d);
        return 'bars';
      }
    }
    window.Plotly.restyle(gd, {y: [y]}, [0]);
    return 'restyle';
  };
  let partsPending = false;
  // Redraw tab 2 for t at once → the histogram's way ('bars', 'restyle', null), or false
  // (nothing drawn: left to the server).
  window.__dlForwardDraw = (t) => {
    prepare();
    const f = frame(t);
    if (!f) return false;
    const img = ready.img, {C, H, W} = img;
    const k = Math.max(1, Math.floor(DISPLAY_MIN / Math.max(H, W)));
    setImage(IMG_IDS.x_t, bmpUrl(f.x_t, C, H, W, k));
    const hist = redrawHistogram(f.counts, f.x_t.length);
    // The two parts once this is painted (x_t and the histogram first), from the buffers of
    // the latest frame by then.
    if (!partsPending) {
      partsPending = true;
      requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => {
        partsPending = false;
        const m = ready.img;
        if (m !== img) return;  // a new image came meanwhile: the server draws
        setImage(IMG_IDS.signal, bmpUrl(m.signal, C, H, W, k));
        setImage(IMG_IDS.noise, bmpUrl(m.noise, C, H, W, k));
      }, 0)));
    }
    return hist;
  };
  const paintFirst = __PAINT_FIRST__;
  document.addEventListener('input', (ev) => {
    const el = ev.target;
    if (!el || el.tagName !== 'INPUT' || !el.closest(`#${T_ID}`) || el.__dlReplay) return;
    try {
      if (window.__dlForwardDraw(Number(el.value)) !== false) paintFirst(ev, el);
    } catch (e) { console.warn('forward fast path:', e); }
  }, true);
  window.__dlForwardPrepare();
  return [];
}
