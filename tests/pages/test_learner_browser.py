"""Issue #14, item 7 in headless Chromium: what only a browser shows.

One-click downloads with real file names (tab 1's schedules CSV, tab 3's samples CSV, tab 4's
GIF and PNG after ■ Stop), the hover boxes that name their t (tab 1's x value, the frames of
tab 3's animations), tab 2's "My upload" note (once, no toast), DDIM's default in tab 3 landing
on the data, tab 4's replay of an instant run, and model-card tables whose words stay whole.

Screenshots for a person to look at go to tests/artifacts/ (git-ignored):
``learner_1_hover.png`` (tab 1's hover box), ``learner_2_upload.png`` (tab 2's note and table),
``learner_3_ddim.png`` (tab 3, DDIM with its defaults, the CSV button), ``learner_3_forward.png``
(the forward animation, "data" … "pure noise"), ``learner_4_replay.png`` (tab 4 replaying),
``learner_4_stopped.png`` (after ■ Stop: ⬇ GIF, ⬇ PNG, ▶ Replay), ``learner_4_card.png`` (the
model card in plain words).
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

HOVER_TEXT = ("[...document.querySelectorAll('.hoverlayer text')].map(t => t.textContent)"
              ".join(' | ')")
# The animated plot with frames registered (pages/widgets/animated.py), hovered at frame k.
HOVER_FRAME_JS = """async (k) => {
  const gd = [...document.querySelectorAll('.dl-anim .js-plotly-plot')].find(
    g => g.offsetParent !== null && g._transitionData && (g._transitionData._frames || []).length);
  const n = gd._transitionData._frames.length;
  const i = k < 0 ? n + k : k;
  await Plotly.animate(gd, ['f' + i], {mode: 'immediate', frame: {duration: 0, redraw: false},
                                       transition: {duration: 0}});
  const trace = gd.data.length - 1;
  Plotly.Fx.hover(gd, [{curveNumber: trace, pointNumber: 0}]);
  await new Promise(r => setTimeout(r, 200));
  return [...document.querySelectorAll('.hoverlayer text')].map(t => t.textContent).join(' | ');
}"""


@pytest.fixture(scope="module")
def page(browser, server):
    """One session for the tests below (each works in its own tab; opening a page of the app
    costs 5–8 s on a busy machine)."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    pg.goto(server)
    pg.get_by_role("tab", name="1 · Noise schedules").first.click()  # past "Start here"
    pg.wait_for_selector(".js-plotly-plot", timeout=60_000)
    pg.wait_for_timeout(800)
    yield pg
    ctx.close()


def _tab(page, tab):
    page.get_by_role("tab", name=tab).first.click()
    page.wait_for_timeout(600)


def _download(page, button) -> str:
    with page.expect_download(timeout=30_000) as info:
        button.click()
    return info.value.suggested_filename


def test_tabs_1_and_2_hover_csv_upload_note_and_table(page):
    _tab(page, "1 · Noise schedules")
    plot = page.locator(".js-plotly-plot").filter(visible=True).first
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.wait_for_function(f"({HOVER_TEXT}).length > 0", timeout=10_000)
    assert re.match(r"t = \d+ \|", page.evaluate(HOVER_TEXT))  # the x value says what it is
    page.screenshot(path=str(ARTIFACTS / "learner_1_hover.png"))
    name = _download(page, page.get_by_role("button", name="⬇ Export CSV"))
    assert name == "diffusion_schedules_T1000.csv"  # one click, a real name
    # the table of tab 1 keeps its words on one line
    nowrap = page.evaluate("getComputedStyle(document.querySelector('.prose table td'))"
                           ".wordBreak")
    assert nowrap == "normal"
    # tab 2 (same page): "My upload" before any upload is one note pointing at the button
    page.get_by_role("tab", name="2 · Forward noising").first.click()
    page.get_by_text("quantity", exact=True).first.wait_for(timeout=30_000)
    page.get_by_label("Image x₀").first.click()
    page.get_by_role("option", name="My upload").click()
    page.get_by_text("Press “Upload your own image…” above", exact=False).first.wait_for(
        timeout=10_000)
    page.wait_for_timeout(800)
    assert page.locator(".toast-body").count() == 0  # a note in place, no warning toast
    upload = page.get_by_role("button", name="Upload your own image…").bounding_box()
    note = page.get_by_text("Press “Upload your own image…” above").first.bounding_box()
    assert upload["y"] < note["y"]  # "above" is true
    headers = page.evaluate("[...document.querySelectorAll('.prose th')].map(h => "
                            "h.textContent.trim())")
    assert "quantity" in headers and all(headers), headers
    page.screenshot(path=str(ARTIFACTS / "learner_2_upload.png"))


def test_toy_ddim_default_lands_on_the_data_and_csv_downloads(page):
    _tab(page, "3 · 2D toy trainer")
    page.get_by_role("button", name="▶ Train").click()
    page.get_by_text("Done: step", exact=False).first.wait_for(timeout=90_000)
    assert "in this one press" in page.evaluate("document.body.innerText")
    page.get_by_role("tab", name="Sample", exact=True).first.click()
    page.get_by_role("radio", name="DDIM", exact=True).filter(visible=True).first.check()
    page.get_by_role("button", name="Sample", exact=True).filter(visible=True).first.click()
    page.wait_for_function("document.body.innerText.includes('the floor; lower')",
                           timeout=60_000)
    text = page.evaluate("document.body.innerText")
    floor_ratio = float(re.search(r"\(([\d.]+)× the floor", text).group(1))
    assert floor_ratio < 2.5, floor_ratio  # was 15× before the data box (DDPM: ~1×)
    assert "x̂0 kept in the data's box" in text
    csv = page.get_by_role("button", name=re.compile(r"moons_samples_ddim_200\.csv"))
    csv.wait_for(timeout=20_000)
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "learner_3_ddim.png"))
    assert _download(page, csv) == "moons_samples_ddim_200.csv"
    # the reverse chain's ends are words; the hover tells the t
    assert page.evaluate(HOVER_FRAME_JS, 0).startswith("pure noise x_T")
    assert "t = −1" in page.evaluate(HOVER_FRAME_JS, -1)
    page.get_by_role("tab", name="Forward diffusion").first.click()
    page.wait_for_function("[...document.querySelectorAll('.dl-anim .js-plotly-plot')].some("
                           "g => g.offsetParent !== null && g._transitionData && "
                           "(g._transitionData._frames || []).length > 5)", timeout=30_000)
    assert "t = −1 (ᾱ = 1)" in page.evaluate(HOVER_FRAME_JS, 0)
    assert re.search(r"t = 199 · ᾱ = 6\.\d+e-08", page.evaluate(HOVER_FRAME_JS, -1))
    ticks = page.evaluate("[...document.querySelectorAll('.slider-label')].map(t => "
                          "t.textContent)")
    assert "data" in ticks and not any("(" in t for t in ticks), ticks  # nothing to cut
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "learner_3_forward.png"))


def test_image_replay_downloads_after_stop_and_plain_card(page):
    _tab(page, "4 · Image sampler")
    page.get_by_role("button", name="▶ Sample").click()
    # a default digits run is over in well under a second: it replays by itself (on a loaded
    # machine it may take longer than INSTANT_S; then ▶ Replay plays the same frames)
    page.wait_for_function("document.body.innerText.includes('Replay · frame') || "
                           "document.body.innerText.includes('✓ Done')", timeout=60_000)
    if "Replay · frame" not in page.evaluate("document.body.innerText"):
        page.wait_for_timeout(300)
        if "Replay · frame" not in page.evaluate("document.body.innerText"):
            page.get_by_role("button", name="▶ Replay").click()
    page.wait_for_function("document.body.innerText.includes('Replay · frame')",
                           timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "learner_4_replay.png"))
    page.wait_for_function("document.body.innerText.includes('Replayed')", timeout=30_000)
    # a long run, stopped: the files of the frames made so far
    page.get_by_role("radio", name="DDPM", exact=True).filter(visible=True).first.check()
    page.wait_for_timeout(600)
    page.get_by_role("button", name="▶ Sample").click()
    page.wait_for_function("/Step \\d+ \\/ 1000/.test(document.body.innerText)", timeout=60_000)
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="■ Stop").first.click()
    page.get_by_text("hold the frames made so far", exact=False).first.wait_for(timeout=20_000)
    page.wait_for_function("[...document.querySelectorAll('button')].filter(b => "
                           "/GIF \\(|PNG \\(/.test(b.textContent) && !b.disabled).length == 2",
                           timeout=20_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "learner_4_stopped.png"))
    assert _download(page, page.get_by_role("button", name=re.compile("⬇ GIF"))) \
        == "reverse_chain.gif"
    assert _download(page, page.get_by_role("button", name=re.compile("⬇ PNG"))) \
        == "partial_chain.png"
    assert page.get_by_role("button", name="▶ Replay").is_enabled()
    # the card: plain words first, the developer card collapsed, no word broken in a cell
    page.get_by_text("Model card").first.click()
    page.get_by_text("What it learned:", exact=False).first.wait_for(timeout=10_000)
    page.get_by_text("Model card").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "learner_4_card.png"))
    assert not page.get_by_text("python -m diffusion_core.train").first.is_visible()
    page.get_by_text("Developer details", exact=False).first.click()
    cell = page.get_by_role("cell", name="architecture", exact=True).first
    cell.wait_for(timeout=10_000)
    lines = cell.evaluate("td => { const r = document.createRange(); "
                          "r.selectNodeContents(td); return r.getClientRects().length; }")
    assert lines == 1  # "architecture" on one line, not "archite / cture"
