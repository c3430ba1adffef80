"""Tab 3's live views in headless Chromium (issue #14, item 1): what only a browser shows.

The vector field follows the t slider's keys (arrows, Home/End) and a typed value; ▶ Train
leaves the live field and sample preview beside the loss; "▶ Play over t" plays client-side
frames from t = T−1 down to 0; Sample draws the traced points' paths.

Screenshots for a person to look at go to tests/artifacts/ (git-ignored):
``toy_live_1_training.png`` (Data & training after ▶ Train: loss, live field, live samples),
``toy_live_2_keys.png`` (the field after End: t = T−1), ``toy_live_3_play.png`` (the field
while playing over t), ``toy_live_4_paths.png`` (samples with the paths of 5 points).
"""

from __future__ import annotations

import os
import re

import pytest

from tests.helpers import ARTIFACTS, CHROMIUM, trained_toy_page

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

TAB3 = re.compile(r"^3 · ")
STEPS = 100  # ▶ Train's steps (the preset's 300 took 9 s here; these views need a model only)
FIELD = "document.querySelector('#dl-toy-field .js-plotly-plot')"
TITLE = f"(() => {{ const g = {FIELD}; return g && g.layout.title.text; }})()"
SLIDER = 'input[type=range][aria-label="range slider for t"]'
# Scrolls the visible plot whose title contains the given text into the middle of the view.
SHOW_PLOT = """(text) => [...document.querySelectorAll('.js-plotly-plot')].find(g =>
  g.offsetParent !== null && g.layout && g.layout.title && (g.layout.title.text || '')
  .includes(text)).scrollIntoView({block: 'center'})"""


@pytest.fixture(scope="module")
def page(browser, server):
    """Tab 3 of one session with the preset trained once for STEPS steps (the tests below
    share it)."""
    ctx, pg = trained_toy_page(browser, server, STEPS)
    yield pg
    ctx.close()


def _wait_title(page, pattern: str, timeout: int = 15_000) -> str:
    """The field's title once it matches ``pattern`` (the title seen then: the plot may be
    drawn anew, title-less for a moment, before a second read)."""
    return page.wait_for_function(f"(() => {{ const t = {TITLE}; return !!t && new RegExp("
                                  f"{pattern!r}).test(t) && t; }})()",
                                  timeout=timeout).json_value()


def test_training_leaves_the_live_field_and_samples_beside_the_loss(page):
    # the final preview: the trained model at the middle t (T = 200: t = 100), step STEPS
    page.wait_for_function(
        "(s) => [...document.querySelectorAll('.js-plotly-plot')].filter(g => g.offsetParent "
        "!== null && g.layout && g.layout.title && (g.layout.title.text || '').endsWith("
        "'step ' + s)).length == 2", arg=STEPS, timeout=30_000)
    titles = page.evaluate("[...document.querySelectorAll('.js-plotly-plot')].filter(g => "
                           "g.offsetParent !== null).map(g => g.layout.title && "
                           "g.layout.title.text)")
    assert f"field at t = 100, step {STEPS}" in titles
    assert f"300 samples (DDIM 20), step {STEPS}" in titles
    page.evaluate(SHOW_PLOT, "samples (DDIM 20)")
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "toy_live_1_training.png"))


def test_keys_and_a_typed_value_move_the_field(page):
    page.get_by_role("tab", name="Vector field", exact=True).first.click()
    page.wait_for_function(f"!!{FIELD} && !!{FIELD}.layout", timeout=30_000)
    assert "t = 100)" in _wait_title(page, r"t = 100\)")  # drawn after ▶ Train
    slider = page.locator(SLIDER).filter(visible=True).first
    slider.focus()
    page.keyboard.press("End")
    assert "t = 199)" in _wait_title(page, r"t = 199\)")
    page.keyboard.press("Home")
    _wait_title(page, r"t = 0\)")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(150)
    assert "t = 3)" in _wait_title(page, r"t = 3\)")  # every press lands (the last one shown)
    # typed into the slider's number box
    box = page.locator('input[type=number][aria-label="number input for t"]').filter(
        visible=True).first
    box.fill("37")
    box.press("Enter")
    assert "t = 37)" in _wait_title(page, r"t = 37\)")
    slider.focus()
    page.keyboard.press("End")
    _wait_title(page, r"t = 199\)")
    page.mouse.move(5, 5)
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / "toy_live_2_keys.png"))


def test_play_over_t_animates_from_noise_to_data(page):
    page.get_by_role("tab", name="Vector field", exact=True).first.click()
    page.get_by_role("button", name="▶ Play over t").click()
    page.wait_for_function(f"(() => {{ const g = {FIELD}; return g && g._transitionData && "
                           "(g._transitionData._frames || []).length == 24; })()",
                           timeout=30_000)
    labels = page.evaluate(f"{FIELD}.layout.sliders[0].steps.map(s => s.label)")
    assert labels[0].startswith("t = 199 · ᾱ") and labels[-1].startswith("t = 0 · ᾱ")
    # it plays by itself: the scrub slider moves on from the first frame (t = 199)
    page.wait_for_function(f"{FIELD}._fullLayout.sliders[0].active >= 4", timeout=20_000)
    page.mouse.move(5, 5)
    page.screenshot(path=str(ARTIFACTS / "toy_live_3_play.png"))
    page.wait_for_function(f"{FIELD}._fullLayout.sliders[0].active == 23", timeout=30_000)
    # the t slider still redraws a plain field afterwards
    slider = page.locator(SLIDER).filter(visible=True).first
    slider.focus()
    page.keyboard.press("Home")
    _wait_title(page, r"t = 0\)")


def test_sample_draws_the_paths_of_traced_points(page):
    page.get_by_role("tab", name="Sample", exact=True).first.click()
    box = page.get_by_label("Trace paths of N points").filter(visible=True).first
    assert box.input_value() == "5"
    page.get_by_role("button", name="Sample", exact=True).filter(visible=True).first.click()
    page.wait_for_function("document.body.innerText.includes('the floor; lower')",
                           timeout=60_000)
    # the plot is written again by the follow-up event (sample_finished): wait until it shows
    names = page.wait_for_function(
        "(() => { const g = [...document.querySelectorAll('.dl-anim .js-plotly-plot')].find("
        "g => g.offsetParent !== null && g.data && g.data.length); "
        "return g && g.data.some(t => t.name === 'samples') && g.data.map(t => t.name); })()",
        timeout=30_000).json_value()
    assert sum(n.startswith("path of point") for n in names) == 5
    assert names[-1] == "samples" and "start (pure noise)" in names and "end (sample)" in names
    assert "paths of 5 points through all 200 steps" in page.evaluate("document.body.innerText")
    page.evaluate(SHOW_PLOT, "Reverse chain")
    page.mouse.move(5, 5)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "toy_live_4_paths.png"))
