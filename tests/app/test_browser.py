"""Layer 3: the app in a real headless Chromium (Debian's package) driven by Playwright.

Loads the app, visits every tab, moves a control and checks the plot changed, trains the 2D
model briefly and stops it, runs the image sampler, scrubs a frame and downloads the GIF.
Screenshots go to tests/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os

import pytest

from tests.helpers import ARTIFACTS, CHROMIUM
from tests.helpers import CHROMIUM_ARGS as ARGS

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      accept_downloads=True)
        pg = context.new_page()
        outside = []
        pg.on("request", lambda r: outside.append(r.url)
              if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
        pg.goto(server)
        pg.get_by_role("tab", name="1 · Noise schedules").first.click()  # past "Start here"
        pg.wait_for_selector(".js-plotly-plot", timeout=60_000)
        pg.outside_requests = outside
        yield pg
        browser.close()


def _tab(page, name):
    page.get_by_role("tab", name=name).first.click()
    page.wait_for_timeout(400)


def _shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"browser_{name}.png"))


def test_schedule_tab_updates_plot(page):
    _tab(page, "1 · Noise schedules")
    n_before = page.evaluate("document.querySelector('.js-plotly-plot')._fullData[0].x.length")
    slider = page.get_by_label("range slider for T (steps)").first
    slider.focus()
    slider.press("Home")  # T → its minimum: the curves get fewer points
    page.wait_for_function(
        f"document.querySelector('.js-plotly-plot')._fullData[0].x.length !== {n_before}",
        timeout=20_000)
    n_after = page.evaluate("document.querySelector('.js-plotly-plot')._fullData[0].x.length")
    assert n_after < n_before
    _shot(page, "1_schedules")


def test_forward_tab_shows_images(page):
    _tab(page, "2 · Forward noising")
    page.wait_for_timeout(1000)
    visible = page.locator("img:visible")
    assert visible.count() >= 4
    _shot(page, "2_forward")


def test_toy_tab_trains_and_stops(page):
    _tab(page, "3 · 2D toy trainer")
    # The preset trains in about a second: ask for more steps so there is time to press Stop.
    steps = page.get_by_label("Steps", exact=True).filter(visible=True).first
    steps.fill("20000")
    steps.press("Enter")
    page.get_by_role("button", name="▶ Train").click()
    # Stop once training is really under way (on a busy machine the job may queue a while).
    page.get_by_text("Training: step", exact=False).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    # A DOM click: playwright's own click waited (in CI, under load) for its scroll or for
    # "scheduled navigations" after the click was done; what is tested is what Stop does.
    page.get_by_role("button", name="■ Stop").first.dispatch_event("click")
    page.get_by_text("Stopped", exact=False).first.wait_for(timeout=20_000)
    page.wait_for_timeout(1000)  # let the outputs' pending fade finish before the picture
    _shot(page, "3_toy_trained")


def test_sampler_tab_runs_scrubs_and_downloads(page):
    _tab(page, "4 · Image sampler")
    page.get_by_role("button", name="▶ Sample").click()
    gif = page.get_by_role("button", name="⬇ GIF")
    page.wait_for_function(
        "[...document.querySelectorAll('button')].some(b => b.textContent.includes('GIF') "
        "&& !b.disabled)", timeout=60_000)
    # The run's last event (.then) redraws both grids: wait for them before the picture.
    page.wait_for_function(
        "[...document.querySelectorAll('img')].filter(i => i.offsetParent !== null "
        "&& i.naturalWidth > 0 && i.closest('[id]') && i.src.includes('png')).length >= 2",
        timeout=30_000)
    page.wait_for_timeout(500)
    _shot(page, "4_sampled")
    slider = page.locator("input[type=range]:visible").last
    slider.focus()
    slider.press("Home")
    page.wait_for_timeout(800)
    _shot(page, "4_scrubbed")
    with page.expect_download(timeout=30_000) as info:
        gif.click()
    path = ARTIFACTS / "browser_download.gif"
    info.value.save_as(path)
    assert path.read_bytes()[:6] in (b"GIF89a", b"GIF87a")


def test_no_requests_leave_localhost(page):
    assert page.outside_requests == [], page.outside_requests[:5]
