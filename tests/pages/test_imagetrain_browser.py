"""Tab 5 in headless Chromium: ▶ Train draws the panel and the loss, the trained model joins
tab 4's list in this browser session only and samples there.

Screenshots go to tests/artifacts/ (git-ignored) for a person to look at:
``browser_5_training.png`` (the panel while training), ``browser_5_trained.png`` (after the
run: panel, loss curve, ⬇ Download), ``browser_5_in_sampler.png`` (tab 4 sampling the model).
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

MINE = "★ your digits8 model"
STEPS = 80  # ▶ Train's steps in the test


def _open(browser, server, tab, ready):
    """A new browser context (a new session) on ``tab``, once ``ready`` (a locator maker)
    shows: a click before the page has loaded is lost, so it is repeated until then."""
    pg = browser.new_context(viewport={"width": 1366, "height": 1000}).new_page()
    pg.goto(server)
    pg.get_by_role("tab", name="1 · Noise schedules").first.click()  # past "Start here"
    pg.get_by_role("tab", name=tab).first.wait_for(timeout=60_000)
    for _ in range(30):
        pg.get_by_role("tab", name=tab).first.click()
        try:
            ready(pg).wait_for(state="visible", timeout=3_000)
            break
        except sync_api.TimeoutError:
            continue
    pg.wait_for_timeout(400)
    return pg


def _train_tab(pg):
    return pg.locator(".js-plotly-plot").filter(visible=True).first


def _sampler_tab(pg):
    return pg.get_by_text("trained with", exact=False).filter(visible=True).first


def _text(page) -> str:
    return page.evaluate("document.body.innerText")


def _model_options(page) -> list[str]:
    page.get_by_label("Pretrained model").first.click()
    page.wait_for_timeout(300)
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return options


def test_train_watch_the_panel_then_sample_the_model_in_tab_4(browser, server):
    page = _open(browser, server, "5 · Train images", _train_tab)
    # The tab's defaults (8×8 digits, U-Net small, the quick recipe, cosine T = 1000) for 80
    # of the recipe's 400 steps: blobs with a stroke here and there (≈ 10–25 s here; 150
    # steps drew some digits but took twice as long).
    assert page.get_by_label("Steps (this press)").first.input_value() == "400"
    page.get_by_label("Steps (this press)").first.fill(str(STEPS))
    page.get_by_role("button", name="▶ Train").click()
    # The first panel comes before any step: three pictures with their t values.
    page.wait_for_function("document.body.innerText.includes('Step 0 /') || "
                           "document.body.innerText.includes('Training: step')",
                           timeout=30_000)
    page.get_by_text("(a) training images noised", exact=False).first.wait_for(timeout=10_000)
    # a panel from a model in training: a quarter of the steps done or more (or all of them)
    page.wait_for_function("(n) => { const m = /(Training|Done): step (\\d+)/.exec("
                           "document.body.innerText); return !!m && 4 * Number(m[2]) >= n; }",
                           arg=STEPS, timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "browser_5_training.png"))
    # Done, or stopped by the server's 60 s budget on a slow machine (the model is kept).
    page.wait_for_function(f"document.body.innerText.includes('Done: step {STEPS} / {STEPS}') "
                           "|| document.body.innerText.includes('Stopped at the 60 s limit')",
                           timeout=120_000)
    page.get_by_text("✓ In tab 4 (Image sampler)", exact=False).first.wait_for(timeout=30_000)
    download = page.get_by_role("button", name=re.compile(r"Download the model \([\d.]+ [kM]B\)"))
    download.wait_for(timeout=10_000)
    assert download.is_enabled()
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "browser_5_trained.png"))

    page.get_by_role("tab", name="4 · Image sampler").first.click()
    page.wait_for_timeout(800)
    options = _model_options(page)
    assert any(o.startswith(MINE) for o in options), options
    model = page.get_by_label("Pretrained model").first
    model.fill("★ your digits8")  # filter the list, then take its first entry
    page.wait_for_timeout(400)
    model.press("ArrowDown")
    model.press("Enter")
    page.wait_for_function("document.body.innerText.includes('U-Net, 0.47 M parameters')",
                           timeout=30_000)
    page.get_by_role("button", name="▶ Sample").click()
    page.get_by_text("✓ Done", exact=False).first.wait_for(timeout=60_000)
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "browser_5_in_sampler.png"))
    assert "digits8" in _text(page)

    other = _open(browser, server, "4 · Image sampler", _sampler_tab)  # another session
    assert not any(o.startswith("★") for o in _model_options(other))
    other.context.close()
    page.context.close()
