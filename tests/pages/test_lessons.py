"""Lessons and shareable links: the registry of each tab's controls, every lesson's settings
checked against it and applied, links read and written, and what a bad link gets.

The browser side (a lesson's button opens its tab with its settings; a link opens its view) is
``test_lessons_browser.py``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import gradio as gr
import plotly.graph_objects as go
import pytest

from pages import common, links
from pages.lessons import LESSONS, card_md
from pages.widgets import inputs as ui
from tests.helpers import load_event_for

TABS = ("schedules", "forward", "toy2d", "sampler", "imagetrain")


class FakeRequest:
    """What the handlers read of a ``gr.Request``: the page's query parameters."""

    def __init__(self, params):
        self.query_params = dict(params)


@pytest.fixture(scope="module")
def demo():
    import app

    return app.build_demo()


@pytest.fixture(scope="module")
def spec(demo):
    return links.spec_of(demo)


@pytest.fixture
def warnings_seen(monkeypatch):
    """Every gr.Warning raised while the test runs (tabs and links call ``gr.Warning``)."""
    seen: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: seen.append(str(message)))
    return seen


def _fns(demo, qualname_part):
    return [fn for fn in demo.fns.values() if qualname_part in getattr(fn.fn, "__qualname__", "")]


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


def test_every_tab_registers_readable_shareable_controls(demo, spec):
    assert list(spec.tabs) == ["start", *TABS]
    assert spec.tabs["start"] is None
    top = next(b for b in demo.blocks.values() if isinstance(b, gr.Tabs))  # the app's own
    assert [tab.id for tab in top.children] == ["start", *TABS]  # "Start here" comes first
    blocks = set(demo.blocks.values())
    for tab in TABS:
        tl = spec.tabs[tab]
        assert len(tl.controls) >= 6, tab
        for c in tl.controls:
            assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", c.name), c.name
            assert c.component in blocks
            assert isinstance(c.component, ui.Slider | ui.Number | ui.Dropdown | ui.Radio
                              | ui.Checkbox | ui.CheckboxGroup)
            c.check(c.default)  # every default passes its own check
    assert spec.tabs["sampler"].key == "model"  # choosing the model resets the sampler's
    assert {"dataset", "steps", "points"} <= {c.name for c in spec.tabs["toy2d"].controls}


def test_a_control_checks_values_with_its_components_own_check(spec):
    T = spec.tabs["schedules"].get("T")
    assert T.parse("50") == 50 and isinstance(T.parse("50"), int)
    for bad in ("5", "4001", "abc", "", "nan", "1e400", "50.5"):
        with pytest.raises(gr.Error):
            T.parse(bad)
    kinds = spec.tabs["schedules"].get("schedules")
    assert kinds.parse("linear,cosine") == ["linear", "cosine"]
    assert kinds.parse("Linear") == ["linear"]  # case does not matter for a choice
    assert kinds.parse("") == []
    with pytest.raises(gr.Error, match="not one of the choices"):
        kinds.parse("linear,wiggly")
    scale = spec.tabs["schedules"].get("scale_to_T")
    assert scale.parse("true") is True and scale.parse("off") is False
    with pytest.raises(gr.Error):
        scale.parse("maybe")
    width = spec.tabs["toy2d"].get("width")
    assert width.parse("256") == 256  # a choice whose value is a number
    assert spec.tabs["imagetrain"].get("steps").parse("") is None  # empty: the recipe's
    cls = spec.tabs["sampler"].get("class")  # the model's classes are checked by its view
    assert cls.parse("3") == "3"
    with pytest.raises(gr.Error):
        cls.parse("<script>")


# ---------------------------------------------------------------------------------------------
# Lessons
# ---------------------------------------------------------------------------------------------


def test_at_least_eight_short_lessons_cover_every_tab():
    assert len(LESSONS) >= 8
    assert len({ls.key for ls in LESSONS}) == len(LESSONS)
    assert {ls.tab for ls in LESSONS} == set(TABS)
    for ls in LESSONS:
        words = len(card_md(1, ls).split())
        assert 60 <= words <= 230, (ls.key, words)  # a few sentences, a notice, a question
        assert ls.question.rstrip().endswith("?"), ls.key
        assert ls.text.count("$") % 2 == 0 and ls.notice.count("$") % 2 == 0, ls.key


def test_every_lessons_settings_are_valid_settings_of_its_tab(spec):
    for ls in LESSONS:
        checked = spec.check(ls.tab, ls.settings_dict)
        assert checked.keys() == ls.settings_dict.keys()
        for name, value in ls.settings_dict.items():
            assert links._same(checked[name], value), (ls.key, name, checked[name], value)


def test_a_misspelt_name_or_an_out_of_range_value_fails_the_check(spec):
    with pytest.raises(ValueError, match="'TT' is not a setting"):
        spec.check("schedules", {"TT": 50})
    with pytest.raises(ValueError, match="T = 9999"):
        spec.check("schedules", {"T": 9999})
    with pytest.raises(ValueError, match="dataset"):
        spec.check("toy2d", {"dataset": "spiral"})
    with pytest.raises(ValueError, match="unknown tab"):
        spec.check("toy3d", {})
    with pytest.raises(ValueError, match="not a setting"):
        spec.check("start", {"T": 50})


def _view_inputs(tab):
    """What applying settings reads besides the key: tab 2 reads tab 1's schedule."""
    from diffusion_core.schedule.config import ScheduleConfig

    return [ScheduleConfig(kind="cosine", T=1000).to_dict()] if tab == "forward" else []


def test_applying_each_lesson_sets_every_control_of_its_tab_without_a_warning(
        spec, warnings_seen):
    for ls in LESSONS:
        tl = spec.tabs[ls.tab]
        updates = tl.updates(ls.settings_dict, _view_inputs(ls.tab))
        assert warnings_seen == [], (ls.key, warnings_seen)
        _, values = links.split_updates(updates, {c.component for c in tl.controls})
        for c in tl.controls:  # every control gets a value: the lesson's, else a default
            assert c.component in values, (ls.key, c.name)
        for name, value in ls.settings_dict.items():
            assert links._same(values[tl.get(name).component], value), (ls.key, name)
    # The views drew what the lessons promise.
    sched = spec.tabs["schedules"]
    up = sched.updates(LESSONS[0].settings_dict)
    plot, health = (o for o in sched.view.outputs[:2])
    assert isinstance(up[plot], go.Figure) and {tr.name for tr in up[plot].data} == {
        "linear", "cosine"}
    assert "⚠ no" in up[health] and "0.603" in up[health]  # ᾱ_{T−1} of linear, T = 50
    fwd = spec.tabs["forward"]
    up = fwd.updates(LESSONS[1].settings_dict, _view_inputs("forward"))
    state = next(v for v in up.values() if isinstance(v, dict) and "config" in v)
    assert state["config"]["kind"] == "cosine" and state["config"]["T"] == 1000
    t_update = up[fwd.get("t").component]
    assert t_update["value"] == 500 and t_update["maximum"] == 999


def test_a_lesson_that_changes_the_model_sets_the_rest_after_the_models_own_handler(
        demo, spec, warnings_seen):
    guidance = next(ls for ls in LESSONS if ls.key == "guidance")
    button = next(b for b in demo.blocks.values()
                  if getattr(b, "elem_id", None) == f"lesson-{guidance.key}")
    first = next(fn for fn in _fns(demo, "two_steps.<locals>.step1")
                 if (button._id, "click") in fn.targets)
    model = spec.tabs["sampler"].key_component
    out = dict(zip(first.outputs, first.fn(None, "digits"), strict=True))  # on "digits" now
    assert out[first.outputs[1]].selected == "sampler" and out[model] == "digits_cond"
    pending = out[first.outputs[2]]
    assert pending["key"] == "digits_cond"
    # The model's own handler runs (it resets class and s); then settle sets the lesson's.
    settle = next(fn for fn in _fns(demo, "settle") if model in fn.inputs)
    after = dict(zip(settle.outputs, settle.fn(pending, "digits_cond"), strict=True))
    cls = spec.tabs["sampler"].get("class").component
    assert after[cls]["value"] == "3" and ("3", "3") in after[cls]["choices"]
    assert after[spec.tabs["sampler"].get("guidance").component]["value"] == 0.0
    assert after[settle.outputs[0]] is None  # used once
    # Any other change of the model (a person choosing one) drops what was kept.
    dropped = settle.fn(pending, "shapes")
    assert dropped[0] is None and all(v == gr.skip() for v in dropped[1:])
    assert warnings_seen == []


def test_a_lesson_on_the_model_already_chosen_sets_everything_at_once(demo, spec):
    few = next(ls for ls in LESSONS if ls.key == "few_steps")
    button = next(b for b in demo.blocks.values()
                  if getattr(b, "elem_id", None) == f"lesson-{few.key}")
    first = next(fn for fn in _fns(demo, "two_steps.<locals>.step1")
                 if (button._id, "click") in fn.targets)
    out = dict(zip(first.outputs, first.fn(None, "digits"), strict=True))
    steps = spec.tabs["sampler"].get("steps").component
    assert out[steps] == {"__type__": "update", "maximum": 1000}  # the range first …
    staged = out[first.outputs[0]]["values"]  # … then every value, plain
    second = next(fn for fn in _fns(demo, "two_steps.<locals>.step2")
                  if fn.outputs[1:] == first.outputs[3:])
    values = dict(zip(second.outputs[1:], staged, strict=True))
    assert values[steps] == 10 and values[spec.tabs["sampler"].get("sampler").component] == "ddim"


# ---------------------------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------------------------


def _accepted(c: links.Control, value) -> bool:
    """Whether a link may carry ``value`` (tab 3's list offers "drawn", which a link cannot
    carry: pages/toy2d/draw.py)."""
    try:
        c.check(value)
    except gr.Error:
        return False
    return True


def _another_value(c: links.Control):
    """A valid value of ``c`` other than its default (or the default if it has no other)."""
    comp, default = c.component, c.default
    if isinstance(comp, ui.Checkbox):
        return not default
    if isinstance(comp, ui.CheckboxGroup):
        return [v for _, v in comp.choices][:1]
    if isinstance(comp, ui.Dropdown | ui.Radio):
        others = [v for _, v in comp.choices if v != default and _accepted(c, v)]
        return others[-1] if others else default
    lo = comp.minimum if comp.minimum is not None else 0
    return lo if default is None or default != lo else (comp.maximum or lo + 1)


def test_a_link_written_from_a_view_reads_back_to_the_same_settings(spec):
    for tab in TABS:
        tl = spec.tabs[tab]
        values = {c.name: _another_value(c) for c in tl.controls}
        if tab == "forward":
            values["t"] = 10  # within T − 1 of the view's schedule
        query = spec.query(tab, values)
        assert query.startswith(f"?tab={tab}&")
        parsed = spec.parse(dict(parse_qsl(query[1:], keep_blank_values=True)))
        assert parsed.tab == tab and parsed.ignored == [], (tab, parsed.ignored)
        changed = {n: v for n, v in values.items()
                   if tl.get(n).always or not links._same(v, tl.get(n).default)}
        assert parsed.given.keys() == changed.keys(), tab
        for name, value in changed.items():
            assert links._same(parsed.given[name], value), (tab, name)


def test_links_are_short_and_readable(spec):
    tl = spec.tabs["toy2d"]
    values = {c.name: c.default for c in tl.controls}
    values.update(dataset="spirals", steps=600)
    query = spec.query("toy2d", values)
    # Only what differs from the defaults (and the noise, whose default is the data set's).
    assert query == "?tab=toy2d&dataset=spirals&noise=0.05&steps=600"
    kinds = {c.name: c.default for c in spec.tabs["schedules"].controls}
    kinds.update(schedules=["linear", "sigmoid"], x_axis="t / T")
    assert spec.query("schedules", kinds) == ("?tab=schedules&schedules=linear,sigmoid"
                                              "&x_axis=t%20/%20T")
    parsed = spec.parse({"tab": "toy2d", "dataset": "spirals", "steps": "300"})
    assert parsed.given == {"dataset": "spirals", "steps": 300} and parsed.ignored == []


def test_unknown_and_out_of_range_parameters_are_ignored_with_a_short_notice(spec):
    long = "x" * 5000
    parsed = spec.parse({"tab": "toy2d", "dataset": "spirals", "foo": "1", "steps": "10000000",
                         "points": "abc", "width": long, long: "1", "__theme": "dark"})
    assert parsed.tab == "toy2d" and parsed.given == {"dataset": "spirals"}
    assert len(parsed.ignored) == 5
    notice = spec.notice(parsed.ignored)
    assert notice.startswith("Ignored in this link: ")
    for part in ("'foo' (not a setting of 3 · 2D toy trainer)", "steps: Steps must be",
                 "points: Points must be", "width: Width:"):
        assert part in notice, part
    assert "x" * (common.SHORT + 1) not in notice and len(notice) < 900  # echoes short prefixes
    assert "__theme" not in notice  # Gradio's own parameters are left alone
    assert spec.parse({"tab": "toy3d", "T": "5"}).tab is None
    no_tab = spec.parse({"dataset": "spirals"})
    assert no_tab.tab is None and "names no tab" in no_tab.ignored[0]
    assert spec.parse({}) == links.Parsed(None, {}, [])
    many = spec.parse({"tab": "schedules", **{f"p{i}": "1" for i in range(200)}})
    assert len(many.ignored) == links.MAX_PARAMS  # 59 unknown names + "… past the first 60"
    assert "past the first" in many.ignored[0]


def test_a_link_whose_settings_do_not_fit_together_shows_the_defaults(spec, warnings_seen):
    tl = spec.tabs["schedules"]
    given = {"beta_start": 0.5, "beta_end": 0.1}  # each in range, but β_end < β_start
    up = tl.updates(given)
    assert warnings_seen and "do not work together" in warnings_seen[0]
    assert up[tl.get("beta_start").component] == tl.get("beta_start").default
    fwd = spec.tabs["forward"]
    up = fwd.updates({"shared": False, "T": 50, "t": 600}, _view_inputs("forward"))
    assert "past this schedule's last step" in warnings_seen[-1]
    assert up[fwd.get("t").component]["value"] == 49


def test_a_page_opened_from_a_link_skips_that_tabs_own_first_view(demo, spec):
    plot = spec.tabs["schedules"].view.outputs[0]
    first_view = load_event_for(demo, plot)
    fig, _ = first_view.fn(FakeRequest({}))
    assert isinstance(fig, go.Figure)
    assert first_view.fn(FakeRequest({"tab": "schedules", "T": "50"})) == gr.skip()
    assert first_view.fn(FakeRequest({"tab": "toy2d"}))[0] is not None  # another tab's link
    assert first_view.fn() is not None  # called without a request (as tests do): runs


def test_the_link_event_reads_the_pages_address(demo, spec, warnings_seen):
    first = next(fn for fn in _fns(demo, "two_steps.<locals>.step1")  # after the page load
                 if not any(ev == "click" for _, ev in fn.targets))
    request = FakeRequest({"tab": "toy2d", "dataset": "spirals", "bogus": "1"})
    out = dict(zip(first.outputs, first.fn(request, *[None] * len(first.inputs)), strict=True))
    assert out[first.outputs[1]].selected == "toy2d"
    values = dict(zip(first.outputs[3:], out[first.outputs[0]]["values"], strict=True))
    assert values[spec.tabs["toy2d"].get("dataset").component] == "spirals"
    assert warnings_seen == ["Ignored in this link: 'bogus' (not a setting of 3 · 2D toy "
                             "trainer)."]
    nothing = first.fn(FakeRequest({}), *[None] * len(first.inputs))
    assert all(v == gr.skip() for v in nothing[1:])


def test_the_link_button_writes_the_tabs_link(demo, spec):
    button = next(b for b in demo.blocks.values()
                  if getattr(b, "elem_id", None) == "dl-link-toy2d")
    build = next(fn for fn in demo.fns.values() if (button._id, "click") in fn.targets)
    values = [c.default for c in spec.tabs["toy2d"].controls]
    values[0] = "circles"
    update = build.fn(*values)
    assert update["visible"] is True
    assert update["value"] == "?tab=toy2d&dataset=circles&noise=0.05"
    assert urlsplit("http://h/" + update["value"]).query.startswith("tab=toy2d")


def test_the_readme_lists_every_links_parameter(spec):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| ([\w, ]+) \|$", readme, re.M))
    for tab in TABS:
        assert rows[tab].split(", ") == [c.name for c in spec.tabs[tab].controls], tab

