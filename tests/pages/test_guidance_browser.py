"""Guidance in headless Chromium: tab 3's Guidance sub-tab follows the s slider live (keys, not
only a mouse release), and tab 4's digit × scale grid and its curve draw.

Screenshots go to tests/artifacts/ (git-ignored) for a person to look at:
``browser_3_guidance.png`` (fields and samples at s = 5), ``browser_3_guidance_curve.png``,
``browser_4_guidance.png`` (the digit × scale grid), ``browser_4_guidance_curve.png`` (the
accuracy / spread curve against s).
"""

from __future__ import annotations

import os
import re

import pytest

from tests.helpers import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

@pytest.fixture(scope="module")
def page(browser, server):
    """One session for both tests (tab 3's and tab 4's guidance views are apart)."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    pg = ctx.new_page()
    pg.goto(server)
    pg.get_by_role("tab", name="1 · Noise schedules").first.click()  # past "Start here"
    pg.wait_for_selector(".js-plotly-plot", timeout=60_000)
    yield pg
    ctx.close()


def _tab(page, tab):
    page.get_by_role("tab", name=tab).first.click()
    page.wait_for_timeout(400)


def _guide_text(page) -> str:
    return page.evaluate("document.body.innerText")


def test_2d_guidance_trains_with_labels_and_follows_the_scale_live(page):
    _tab(page, "3 · 2D toy trainer")
    page.get_by_label("Train with class labels (for guidance)").check()
    page.get_by_role("button", name="▶ Train").click()
    page.get_by_text("Done: step", exact=False).first.wait_for(timeout=90_000)
    page.get_by_role("tab", name="Guidance").first.click()
    # The view draws once the conditional model exists (after ▶ Train).
    page.wait_for_function("document.body.innerText.includes('s = 2')", timeout=30_000)
    slider = page.get_by_label(re.compile("range slider for guidance scale s")).first
    slider.focus()
    # s 2 → 5 by keys: no mouse release at all. PageUp moves a range input by a tenth of its
    # range (0–10 here), so three presses; 30 presses of ArrowRight (step 0.1) took ~40 s.
    for _ in range(3):
        slider.press("PageUp")
    page.wait_for_function("document.body.innerText.includes('s = 5')", timeout=30_000)
    page.wait_for_timeout(600)
    text = _guide_text(page)
    assert "s = 5" in text
    page.locator(".js-plotly-plot").filter(visible=True).first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "browser_3_guidance.png"))
    page.get_by_role("button", name="Trade-off curve").click()
    page.get_by_text("Fidelity–diversity trade-off", exact=False).first.wait_for(timeout=90_000)
    assert "| accuracy |" not in _guide_text(page)  # a table, rendered
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Trade-off curve").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_3_guidance_curve.png"))


def test_digit_grid_and_curve_draw_for_the_conditional_model(page):
    _tab(page, "4 · Image sampler")
    model = page.get_by_label("Pretrained model").first
    model.click()
    page.get_by_role("option", name=re.compile("^digits_cond")).first.click()
    # Class and Guidance s appear for a class-conditional model.
    page.get_by_label("Class", exact=True).first.wait_for(state="visible", timeout=30_000)
    page.get_by_text("Guidance: digit × scale grid").first.click()
    page.get_by_role("button", name="▶ Grid").click()
    page.wait_for_function(
        "[...document.querySelectorAll('img')].some(i => i.offsetParent !== null && "
        "i.naturalWidth > 200 && i.naturalHeight > 500)", timeout=60_000)  # 10 rows × 4 s
    page.get_by_role("button", name="▶ Measure").click()
    page.wait_for_function("document.body.innerText.includes('read as requested') && "
                           "/\\d scales in [\\d.]+ s/.test(document.body.innerText)",
                           timeout=120_000)  # the table, and the run is over
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="▶ Grid").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_4_guidance.png"), full_page=False)
    page.get_by_text("read as requested", exact=False).last.scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / "browser_4_guidance_curve.png"), full_page=False)
