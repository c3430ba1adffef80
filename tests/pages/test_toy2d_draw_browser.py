"""Tab 3's "Draw your own" in headless Chromium: draw with the mouse, use it, train on it.

Screenshots for a person to look at go to tests/artifacts/ (git-ignored):
``toy2d_draw_1_used.png`` (the canvas with a ring, a stroke and two clicks, and the data plot
of the resulting points), ``toy2d_draw_2_field.png`` (the vector field of a model trained a
few steps on it), ``toy2d_draw_3_link.png`` (a link with ``dataset=drawn``: the default set and
a notice).
"""

from __future__ import annotations

import math
import os
import re

import pytest

from tests.helpers import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

TAB3 = re.compile(r"^3 · ")
# The titles of the plots the page shows (plotly writes them as SVG text).
TITLES_JS = ("[...document.querySelectorAll('.js-plotly-plot')].filter(g => g.offsetParent "
             "!== null).map(g => (g.querySelector('.gtitle') || {}).textContent || '')")
# Points of the visible plot whose title starts with the argument (its first trace).
POINTS_JS = """(head) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g.offsetParent !== null
    && ((g.querySelector('.gtitle') || {}).textContent || '').startsWith(head));
  if (!gd || !gd._fullData.length) return null;
  const t = gd._fullData[0];
  return [Array.from(t.x), Array.from(t.y)];
}"""


def _open(browser, url, *, past_start=True):
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = ctx.new_page()
    pg.goto(url)
    if past_start:  # "Start here" has no plot to wait for
        pg.get_by_role("tab", name="1 · Noise schedules").first.click()
    pg.wait_for_selector(".js-plotly-plot", timeout=60_000)
    pg.wait_for_timeout(800)  # (clicks before the app has loaded are lost)
    return pg


def _draw(page, box):
    """A ring around the canvas centre, a stroke below it and two clicks, with the mouse."""
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = 0.3 * min(box["width"], box["height"])
    # 24 straight segments, the first two drawn again at the end (the canvas misses the start
    # of a stroke); each mouse event waits for the busy page (~0.2 s), so few of them
    page.mouse.move(cx + r, cy)
    page.mouse.down()
    for k in range(1, 27):
        a = 2 * math.pi * k / 24
        page.mouse.move(cx + r * math.cos(a), cy + r * math.sin(a))
    page.mouse.up()
    page.mouse.move(cx - r, cy + 1.3 * r)
    page.mouse.down()
    page.mouse.move(cx + r, cy + 1.3 * r, steps=4)
    page.mouse.up()
    page.mouse.click(cx - 0.3 * r, cy - 0.2 * r)
    page.mouse.click(cx + 0.3 * r, cy - 0.2 * r)


def test_draw_use_train_and_see_the_field(browser, server):
    page = _open(browser, server)
    page.get_by_role("tab", name=TAB3).first.click()
    page.wait_for_timeout(600)
    canvas = page.locator("#toy-draw-canvas")
    assert not canvas.is_visible()  # hidden until "Draw your own" is chosen
    page.get_by_label("Data set").filter(visible=True).first.click()
    page.get_by_role("option", name="Draw your own").click()
    canvas.wait_for(state="visible", timeout=10_000)
    page.get_by_text("Draw on the canvas,").first.wait_for(timeout=10_000)  # the empty plot
    _draw(page, canvas.locator("canvas").first.bounding_box())
    page.get_by_role("button", name="Use my drawing").click()
    page.get_by_text("Using your drawing", exact=False).first.wait_for(timeout=30_000)
    page.wait_for_function(f"({TITLES_JS}).some(t => t.startsWith('drawn: 2,000 points'))",
                           timeout=30_000)
    x, y = page.evaluate(POINTS_JS, "drawn:")
    assert len(x) == 2000
    # Centred and scaled into [−1, 1] along the longer axis: the stroke below the ring makes
    # the drawing taller than wide (1.3 + 1 ring radii against 2), so y spans ≈ [−1, 1].
    width, height = max(x) - min(x), max(y) - min(y)
    assert 1.9 < height < 2.3 and 1.5 < width < 1.95, (width, height)
    assert abs(max(y) + min(y)) < 0.1 and abs(max(x) + min(x)) < 0.1  # centred
    text = page.evaluate("document.body.innerText")
    assert re.search(r"[\d,]+ painted pixels, 2,000 of them \(at random\) kept as anchors",
                     text)
    canvas.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "toy2d_draw_1_used.png"))

    steps = page.get_by_label("Steps", exact=True).filter(visible=True).first
    steps.fill("60")
    steps.press("Tab")
    page.get_by_role("button", name="▶ Train").click()
    page.get_by_text("Done: step 60 / 60", exact=False).first.wait_for(timeout=90_000)
    assert "Started a new model (drawn" in page.evaluate("document.body.innerText")
    page.get_by_role("tab", name="Vector field", exact=True).first.click()
    page.wait_for_function(f"({TITLES_JS}).some(t => /t = \\d+/.test(t))", timeout=30_000)
    titles = page.evaluate(TITLES_JS)
    assert any(re.search(r"t = \d+", t) for t in titles), titles
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "toy2d_draw_2_field.png"))
    page.context.close()


def test_a_link_with_dataset_drawn_opens_the_default_set_with_a_notice(browser, server):
    page = _open(browser, server + "?tab=toy2d&dataset=drawn&points=500", past_start=False)
    page.get_by_text("cannot carry a drawing", exact=False).first.wait_for(timeout=60_000)
    page.wait_for_function(f"({TITLES_JS}).some(t => t.startsWith('moons: 500 points'))",
                           timeout=60_000)
    assert not page.locator("#toy-draw-canvas").is_visible()
    page.screenshot(path=str(ARTIFACTS / "toy2d_draw_3_link.png"))
    page.context.close()
