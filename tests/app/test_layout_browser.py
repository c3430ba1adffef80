"""Phone and projector layouts in headless Chromium (pages/layout.py, assets/layout.*).

Phone: 390×844 CSS px, device_scale_factor 2, is_mobile and has_touch (an iPhone 12–14).
Projector: a 1280×720 screen at 150 % browser zoom. Chromium's page zoom lays the page out in
1280/1.5 × 720/1.5 = 853×480 CSS px at devicePixelRatio 1.5, which is exactly what a viewport
of 853×480 with device_scale_factor 1.5 gives (media queries, ``innerWidth`` and Plotly's
sizes all see the zoom). CSS ``zoom: 1.5`` on the page would keep ``innerWidth`` at 1280, so
the page would not lay itself out as a zoomed browser does.

Screenshots go to tests/artifacts/ (git-ignored) for a person to look at:
``layout_phone_<tab>.png`` for each main tab (start, schedules, forward, toy2d, sampler,
imagetrain), ``layout_phone_toy2d_forward.png`` (tab 3's animation, its slider on a line of
its own) and ``layout_projector_<tab>.png`` for each tab with presentation mode on.
"""

from __future__ import annotations

import os

import pytest

from tests.helpers import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

WAIT_MS = 60_000
TABS = {"start": "Start here", "schedules": "1 · Noise schedules",
        "forward": "2 · Forward noising", "toy2d": "3 · 2D toy trainer",
        "sampler": "4 · Image sampler", "imagetrain": "5 · Train images"}
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
             has_touch=True)
PROJECTOR = dict(viewport={"width": 853, "height": 480}, device_scale_factor=1.5)
MAX_SHOT_PX = 3000  # CSS px of a tab's page in its screenshot (the rest is more of the same)

# The visible Plotly figures and, for each, the boxes of its subplots (one drag rectangle per
# subplot), of its titles (figure title and make_subplots' titles) and its adjustment state.
PLOTS_JS = """
() => [...document.querySelectorAll('.js-plotly-plot')].filter((gd) => gd.offsetParent)
  .map((gd) => {
    const box = (el) => { const r = el.getBoundingClientRect();
                          return {l: r.left, r: r.right, t: r.top, b: r.bottom}; };
    return {box: box(gd),
            subplots: [...gd.querySelectorAll('.draglayer .nsewdrag')].map(box),
            titles: [...gd.querySelectorAll('.infolayer .gtitle, .infolayer .annotation')]
                      .filter((el) => el.getBoundingClientRect().width > 0).map(box),
            state: gd.layout._dl ? gd.layout._dl.state : '',
            drawn: gd._fullLayout.width,
            seen: !!gd.layout._dlSeen};  // assets/layout.js has looked at it
  })
"""


@pytest.fixture(scope="module")
def phone(browser, server):
    """One phone page for the phone tests (opening one costs seconds on a busy machine)."""
    page = _open(browser, server, PHONE)
    yield page
    page.context.close()


def _open(browser, server, device: dict):
    page = browser.new_context(**device).new_page()
    page.goto(server)
    page.wait_for_selector("#lesson-never_noise", timeout=WAIT_MS)
    page.wait_for_function("!!window.dlLayout", timeout=WAIT_MS)
    page.wait_for_timeout(800)  # the page's own load events (early clicks can be lost)
    return page


def _show(page, tab: str) -> None:
    """Select ``tab`` and wait for its first view (its plots drawn and seen by the layout JS)."""
    page.get_by_role("tab", name=TABS[tab], exact=True).first.click()
    if tab in ("schedules", "forward", "toy2d"):
        page.locator(".js-plotly-plot").filter(visible=True).first.wait_for(timeout=WAIT_MS)
    page.wait_for_function(f"({PLOTS_JS})().every((p) => p.seen)", timeout=WAIT_MS)
    page.wait_for_timeout(300)
    page.mouse.move(1, 1)  # nothing hovered (the modebar shows on hover)


def _shot(page, name: str) -> None:
    width = page.viewport_size["width"]
    height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_SHOT_PX)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": height})


def _no_page_overflow(page) -> None:
    sw, vw = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sw <= vw, f"the page scrolls sideways: {sw} px wide in a {vw}-px viewport"


def _overlap(a: dict, b: dict) -> bool:
    return min(a["r"], b["r"]) - max(a["l"], b["l"]) > 1 and \
        min(a["b"], b["b"]) - max(a["t"], b["t"]) > 1


def _titles_apart(plot: dict) -> None:
    titles = plot["titles"]
    for i, a in enumerate(titles):
        for b in titles[i + 1:]:
            assert not _overlap(a, b), f"plot titles overlap: {a} and {b}"


def _plots(page) -> list[dict]:
    """The visible plots; each is drawn at its box's width and its titles do not overlap."""
    plots = page.evaluate(PLOTS_JS)
    for plot in plots:
        width = plot["box"]["r"] - plot["box"]["l"]
        assert abs(plot["drawn"] - width) <= 3, f"drawn {plot['drawn']} px wide in {width} px"
        _titles_apart(plot)
    return plots


def _tick_px(page) -> float:
    return page.evaluate("""() => { const gd = [...document.querySelectorAll('.js-plotly-plot')]
        .find((g) => g.offsetParent);
      return parseFloat(getComputedStyle(gd.querySelector('.xtick text')).fontSize); }""")


def test_phone_every_tab_fits_and_every_tab_button_is_reachable(phone):
    page = phone
    assert page.locator("#dl-tabs .overflow-menu").count() == 0  # no "···" menu
    labels = page.evaluate("[...document.querySelectorAll('#dl-tabs > .tab-wrapper "
                           "> [role=tablist] > [role=tab]')].map((b) => b.innerText.trim())")
    assert labels == list(TABS.values())
    bar_scrolls = page.evaluate("""() => { const bar = document.querySelector(
        '#dl-tabs > .tab-wrapper > [role=tablist]'); const cs = getComputedStyle(bar);
      return [bar.scrollWidth > bar.clientWidth, cs.overflowX, cs.flexWrap]; }""")
    assert bar_scrolls == [True, "auto", "nowrap"]  # one line that scrolls sideways
    for tab, label in TABS.items():
        button = page.get_by_role("tab", name=label, exact=True).first
        button.scroll_into_view_if_needed()  # scrolls the tab bar, as a swipe would
        box, bar = button.bounding_box(), page.locator("#dl-tabs [role=tablist]").first \
            .bounding_box()
        assert bar["x"] - 1 <= box["x"] and box["x"] + box["width"] <= bar["x"] + bar["width"] + 1
        _show(page, tab)
        _no_page_overflow(page)
        assert page.evaluate("window.scrollX") == 0
        for plot in _plots(page):
            assert plot["box"]["r"] <= 390 + 0.5, plot["box"]  # no plot wider than the phone
        _shot(page, f"layout_phone_{tab}")


def test_phone_tab1_plots_stack_before_their_controls_and_the_table_scrolls(phone):
    page = phone
    _show(page, "schedules")
    page.wait_for_function(f"({PLOTS_JS})().some((p) => p.state.startsWith('stack'))",
                           timeout=WAIT_MS)
    plot = next(p for p in _plots(page) if len(p["subplots"]) == 4)
    boxes = sorted(plot["subplots"], key=lambda b: b["t"])
    width = plot["box"]["r"] - plot["box"]["l"]
    for upper, lower in zip(boxes, boxes[1:], strict=False):
        assert upper["b"] + 40 <= lower["t"]  # one per row, room for ticks and a title
    for b in boxes:
        assert b["r"] - b["l"] >= 0.7 * width  # each subplot takes the figure's width
    _titles_apart(plot)
    assert len(plot["titles"]) >= 4
    for t in plot["titles"]:  # inside the figure (long titles get a smaller font)
        assert plot["box"]["l"] - 1 <= t["l"] and t["r"] <= plot["box"]["r"] + 1, t
    # The controls come after the plot they drive.
    slider = page.get_by_label("range slider for T (steps)").filter(visible=True).first
    assert slider.bounding_box()["y"] > plot["box"]["b"]
    # The ends-in-noise table scrolls sideways inside its box.
    table = page.evaluate("""() => { const t = [...document.querySelectorAll('.dl-health table')]
        .find((e) => e.offsetParent); const r = t.getBoundingClientRect();
      return [t.scrollWidth > t.clientWidth, getComputedStyle(t).overflowX, r.right]; }""")
    assert table[0] and table[1] == "auto" and table[2] <= 390


def test_phone_sliders_get_a_line_of_their_own(phone):
    page = phone
    _show(page, "sampler")  # tab 4's frame slider sat beside three buttons
    label = page.get_by_text("Frame: scrub the reverse chain after a run", exact=True) \
        .filter(visible=True).first
    lines = label.evaluate("(el) => el.getBoundingClientRect().height / "
                           "parseFloat(getComputedStyle(el).lineHeight)")
    assert lines < 3.5, f"the frame slider's label wraps onto {lines:.1f} lines"
    rng = page.get_by_label("range slider for Frame: scrub the reverse chain after a run") \
        .filter(visible=True).first
    assert rng.bounding_box()["width"] >= 260  # (it was 176 px beside the buttons)

    _show(page, "toy2d")  # its forward-diffusion animation: ▶/❚❚ above a full-width slider
    page.get_by_role("tab", name="Forward diffusion", exact=True).first.click()
    page.wait_for_function("[...document.querySelectorAll('.dl-anim .js-plotly-plot')].some("
                           "(gd) => gd.offsetParent && gd.layout._dl)", timeout=WAIT_MS)
    page.wait_for_timeout(300)
    rail, plot = page.evaluate("""() => { const gd = [...document.querySelectorAll(
        '.dl-anim .js-plotly-plot')].find((g) => g.offsetParent);
      return [gd.querySelector('.slider-rail-rect').getBoundingClientRect().width,
              gd._fullLayout._size.w]; }""")
    assert rail >= 0.9 * plot, (rail, plot)  # the plot area's width (it was 0.7 of it)
    gd = page.locator(".dl-anim .js-plotly-plot").filter(visible=True).first
    gd.scroll_into_view_if_needed()
    page.mouse.move(1, 1)
    gd.screenshot(path=str(ARTIFACTS / "layout_phone_toy2d_forward.png"))


def test_projector_modebar_on_hover_and_presentation_mode(browser, server):
    page = _open(browser, server, PROJECTOR)
    _show(page, "schedules")
    page.wait_for_function(f"({PLOTS_JS})().length > 0", timeout=WAIT_MS)
    before = _tick_px(page)
    # The modebar shows only while the pointer is over the plot.
    gd = page.locator(".js-plotly-plot").filter(visible=True).first
    opacity = "(el) => getComputedStyle(el.querySelector('.modebar-container')).opacity"
    assert gd.evaluate(opacity) == "0"
    gd.hover()
    page.wait_for_timeout(400)  # its 0.2-s fade
    assert gd.evaluate(opacity) == "1"
    page.mouse.move(1, 1)
    page.wait_for_timeout(400)
    assert gd.evaluate(opacity) == "0"

    explain = page.get_by_text("What am I looking at? (definitions and equations)", exact=True)
    assert explain.filter(visible=True).count() == 1
    box = page.locator("#dl-present-box input")
    box.check()
    page.wait_for_function(f"({PLOTS_JS})().every((p) => p.state.includes('present'))",
                           timeout=WAIT_MS)
    page.wait_for_timeout(300)
    after = _tick_px(page)
    assert after >= 1.25 * before, (before, after)  # FONT_SCALE = 1.3
    widths = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .find((g) => g.offsetParent).querySelectorAll('.scatterlayer .js-line')[0]
        .style.strokeWidth""")
    assert float(widths.removesuffix("px")) >= 2.5 * 1.5  # 2.5-px lines × LINE_SCALE
    assert explain.filter(visible=True).count() == 0  # the explanations are hidden
    body_px = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                            "'.dl-health')).fontSize)")
    assert body_px >= 18
    for tab in TABS:
        _show(page, tab)
        assert box.is_checked()
        assert page.evaluate("document.body.classList.contains('dl-present')")
        _no_page_overflow(page)
        plots = _plots(page)
        if tab in ("schedules", "forward"):
            assert plots and all("present" in p["state"] for p in plots)
        _shot(page, f"layout_projector_{tab}")

    page.reload()  # this browser remembers the choice
    page.wait_for_selector("#lesson-never_noise", timeout=WAIT_MS)
    page.wait_for_function("document.body.classList.contains('dl-present')", timeout=WAIT_MS)
    # The box is ticked by layout.js once Gradio has wired it (a few 300-ms tries), not at once.
    page.wait_for_function("document.querySelector('#dl-present-box input')?.checked === true",
                           timeout=WAIT_MS)
    _show(page, "schedules")
    page.wait_for_function(f"({PLOTS_JS})().every((p) => p.state.includes('present'))",
                           timeout=WAIT_MS)
    page.locator("#dl-present-box input").uncheck()
    page.wait_for_function(f"({PLOTS_JS})().every((p) => !p.state.includes('present'))",
                           timeout=WAIT_MS)
    page.wait_for_timeout(300)
    assert _tick_px(page) == pytest.approx(before)
    page.context.close()
