"""Lessons and links in headless Chromium: a lesson's button opens its tab with its settings
(including one that changes tab 4's model, whose own handler resets the sampler's controls);
a link opens the view it names and says what it ignored; the 🔗 button's link (also on the
clipboard) opens the same view again.

Screenshots go to tests/artifacts/ (git-ignored) for a person to look at:
``browser_lessons_start.png`` (the Start here tab), ``browser_lesson_1.png`` (tab 1 after
lesson 1: linear with T = 50, the ⚠ row), ``browser_lesson_2.png`` (tab 2: eq. 2 beside
eq. 4 at t = 500), ``browser_lesson_guidance.png`` (tab 4 on digits_cond, class 3, s = 0),
``browser_link_toy2d.png`` (tab 3 from a link, with its notice), ``browser_link_forward.png``
(tab 2 from the 🔗 link, linear T = 200 at t = 150).
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

WAIT_MS = 60_000

# {aria-label or id: value} of the visible inputs (checkboxes: their checked state).
VALUES_JS = """
() => {
  const out = {};
  for (const el of document.querySelectorAll('input, textarea')) {
    if (!el.offsetParent) continue;
    const key = el.getAttribute('aria-label') || el.closest('[id]')?.id || '';
    if (el.type === 'checkbox') {
      const label = el.closest('label')?.innerText?.trim() || key;
      out[label] = el.checked;
    } else if (el.type === 'radio') {
      if (el.checked) out['radio ' + el.name] = el.value;
    } else if (key && !(key in out)) {
      out[key] = el.value;
    }
  }
  return out;
}
"""


def _page(browser, url):
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    page = ctx.new_page()
    page.goto(url)
    return page


def _values(page) -> dict:
    return page.evaluate(VALUES_JS)


def _wait_values(page, expected: dict, timeout=WAIT_MS) -> dict:
    """Wait until every visible input named in ``expected`` shows its value; returns them."""
    page.wait_for_function(
        "([js, want]) => { const v = eval(js)(); return Object.entries(want).every("
        "([k, x]) => String(v[k]) === String(x)); }", arg=[VALUES_JS, expected],
        timeout=timeout)
    return _values(page)


def _selected_tab(page) -> str:
    return page.get_by_role("tab", selected=True).first.inner_text().strip()


def _start(page):
    page.get_by_role("tab", name="Start here").first.click()
    page.wait_for_timeout(300)


def test_lesson_buttons_open_their_tabs_with_every_setting(browser, server):
    page = _page(browser, server)
    page.wait_for_selector("#lesson-never_noise", timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # the page's own load events (early clicks can be lost)
    page.screenshot(path=str(ARTIFACTS / "browser_lessons_start.png"))

    page.click("#lesson-never_noise")
    values = _wait_values(page, {"number input for T (steps)": "50",
                                 "Primary (the other tabs' default)": "linear"})
    assert _selected_tab(page) == "1 · Noise schedules"
    assert values["β_start"] == "0.0001" and values["β_end"] == "0.02"
    assert values["Scale β_start, β_end by 1000/T"] is False
    page.wait_for_function("document.body.innerText.includes('⚠ no')", timeout=WAIT_MS)
    health = page.locator(".dl-health").filter(visible=True).first.inner_text()
    assert "0.603" in health and "77.6%" in health  # ᾱ_{T−1} and √ᾱ_{T−1} of linear, T = 50
    page.wait_for_function("window.scrollY === 0", timeout=WAIT_MS)  # shown from the top
    page.screenshot(path=str(ARTIFACTS / "browser_lesson_1.png"))

    _start(page)
    page.click("#lesson-eq2_eq4")
    values = _wait_values(page, {"number input for t (0 … T−1)": "500", "schedule": "cosine",
                                 "T": "1000", "Image x₀": "China (photo)"})
    assert _selected_tab(page) == "2 · Forward noising"
    assert values["Use tab 1's primary schedule"] is False
    assert values["Compare eq. 2 (step by step) with eq. 4 (closed form)"] is True
    page.get_by_text("at t = 500 (of 0…999)", exact=False).first.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # (the step-by-step chain runs 501 steps beside it)
    page.screenshot(path=str(ARTIFACTS / "browser_lesson_2.png"))

    # Tab 4 on digits, then a lesson on digits_cond: the model changes, its own handler resets
    # the sampler's controls, and the lesson's class and s are set after it.
    _start(page)
    page.click("#lesson-few_steps")
    values = _wait_values(page, {"Steps": "10", "radio " + _radio_name(page, "ddim"): "ddim"})
    assert _selected_tab(page) == "4 · Image sampler"
    assert values["Pretrained model"].startswith("digits (")
    _start(page)
    page.click("#lesson-guidance")
    values = _wait_values(page, {"Class": "3", "Guidance s (0–10)": "0"})
    assert values["Pretrained model"].startswith("digits_cond")
    assert values["Steps"] == "25"  # the lesson left it: the model's own default
    page.wait_for_timeout(800)  # nothing resets them afterwards
    assert _values(page)["Class"] == "3"
    page.screenshot(path=str(ARTIFACTS / "browser_lesson_guidance.png"))
    page.context.close()


def _radio_name(page, value: str) -> str:
    return page.locator(f"input[type=radio][value='{value}']").filter(
        visible=True).first.get_attribute("name")


def test_a_link_opens_its_view_and_lists_what_it_ignored(browser, server):
    page = _page(browser, server + "?tab=toy2d&dataset=spirals&points=500&steps=300&lr=abc"
                 "&foo=1")
    values = _wait_values(page, {"Data set": "spirals", "number input for Points": "500",
                                 "Steps": "300"})
    assert _selected_tab(page).startswith("3 · 2D toy trainer")
    assert values["lr"] == "0.01"  # refused: the default
    assert values["number input for Noise (std)"] == "0.02"  # spirals' own noise
    toast = page.get_by_text("Ignored in this link", exact=False).first
    toast.wait_for(timeout=WAIT_MS)
    text = toast.inner_text()
    assert "'foo' (not a setting of 3 · 2D toy trainer)" in text
    assert "lr: lr must be a number from 1e-06 to 1 (got 'abc')" in text
    page.wait_for_function("document.body.innerText.includes('spirals: 500 points')",
                           timeout=WAIT_MS)  # the data plot is the link's, not the default
    page.screenshot(path=str(ARTIFACTS / "browser_link_toy2d.png"))
    page.context.close()


def test_the_link_button_gives_a_link_that_opens_the_same_view(browser, server):
    query = "?tab=forward&shared=false&schedule=linear&T=200&t=150&image=digit"
    page = _page(browser, server + query)
    expected = {"schedule": "linear", "T": "200", "number input for t (0 … T−1)": "150",
                "Image x₀": "Digit (8×8, smoothed)"}
    _wait_values(page, expected)
    slider = page.get_by_label(re.compile("range slider for t")).filter(visible=True).first
    assert slider.get_attribute("max") == "199"
    page.get_by_text("at t = 150 (of 0…199)", exact=False).first.wait_for(timeout=WAIT_MS)
    assert not page.get_by_text("Error", exact=True).count()  # no handler saw half a view
    page.click("#dl-link-forward")
    box = page.locator("#dl-link-forward-box input, #dl-link-forward-box textarea").first
    page.wait_for_function("(el) => el.value.startsWith('http')", arg=box.element_handle(),
                           timeout=WAIT_MS)
    link = box.input_value()
    assert link.startswith(server) and "tab=forward" in link
    for part in ("shared=false", "schedule=linear", "T=200", "t=150", "image=digit"):
        assert part in link, (part, link)
    assert page.evaluate("navigator.clipboard.readText()") == link
    page.context.close()

    again = _page(browser, link)
    values = _wait_values(again, expected)
    assert values["Use tab 1's primary schedule"] is False
    again.get_by_text("at t = 150 (of 0…199)", exact=False).first.wait_for(timeout=WAIT_MS)
    again.wait_for_timeout(800)
    assert not again.get_by_text("Error", exact=True).count()
    again.screenshot(path=str(ARTIFACTS / "browser_link_forward.png"))
    again.context.close()
