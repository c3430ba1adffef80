"""Slider latency in a real browser: key press → redrawn pixels, ours vs a bare Gradio app.

    python -m bench.browser_latency [--only bare,tab1,tab2,tab3] [--presses 15] [--warmup 3]

Starts, in the same run, (a) a bare Gradio app — a ``gr.Slider`` whose ``.change`` redraws a
``gr.Plot`` with one Plotly trace of 1,000 points, the floor any Gradio slider pays — and
(b) our app (``python app.py``, as a visitor gets it), each in its own process, and drives
both in headless Chromium (Debian's ``/usr/bin/chromium`` via playwright, the tests' flags).

Sliders measured (each in its own browser page, so its own session):

* ``bare``: the bare app's slider → its plot;
* ``tab1``: tab 1's T slider → the schedules plot;
* ``tab2``: tab 2's t slider → the xₜ image *and* the histogram (the later of the two);
* ``tab3``: tab 3's vector-field t slider → the field plot (after ▶ Train with the preset).

For each slider the page is focused and the slider gets ``--presses`` key presses (after
``--warmup`` unmeasured ones), alternating ArrowRight / ArrowLeft, so it stays near its default
value. The sliders take turns press by press, so a change in the machine's load hits all of
them alike. Latency of one press, measured in page JS with ``performance.now()`` timestamps:
from the ``keydown`` event's timestamp to two ``requestAnimationFrame`` callbacks after the
watched output changed — for a plot, the first mutation inside its ``<svg>`` (Plotly redraws
synchronously), for an image a new ``src`` that has finished decoding. A press with no redraw
within ``--timeout`` seconds counts as missing (``null``).

Prints median / p90 per slider and the ratio of its median to the bare floor's median, and
writes ``bench/results/browser_latency.json`` (with ``uptime``'s load averages: the machine is
shared, so figures under load are upper bounds and only the side-by-side ratios compare).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_results

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SLIDERS = ("bare", "tab1", "tab2", "tab3")
WAIT_MS = 120_000

# The bare app: the floor every Gradio slider → Plotly figure pays (one trace, 1,000 points).
BARE_APP = """
import os
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
import gradio as gr
import numpy as np
import plotly.graph_objects as go

X = np.linspace(0, 10, 1000)

def draw(v):
    return go.Figure(go.Scatter(x=X, y=np.sin(X + float(v) / 10), mode="lines"))

with gr.Blocks() as demo:
    s = gr.Slider(0, 100, value=50, step=1, label="bare")
    p = gr.Plot(draw(50))
    s.change(draw, s, p)
demo.launch(server_name="127.0.0.1", server_port=int(os.environ["GRADIO_SERVER_PORT"]),
            quiet=True)
"""

# Installed once per page: window.__latArm(sliderSel, targets) arms a measurement of the next
# key press on the slider; window.__latResult is then a promise of {total, parts} (ms) or null.
# ``targets``: [[kind, finder JS returning the element], ...]; kind "plot" or "img".
ARM_JS = r"""
([slider, targets, timeoutMs]) => {
  const find = (src) => (0, eval)(src)();
  const el = find(slider);
  const blocks = targets.map(([kind, src]) => {
    const e = find(src);
    return [kind, (e && (e.closest('.block') || e.parentElement)) || null];
  });
  let t0 = null;
  const done = new Array(blocks.length).fill(null);
  const observers = [];
  let resolve;
  window.__latResult = new Promise(r => { resolve = r; });
  const finish = (value) => {
    observers.forEach(o => o.disconnect());
    el.removeEventListener('keydown', onKey, true);
    clearTimeout(timer);
    resolve(value);
  };
  const timer = setTimeout(() => finish(null), timeoutMs);
  const mark = (i) => {
    if (done[i] !== null || t0 === null) return;
    done[i] = -1;  // pending paint
    requestAnimationFrame(() => requestAnimationFrame(() => {
      done[i] = performance.now() - t0;
      if (done.every(d => d !== null && d >= 0)) finish({total: Math.max(...done), parts: done});
    }));
  };
  const imgs = new Map();
  blocks.forEach(([kind, block], i) => {
    if (!block) return;
    if (kind === 'img') {
      for (const im of block.querySelectorAll('img')) imgs.set(im, im.currentSrc || im.src);
    }
    const o = new MutationObserver((muts) => {
      if (t0 === null) return;
      for (const m of muts) {
        if (kind === 'plot') {
          const n = m.target.nodeType === 1 ? m.target : m.target.parentElement;
          const inSvg = n && (n.closest('svg') || n.querySelector?.('svg'));
          const added = [...m.addedNodes].some(a => a.nodeType === 1 &&
              (a.matches('svg, .js-plotly-plot') || a.querySelector('svg')));
          if (inSvg || added) { mark(i); return; }
        } else {
          for (const im of block.querySelectorAll('img')) {
            const src = im.getAttribute('src');
            if (src && src !== imgs.get(im)) {
              imgs.set(im, src);
              im.decode().then(() => mark(i), () => mark(i));
              return;
            }
          }
        }
      }
    });
    o.observe(block, {subtree: true, childList: true, attributes: true, characterData: true});
    observers.push(o);
  });
  const onKey = (ev) => { if (t0 === null) t0 = ev.timeStamp; };
  el.addEventListener('keydown', onKey, true);
  el.focus();
  return blocks.every(([, b]) => b !== null);
}
"""

VISIBLE = "(sel) => [...document.querySelectorAll(sel)].find(e => e.offsetParent !== null)"


def _visible(selector: str) -> str:
    """JS source of a function returning the first visible element matching ``selector``."""
    return f"() => ({VISIBLE})({json.dumps(selector)})"


def _slider(label: str) -> str:
    return _visible(f'input[type=range][aria-label="range slider for {label}"]')


# slider → (slider finder, [(kind, target finder)], the page's tab, its setup)
SPECS = {
    "bare": (_slider("bare"), [("plot", _visible(".js-plotly-plot"))]),
    "tab1": (_slider("T (steps)"), [("plot", _visible("#dl-schedules-plot .js-plotly-plot"))]),
    "tab2": (_slider("t (0 … T−1)"), [("img", _visible("#dl-forward-xt img")),
                                      ("plot", _visible("#dl-forward-hist .js-plotly-plot"))]),
    # (tab 3's Vector field sub-tab: the field is its first plot, the error-by-t plot below it)
    "tab3": (_slider("t"), [("plot", _visible(".js-plotly-plot"))]),
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "PYTHONPATH": str(ROOT), "DIFFUSION_LAB_LOG_LEVEL": "WARNING"}
    out = open(log, "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT)


def wait_http(port: int, timeout: float = 180, proc: subprocess.Popen | None = None) -> None:
    import urllib.request

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited ({proc.returncode}); see its "
                               f"log ({proc.args})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no HTTP 200 on port {port} after {timeout} s")


def serve(args: list[str], log: Path, tries: int = 3) -> tuple[subprocess.Popen, str]:
    """Start a server process and wait for its page; returns (process, URL). Retried: on a
    loaded machine Gradio's own start-up check of localhost can time out, and it then exits."""
    for attempt in range(tries):
        port = free_port()
        proc = start_server(args, port, log)
        try:
            wait_http(port, proc=proc)
            return proc, f"http://127.0.0.1:{port}/"
        except RuntimeError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


def open_page(browser, url: str, name: str):
    """A page on ``url`` in a new context (a new session), set up for slider ``name``."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    if name == "bare":
        page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
    else:
        page.get_by_role("tab", name="1 · Noise schedules").first.click()
        page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
        page.wait_for_timeout(800)  # the page's own load events (early clicks can be lost)
        if name == "tab2":
            page.get_by_role("tab", name="2 · Forward noising").first.click()
            page.wait_for_function(
                "[...document.querySelectorAll('img')].filter(i => i.offsetParent !== null "
                "&& i.complete && i.naturalWidth > 0).length >= 4", timeout=WAIT_MS)
        elif name == "tab3":
            page.get_by_role("tab", name="3 · 2D toy trainer").first.click()
            page.wait_for_timeout(600)
            page.get_by_role("button", name="▶ Train").click()
            page.get_by_text("Done: step", exact=False).first.wait_for(timeout=WAIT_MS)
            page.get_by_role("tab", name="Vector field", exact=True).first.click()
            page.wait_for_function(
                f"(() => {{ const s = ({SPECS['tab3'][1][0][1]})(); "
                "return s && s.data && s.data.length > 0; })()", timeout=WAIT_MS)
    page.wait_for_timeout(1000)
    return page


def measure_once(page, name: str, key: str, timeout_s: float) -> dict | None:
    slider, targets = SPECS[name]
    page.bring_to_front()
    ok = page.evaluate(ARM_JS, [slider, targets, int(timeout_s * 1000)])
    if not ok:
        raise RuntimeError(f"{name}: the slider's output was not found on the page")
    page.keyboard.press(key)
    result = page.evaluate("window.__latResult")
    page.wait_for_timeout(250 + random.randint(0, 150))  # let follow-up events settle
    return result


def summary(samples: list) -> dict:
    ok = sorted(s["total"] for s in samples if s is not None)
    out = {"n": len(samples), "missing": sum(s is None for s in samples)}
    if ok:
        out.update(median_ms=round(statistics.median(ok), 1), min_ms=round(ok[0], 1),
                   p90_ms=round(ok[int(0.9 * (len(ok) - 1))], 1))
        parts = [s["parts"] for s in samples if s is not None]
        if len(parts[0]) > 1:
            out["part_medians_ms"] = [round(statistics.median(p[i] for p in parts), 1)
                                      for i in range(len(parts[0]))]
    return out


def run(only: list[str], presses: int, warmup: int, timeout_s: float) -> dict:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="browser-latency-"))
    servers: list[subprocess.Popen] = []
    urls: dict[str, str] = {}
    try:
        if "bare" in only:
            (tmp / "bare_app.py").write_text(BARE_APP)
            proc, urls["bare"] = serve([str(tmp / "bare_app.py")], tmp / "bare.log")
            servers.append(proc)
        if any(n != "bare" for n in only):
            proc, urls["app"] = serve(["app.py"], tmp / "app.log")
            servers.append(proc)
        load_before = load_average()
        samples: dict[str, list] = {n: [] for n in only}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = {n: open_page(browser, urls["bare" if n == "bare" else "app"], n)
                     for n in only}
            keys = ["ArrowRight", "ArrowLeft"]
            for i in range(warmup + presses):
                for n in only:
                    r = measure_once(pages[n], n, keys[i % 2], timeout_s)
                    if i >= warmup:
                        samples[n].append(r)
            browser.close()
        load_after = load_average()
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            try:
                s.wait(timeout=20)
            except subprocess.TimeoutExpired:
                s.kill()
    results = {n: {**summary(samples[n]),
                   "samples_ms": [None if s is None else round(s["total"], 1)
                                  for s in samples[n]]} for n in only}
    floor = results.get("bare", {}).get("median_ms")
    if floor:
        for n in only:
            if n != "bare" and results[n].get("median_ms") is not None:
                results[n]["ratio_to_bare"] = round(results[n]["median_ms"] / floor, 2)
    return {"presses": presses, "warmup": warmup, "load_avg_before": load_before,
            "load_avg_after": load_after, "target_ratio": 1.2, "sliders": results}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(SLIDERS),
                    help="comma-separated sliders among " + ", ".join(SLIDERS) +
                    " (the bare floor is always measured, for the ratios)")
    ap.add_argument("--presses", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds to wait for one redraw before counting it as missing")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SLIDERS]
    if bad:
        ap.error(f"unknown slider(s) {bad}; choose from {SLIDERS}")
    only = ["bare", *[s for s in only if s != "bare"]]
    out = run(only, args.presses, args.warmup, args.timeout)
    print(f"load average before {out['load_avg_before']}, after {out['load_avg_after']}")
    print(f"{'slider':<6} {'median':>8} {'p90':>8} {'min':>8} {'ratio':>6}  missing")
    for n, r in out["sliders"].items():
        def f(k, r=r):
            return f"{r[k]:8.1f}" if r.get(k) is not None else f"{'—':>8}"
        ratio = f"{r['ratio_to_bare']:6.2f}" if "ratio_to_bare" in r else f"{'':>6}"
        parts = f"  parts {r['part_medians_ms']}" if "part_medians_ms" in r else ""
        print(f"{n:<6} {f('median_ms')} {f('p90_ms')} {f('min_ms')} {ratio}  "
              f"{r['missing']}/{r['n']}{parts}")
    if not args.no_write:
        write_results("browser_latency", out)
    return out


if __name__ == "__main__":
    main()
