"""Tab 2's t slider drawn in the browser (pages/forward/fast.py, assets/forward_fast.js), in
headless Chromium against the whole app.

A key press on the t slider redraws x_t, its two parts and the histogram at once from the x0, ε
and schedule columns the server sent; Gradio's round trip (show_t) follows and replaces them.
These tests check that the browser's pictures are the server's (each pixel within one grey
level, almost all equal), for an RGB photo and for the small grey digit (enlarged ×4), that the
histogram's counts and drawn bars are the server's, that the server still follows (the table,
its own PNG), that no data leaves the redraw to the server, and the phone layout (the slider
right under the pictures, image labels clear of their buttons).

The speed is measured by ``python -m bench.browser_latency --only bare,tab2``, not here.
Screenshots (tests/artifacts/): ``forward_fast_desktop.png`` (after a fast draw),
``forward_fast_phone.png`` (390 px wide).
"""

from __future__ import annotations

import base64
import os

import numpy as np
import pytest

from diffusion_core.schedule import ScheduleConfig
from diffusion_core.workflows import forward_demo
from pages import forward as ft
from pages.forward import fast
from tests.helpers import ARTIFACTS, CHROMIUM, drag_in_one_task

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

WAIT_MS = 60_000
SCHEDULE = ScheduleConfig(kind="cosine", T=1000)  # the app's default (tab 1's primary)
SLIDER = f"#{fast.T_ELEM_ID} input[type=range]"
DATA_READY = ("(s) => { const d = window.__dlForwardData; return !!(d && d.img && d.sched && "
              "window.__dlForwardFrame && JSON.stringify(d.img.shape) === s); }")

# The pixels of an image URL, RGBA, through a canvas (a data: URL or the app's files).
PIXELS_JS = """async (url) => {
  const im = new Image();
  im.src = url;
  await im.decode();
  const c = document.createElement('canvas');
  c.width = im.naturalWidth; c.height = im.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(im, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let bin = '';
  for (let i = 0; i < d.length; i += 8192)
    bin += String.fromCharCode.apply(null, d.subarray(i, i + 8192));
  return btoa(bin);
}"""
# Arm: record the first data: source each of the three pictures gets after this (the fast
# path's; the server's are files of the app).
ARM_JS = """(ids) => {
  const got = window.__fastSrc = {};
  for (const [k, id] of Object.entries(ids)) {
    const block = document.querySelector(`#${id}`);
    const o = new MutationObserver(() => {
      const src = block.querySelector('img').getAttribute('src') || '';
      if (src.startsWith('data:')) { got[k] = src; o.disconnect(); }
    });
    o.observe(block, {subtree: true, attributes: true, attributeFilter: ['src']});
  }
}"""


def _open(browser, server, **context):
    page = browser.new_context(**(context or {"viewport": {"width": 1440, "height": 900}})) \
        .new_page()
    page.goto(server)
    page.get_by_role("tab", name="1 · Noise schedules").first.click()  # past "Start here"
    page.wait_for_selector(".js-plotly-plot", timeout=WAIT_MS)
    page.wait_for_timeout(800)  # the page's own load events (early clicks can be lost)
    page.get_by_role("tab", name="2 · Forward noising").first.click()
    page.wait_for_function(DATA_READY, arg="[3,256,256]", timeout=WAIT_MS)
    page.get_by_text("at t = 250 (of 0…999)", exact=False).first.wait_for(timeout=WAIT_MS)
    return page


@pytest.fixture(scope="module")
def desktop(browser, server):
    page = _open(browser, server)
    yield page
    page.context.close()


def _pixels(page, url: str, shape) -> np.ndarray:
    rgba = np.frombuffer(base64.b64decode(page.evaluate(PIXELS_JS, url)), dtype=np.uint8)
    return rgba.reshape(*shape[:2], 4)[..., :3].astype(np.int16)


def _expected(image: str, t: int) -> dict[str, np.ndarray]:
    """The server's pictures at t (show_t's arrays) as [H, W, 3] grey levels."""
    state, _ = ft.load_image(image, None, 0)
    sig, noise, x_t = ft.show_t(state, ft.schedule_state(SCHEDULE), t)[:3]
    def as_rgb(a):
        return (np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a).astype(np.int16)

    return {"signal": as_rgb(sig), "noise": as_rgb(noise), "x_t": as_rgb(x_t)}


def _press(page, key: str, t_after: int) -> dict[str, str]:
    """Press ``key`` on the slider → the fast path's three data: URLs; waits for the server's
    frame (the table says t_after and the x_t picture is the server's file again)."""
    ids = fast.IMAGE_ELEM_IDS
    page.evaluate(ARM_JS, ids)
    page.locator(SLIDER).focus()
    page.keyboard.press(key)
    page.get_by_text(f"at t = {t_after} (of 0…999)", exact=False).first.wait_for(
        timeout=WAIT_MS)
    page.wait_for_function(f"!document.querySelector('#{ids['x_t']} img').src"
                           ".startsWith('data:')", timeout=WAIT_MS)
    got = page.evaluate("window.__fastSrc")
    return {k: got.get(k, "(none)") for k in ids}


def _check_same_pixels(page, urls: dict[str, str], expected: dict[str, np.ndarray]) -> None:
    for name, url in urls.items():
        assert url.startswith("data:"), f"{name} was not drawn in the browser ({url[:40]})"
        got = _pixels(page, url, expected[name].shape)
        diff = np.abs(got - expected[name])
        assert diff.max() <= 1, f"{name}: a pixel {diff.max()} grey levels off"
        assert (diff > 0).mean() < 0.01, f"{name}: {(diff > 0).mean():.2%} of values differ"


def test_key_press_draws_the_servers_pixels_first_then_the_server_follows(desktop):
    page = desktop
    urls = _press(page, "ArrowRight", 251)
    _check_same_pixels(page, urls, _expected("china", 251))
    # the server's own PNG, once back, is the same picture
    ids = fast.IMAGE_ELEM_IDS
    server_png = page.evaluate(f"document.querySelector('#{ids['x_t']} img').src")
    assert not server_png.startswith("data:")
    diff = np.abs(_pixels(page, server_png, (256, 256)) - _pixels(page, urls["x_t"], (256, 256)))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    urls = _press(page, "ArrowLeft", 250)
    _check_same_pixels(page, urls, _expected("china", 250))


@pytest.mark.parametrize("t", [0, 600, 999])
def test_histogram_counts_and_bars_are_the_servers(desktop, t):
    page = desktop
    state, _ = ft.load_image("china", None, 0)
    schedule = forward_demo.noise_schedule(SCHEDULE)
    parts = forward_demo.forward_parts(schedule, state["x0"], state["eps"], t)
    want = forward_demo.histogram(parts.x_t, bins=ft.HIST_BINS, value_range=ft.HIST_RANGE)
    counts = np.array(page.evaluate("(t) => Array.from(window.__dlForwardFrame(t).counts)", t))
    assert counts.sum() == pytest.approx(want.counts.sum(), abs=5)
    assert np.abs(counts - want.counts).sum() <= 0.001 * parts.x_t.numel()
    # drawn: each bar's top at the server's density (the current axes, or a restyle's)
    how = page.evaluate("(t) => window.__dlForwardDraw(t)", t)
    assert how in ("bars", "restyle")
    tops = page.evaluate("""(ids) => {
      const gd = document.querySelector(`#${ids} .js-plotly-plot`), ya = gd._fullLayout.yaxis;
      return [...gd.querySelectorAll('.barlayer .trace.bars .point path')].map((p) => {
        const m = /V([-\\d.]+)H/.exec(p.getAttribute('d') || '');
        return m ? ya.p2c(parseFloat(m[1])) : null; }); }""", fast.HIST_ELEM_ID)
    assert len(tops) == ft.HIST_BINS and None not in tops
    px = page.evaluate(f"document.querySelector('#{fast.HIST_ELEM_ID} .js-plotly-plot')"
                       "._fullLayout.yaxis._m")  # px per density unit
    assert np.abs(np.array(tops) - want.density).max() * abs(px) < 1.0  # under a pixel
    if t == 999:  # near pure noise: bars around the N(0, 1) peak
        page.screenshot(path=str(ARTIFACTS / "forward_fast_desktop.png"))


def test_small_grey_image_enlarged_like_the_server(desktop):
    page = desktop
    page.get_by_label("Image x₀").first.click()
    page.get_by_role("option", name="Digit (8×8, smoothed)").click()
    page.wait_for_function(DATA_READY, arg="[1,64,64]", timeout=WAIT_MS)
    page.get_by_text("Digit (8×8, smoothed): 64×64, greyscale.", exact=False).first.wait_for(
        timeout=WAIT_MS)
    page.wait_for_timeout(500)  # the view of the new image
    urls = _press(page, "ArrowRight", 251)
    _check_same_pixels(page, urls, _expected("digit", 251))


def test_no_data_leaves_the_redraw_to_the_server(desktop):
    page = desktop
    assert page.evaluate("""() => { const d = window.__dlForwardData, img = d.img;
      d.img = null;
      const drawn = window.__dlForwardDraw(10);
      d.img = img;
      return [drawn, window.__dlForwardDraw(-1), window.__dlForwardDraw(1000),
              window.__dlForwardDraw(2.5)]; }""") == [False, False, False, False]


def test_gradio_hears_the_slider_after_the_drawing_once_a_frame(desktop):
    """Paint first (assets/paint_first.js): the drawing happens in the input event itself;
    Gradio gets one input event, frames later, with the slider's last value, however many
    came in between (a drag); its round trip still brings the server's frame for that t."""
    page = desktop
    before = page.evaluate("document.querySelector('#dl-forward-xt img').getAttribute('src')")
    got = drag_in_one_task(page, SLIDER, [300, 301, 302, 303, 304],
                           "document.querySelector('#dl-forward-xt img').getAttribute('src')")
    assert got["shown"] != before and got["shown"].startswith("data:")  # drawn in the event
    assert got["early"] == 0 and got["heard"] == [304], got  # then one event, the last value
    page.get_by_text("at t = 304 (of 0…999)", exact=False).first.wait_for(timeout=WAIT_MS)
    page.wait_for_function(f"!document.querySelector('#{fast.IMAGE_ELEM_IDS['x_t']} img').src"
                           ".startsWith('data:')", timeout=WAIT_MS)  # the server's own PNG
    _press(page, "ArrowLeft", 303)  # the keys go on as before
    _press(page, "ArrowRight", 304)


def test_phone_slider_right_under_the_pictures_and_labels_clear(browser, server):
    page = _open(browser, server, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                 is_mobile=True, has_touch=True)
    ids = fast.IMAGE_ELEM_IDS
    boxes = page.evaluate("""([ids, hist, slider]) => {
      const r = (el) => { const b = el.getBoundingClientRect();
                          return {l: b.left, r: b.right, t: b.top, b: b.bottom}; };
      const out = {slider: r(document.querySelector(slider).closest('.block')),
                   hist: r(document.querySelector(`#${hist}`)), labels: []};
      // the four pictures: x0 and the three parts, in one row
      const blocks = [...document.querySelector(`#${ids.x_t}`).parentElement.children]
        .filter((b) => b.querySelector('img'));
      out.images = blocks.map(r);
      for (const block of blocks) {
        const label = block.querySelector('[data-testid="block-label"]');
        const buttons = [...block.querySelectorAll('button')]  // the icon buttons
          .filter((b) => b.offsetParent && b.getBoundingClientRect().width < 60);
        out.labels.push({label: r(label), buttons: buttons.map(r)});
      }
      return out; }""", [ids, fast.HIST_ELEM_ID, SLIDER])
    assert len(boxes["images"]) == 4
    lowest_image = max(b["b"] for b in boxes["images"])
    assert lowest_image <= boxes["slider"]["t"] < boxes["hist"]["t"]  # images, t, histogram
    for item in boxes["labels"]:
        for button in item["buttons"]:
            a, b = item["label"], button
            overlap = min(a["r"], b["r"]) - max(a["l"], b["l"]) > 1 and \
                min(a["b"], b["b"]) - max(a["t"], b["t"]) > 1
            assert not overlap, f"an image label is covered by a button: {a} {b}"
    page.screenshot(path=str(ARTIFACTS / "forward_fast_phone.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 390, "height": 1800})
    page.context.close()
