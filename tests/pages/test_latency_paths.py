"""Tab 1's fast slider path: the server's thinned curves, and the browser's own redraw of a new T
agreeing with the server's figure (values and pixels).

The speed itself is measured by ``bench/browser_latency.py``, not here. Screenshots for a person
to look at: ``tests/artifacts/latency_tab1_server.png`` (the server's figure) and
``latency_tab1_fast.png`` (the same T redrawn by the browser's fast path on top of it).
"""

from __future__ import annotations

import os
from urllib.parse import quote

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diffusion_core.schedule import BUILTIN_KINDS, NoiseSchedule, ScheduleConfig  # noqa: E402
from pages import schedules  # noqa: E402
from tests.helpers import ARTIFACTS, CHROMIUM, drag_in_one_task  # noqa: E402

ALL = list(BUILTIN_KINDS)
BUFFERS = ("betas", "alphas_cumprod", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
           "log_snr")


def test_kept_steps_are_all_steps_up_to_the_cap_then_evenly_spaced_with_both_ends():
    np.testing.assert_array_equal(schedules.kept_steps(7), np.arange(7))
    np.testing.assert_array_equal(schedules.kept_steps(1000), np.arange(1000))
    k = schedules.kept_steps(4000)
    assert len(k) == schedules.MAX_POINTS == 1000
    assert k[0] == 0 and k[-1] == 3999 and np.all(np.diff(k) >= 4) and np.all(np.diff(k) <= 5)
    assert schedules.kept_steps(1001)[-1] == 1000 and len(set(schedules.kept_steps(1001))) == 1000


@pytest.mark.parametrize("T", [1000, 4000])
def test_thinned_curves_hold_the_exact_values_at_their_steps(T):
    fig, _, _ = schedules.update_schedules(ALL, "cosine", T, 1e-4, 0.02, False, 0.008, 3.0, "t")
    keep = schedules.kept_steps(T)
    assert len(fig.data) == 5 * len(ALL)
    for i, tr in enumerate(fig.data):
        sched = NoiseSchedule(ScheduleConfig(kind=tr.legendgroup, T=T, power=3.0))
        assert tr.meta == BUFFERS[i % 5]  # the buffer each trace shows, for the browser
        np.testing.assert_array_equal(tr.x, keep)
        np.testing.assert_array_equal(tr.y, getattr(sched, tr.meta).numpy()[keep])
    meta = fig.layout.meta
    assert meta["max_points"] == schedules.MAX_POINTS and meta["x_axis"] == "t"
    assert (meta["beta_start"], meta["beta_end"], meta["power"]) == (1e-4, 0.02, 3.0)
    assert meta["scale_to_T"] is False and meta["cosine_s"] == 0.008


# ---------------------------------------------------------------------------------------------
# In the browser
# ---------------------------------------------------------------------------------------------

browser_only = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                  reason="Debian's chromium is not installed")
PLOT = "#dl-schedules-plot .js-plotly-plot"
WAIT_MS = 60_000


def _open(browser, url):
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.goto(url)
    page.wait_for_function(f"document.querySelector('{PLOT}')?.data?.length > 0 && "
                           "!!window.__dlSchedulesFastDraw", timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # the page's own load events
    return page


# The browser's curves for T beside the plot's (the server's) arrays: max |Δ| / (|y| + tiny).
AGREE_JS = f"""
(T) => {{
  const gd = document.querySelector('{PLOT}');
  const [xs, ys] = window.__dlSchedulesCurves(gd, T);
  let worst = 0, n = 0;
  gd._fullData.forEach((tr, i) => {{  // (gd.data holds the server's base64 arrays)
    if (xs[i].length !== tr.x.length) throw new Error('length ' + i);
    for (let k = 0; k < tr.y.length; k++) {{
      if (xs[i][k] !== tr.x[k]) throw new Error('x ' + i + ' ' + k);
      worst = Math.max(worst, Math.abs(ys[i][k] - tr.y[k]) / (Math.abs(tr.y[k]) + 1e-30));
      n++;
    }}
  }});
  return [worst, n, gd._fullData.length];
}}
"""


@browser_only
@pytest.mark.browser
@pytest.mark.parametrize("query, T, traces", [
    ("schedules=linear,cosine,quadratic,sigmoid,polynomial&T=4000&power=3", 4000, 25),
    ("schedules=linear,sigmoid&T=300&scale_to_T=true&beta_end=0.03", 300, 10),
    ("schedules=cosine,polynomial&T=57&cosine_s=0.02&x_axis=" + quote("t / T"), 57, 10),
])
def test_browser_curves_match_the_server_figure(browser, server, query, T, traces):
    page = _open(browser, f"{server}?tab=schedules&{query}")
    page.wait_for_function(f"document.querySelector('{PLOT}')._fullData[0]?.x.length === "
                           f"{min(T, schedules.MAX_POINTS)} && "
                           f"document.querySelector('{PLOT}')._fullData.length === {traces}",
                           timeout=WAIT_MS)
    worst, n, count = page.evaluate(AGREE_JS, T)
    assert count == traces and n == traces * min(T, schedules.MAX_POINTS)
    assert worst < 2e-6, worst  # float64 in the browser vs the server's float32 buffers
    page.context.close()


def _plot_pixels(page):
    from io import BytesIO

    from PIL import Image

    png = page.locator("#dl-schedules-plot").screenshot()
    return np.asarray(Image.open(BytesIO(png)).convert("L"), dtype=np.int16)


@browser_only
@pytest.mark.browser
def test_a_key_press_redraws_at_once_and_the_server_draws_the_same(browser, server):
    page = _open(browser, f"{server}?tab=schedules")
    page.mouse.move(5, 5)
    # 1. The key press redraws the lines before the server's figure arrives.
    page.evaluate(f"""() => {{
      const gd = document.querySelector('{PLOT}');
      window.__seen = null;
      const path = gd.querySelector('.scatterlayer g.trace path.js-line');
      new MutationObserver(() => {{
        if (window.__seen === null) window.__seen = gd._fullData[0].x.length;
      }}).observe(path, {{attributes: true}});
    }}""")
    slider = page.locator("#dl-schedules-T input[type=range]")
    assert slider.input_value() == "1000"
    slider.focus()
    slider.press("ArrowLeft")  # T = 999: every step drawn
    page.wait_for_function(f"document.querySelector('{PLOT}')._fullData[0].x.length === 999",
                           timeout=WAIT_MS)
    assert page.evaluate("window.__seen") == 1000  # drawn while the plot still held T = 1000
    page.wait_for_timeout(1200)  # the server's redraw and any layout follow-ups
    # 2. The browser's lines for this T, drawn over the server's figure, look the same.
    server_px = _plot_pixels(page)
    page.screenshot(path=str(ARTIFACTS / "latency_tab1_server.png"))
    assert page.evaluate("window.__dlSchedulesFastDraw(999)") == "lines"
    fast_px = _plot_pixels(page)
    page.screenshot(path=str(ARTIFACTS / "latency_tab1_fast.png"))
    assert server_px.shape == fast_px.shape
    differ = np.abs(server_px - fast_px) > 40
    # Antialiasing and where the dashes start differ (Plotly simplifies its own paths); no
    # line may move: every changed pixel lies within 2 px of a line in the server's figure.
    assert differ.mean() < 0.01, differ.mean()
    ink = server_px < 200
    near = np.zeros_like(ink)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            near |= np.roll(np.roll(ink, dy, axis=0), dx, axis=1)
    assert (differ & ~near).sum() <= 0.01 * differ.sum() + 5, (differ & ~near).sum()
    # 3. A big jump (Home: T → its minimum) moves the axes: a Plotly restyle, still at once.
    assert page.evaluate("window.__dlSchedulesFastDraw(10)") == "restyle"
    assert page.evaluate(f"document.querySelector('{PLOT}')._fullData[0].x.length") == 10
    page.context.close()


@browser_only
@pytest.mark.browser
def test_gradio_hears_t_once_after_the_redraw_and_the_server_follows(browser, server):
    """Paint first (assets/paint_first.js): a drag's steps redraw the lines inside their input
    events; Gradio hears one event, after the frame, with the last T; the server's figure
    for that T follows."""
    page = _open(browser, f"{server}?tab=schedules")
    page.evaluate(f"document.querySelector('{PLOT}').data[0].__dlOld = true")  # (a restyle
    # keeps the trace object; the server's figure brings new ones)
    got = drag_in_one_task(page, "#dl-schedules-T input[type=range]", [700, 650, 600],
                           f"document.querySelector('{PLOT}')._fullData[0].x.length")
    assert got["shown"] == 600, got  # drawn for the last T before Gradio heard anything
    assert got["early"] == 0 and got["heard"] == [600], got
    page.wait_for_function(f"(() => {{ const g = document.querySelector('{PLOT}'); "
                           "return !g.data[0].__dlOld && g._fullData[0].x.length === 600; })()",
                           timeout=WAIT_MS)  # the server's figure for T = 600
    page.context.close()
