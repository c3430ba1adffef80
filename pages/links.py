"""Shareable links and the lessons' settings: each tab's controls under readable names.

A link is the app's address with query parameters, one per control, under names a person can
read: ``?tab=toy2d&dataset=spirals&steps=300``. ``tab`` is a tab's id (``app.py``); every other
parameter names one of that tab's *shareable controls*. A tab's ``render`` returns them as a
:class:`TabLinks` (name → component, plus the tab's :class:`View`); ``app.py`` hands them to
:func:`wire`. The tabs know nothing of links or of each other.

**Reading a value** reuses the control's own check: the :mod:`pages.widgets.inputs` components
refuse a bad value in ``preprocess`` with a readable :class:`~pages.common.UserError`, before
any handler runs. A parameter with an unknown name, or a value that check refuses, is ignored,
and one notice (``gr.Warning``) lists what was ignored, echoing at most a short prefix of what
came in. Gradio's own parameters (``__theme``) are left alone.

**Applying settings** — a link when the page opens, a lesson's button on the *Start here* tab —
selects the tab and sets every shareable control of it: the given value, else the control's
default (its value when the app was built). Many of a tab's own events listen to ``.input``,
``.release`` or ``.submit``, which only a person fires, so setting controls from a program
would redraw nothing; the tab's :class:`View` computes its view from the same values (the
schedule plot, the noised image, the data plot, the model's card) and it is set with them.
When the page opens from a link to a tab, that tab's own first view steps aside
(:func:`pages.common.on_load`) and the link's is the first.

It takes two events (measured in Chromium; :func:`wire` says why): first the tab, the
controls' other properties (a slider's range, a list's choices) and the view's figures and
states, then every control's value at once, as plain values, so that the ``.change``
handlers they fire all read the new values.

**A key control** (tab 4's model) resets the others in its own ``.change`` handler. When a
setting changes it, the first event sets only the key and keeps the rest in a per-session
``pending`` state; a handler registered on the key's ``.change`` after the tab's own sets them
once the tab's handler is done (the browser runs the handlers of one trigger one after the
other, in the order they were registered).

**The link of the view on screen** (🔗, one per tab): the tab's controls are read (checked as
for any event), ``?tab=…&name=value`` is written for each value that differs from its default
(or depends on another control: ``always``), and a small browser script puts the page's
address in front, copies it to the clipboard and shows it in a box beside the button (for
browsers that refuse the clipboard).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import gradio as gr

from pages import common, limits, sessions
from pages.widgets import inputs as ui

__all__ = ["Control", "LinkBar", "LinkSpec", "Parsed", "TabLinks", "View", "control",
           "controls", "link_bar", "spec_of", "token", "with_value", "wire"]

TAB = "tab"  # the query parameter naming the tab
MAX_PARAMS = 60  # parameters read from one link (the rest are ignored with a notice)
ECHO = 24  # characters of a parameter's name or value echoed in a notice
MAX_LISTED = 6  # ignored parameters named in one notice
SKIP = object()  # "no update" inside this module (gr.skip() on the way out)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


# ---------------------------------------------------------------------------------------------
# Controls
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    """One shareable control: its readable name, the component, and how its value reads.

    ``check`` turns a value (a lesson's, or ``from_text``'s result) into the value the
    control's events would receive, or raises :class:`~pages.common.UserError`; ``from_text``
    turns a link's text into a value for ``check``; ``to_text`` is the inverse. ``always``:
    written into links even at the default (its default depends on another control).
    """

    name: str
    component: Any
    check: Callable[[Any], Any]
    from_text: Callable[[str], Any]
    to_text: Callable[[Any], str]
    always: bool = False

    @property
    def default(self) -> Any:
        """The component's value when the app was built."""
        return self.component.value

    def parse(self, text: str) -> Any:
        """A link's text → the checked value (:class:`~pages.common.UserError` if refused)."""
        return self.check(self.from_text(text))


def _label(component) -> str:
    return str(getattr(component, "label", None) or "This value")


def _choice_values(component) -> list:
    return [v for _, v in component.choices]


def _choice_from_text(component, text: str) -> Any:
    """The choice whose value reads ``text`` (exactly, else ignoring case); else ``text``,
    which the component's check then refuses with the list of choices."""
    values = _choice_values(component)
    for v in values:
        if str(v) == text:
            return v
    for v in values:
        if str(v).lower() == text.lower():
            return v
    return text


def _bool_from_text(text: str) -> Any:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return text  # refused by the check ("must be true or false")


def _number_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.10g}"
    return str(v)


def _to_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ",".join(_number_text(x) for x in v)
    return _number_text(v)


def control(name: str, component, *, always: bool = False,
            check: Callable[[Any], Any] | None = None) -> Control:
    """A :class:`Control` for a :mod:`pages.widgets.inputs` component.

    The value check is the component's own ``preprocess`` (the check every event of the
    component runs) unless ``check`` is given: a component whose range or choices change while
    the app runs (the model's T, a model's classes) needs a check of its own, and the tab's
    :class:`View` then checks the rest against the live values.
    """
    if isinstance(component, ui.Checkbox):
        from_text = _bool_from_text
    elif isinstance(component, ui.CheckboxGroup):
        def from_text(text, c=component):
            items = [s.strip() for s in text.split(",") if s.strip()]
            return list(dict.fromkeys(_choice_from_text(c, s) for s in items))
    elif isinstance(component, ui.Dropdown | ui.Radio):
        def from_text(text, c=component):
            return _choice_from_text(c, text)
    elif isinstance(component, ui.Number | ui.Slider):
        def from_text(text):
            return text.strip()  # the component's check reads numbers from text
    else:
        raise TypeError(f"{name}: shareable controls are pages.widgets.inputs components "
                        f"(got {type(component).__name__})")
    if check is None:
        check = component.preprocess
    return Control(name=name, component=component, check=check, from_text=from_text,
                   to_text=_to_text, always=always)


def controls(**named) -> tuple[Control, ...]:
    """``controls(dataset=dropdown, steps=number, t=control("t", slider, …))``: the name of
    each keyword is the parameter's name; a :class:`Control` given as a value keeps its own
    settings (its name must match)."""
    out = []
    for name, c in named.items():
        if isinstance(c, Control):
            if c.name != name:
                raise ValueError(f"control {c.name!r} given as {name!r}")
            out.append(c)
        else:
            out.append(control(name, c))
    return tuple(out)


def token(label: str, max_len: int = 8) -> Callable[[Any], str]:
    """A check for a short word (letters, digits, ``_``), for a control whose choices change
    while the app runs; the tab's :class:`View` checks it against the live choices."""
    def check(value):
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if not (0 < len(text) <= max_len and text.replace("_", "").isalnum()):
            raise common.UserError(f"{label} must be a short word or number (got "
                                   f"{common.short(value)}).")
        return text
    return check


def with_value(update: Any, value: Any) -> Any:
    """``update`` (a ``gr.update`` dict or a plain value) with its value replaced by ``value``
    (its other properties — choices, maximum, interactive — kept)."""
    if isinstance(update, dict) and update.get("__type__") == "update":
        return {**update, "value": value}
    return value


# ---------------------------------------------------------------------------------------------
# A tab's shareable controls
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """What a tab draws from its settings, in the event that applies them.

    ``fn(values, given, *inputs) -> {component: update}``: ``values`` holds every shareable
    control's value by name (the given ones, else the defaults), ``given`` the names that were
    given; ``inputs`` are the values of ``inputs`` (states the view reads). The updates may
    include controls: they replace the plain values (the view owns them: it keeps a given value
    with :func:`with_value`, or refuses one it finds inconsistent, with a ``gr.Warning``).
    May raise :class:`~pages.common.UserError`: the tab's defaults are then applied instead.
    """

    fn: Callable[..., dict]
    inputs: tuple = ()
    outputs: tuple = ()


@dataclass(frozen=True)
class TabLinks:
    """A tab's shareable controls (what its ``render`` returns), its :class:`View`, and the
    name of its key control, if any (one whose own ``.change`` handler resets the others)."""

    controls: tuple[Control, ...]
    view: View | None = None
    key: str | None = None

    def __post_init__(self):
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate control names in {names}")
        if TAB in names:
            raise ValueError(f"{TAB!r} names the tab, not a control")
        if self.key is not None and self.key not in names:
            raise ValueError(f"key {self.key!r} is not one of the controls")

    def get(self, name: str) -> Control | None:
        return next((c for c in self.controls if c.name == name), None)

    def values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every control's value: the given one, else its default."""
        return {c.name: given[c.name] if c.name in given else c.default for c in self.controls}

    @property
    def key_component(self):
        return None if self.key is None else self.get(self.key).component

    @property
    def inputs(self) -> list:
        """What applying settings reads: the key control's value now, then the view's inputs."""
        return ([self.key_component] if self.key else []) + list(self.view.inputs
                                                                  if self.view else ())

    @property
    def outputs(self) -> list:
        """What applying settings may write: the controls, then the view's other outputs."""
        comps = [c.component for c in self.controls]
        extra = [o for o in (self.view.outputs if self.view else ()) if o not in comps]
        return comps + extra

    def updates(self, given: Mapping[str, Any], view_inputs: Sequence = ()) -> dict:
        """``{component: update}`` for every output: the values, then the view's updates.

        A view that refuses the settings (``UserError``) gets the defaults instead, with a
        warning that says why.
        """
        values = self.values(given)
        out: dict = {c.component: values[c.name] for c in self.controls}
        if self.view is not None:
            try:
                out.update(self.view.fn(values, frozenset(given), *view_inputs))
            except gr.Error as e:
                if not given:
                    raise
                gr.Warning(f"These settings do not work together ({e.message}); the tab's "
                           "defaults are shown instead.")
                return self.updates({}, view_inputs)
        return out


@dataclass(frozen=True)
class Parsed:
    """A link read: the tab (None: no tab or an unknown one), the checked values by name, and
    one line per ignored parameter."""

    tab: str | None
    given: dict[str, Any]
    ignored: list[str]


class LinkSpec:
    """All tabs' shareable controls by tab id: reading links, writing them, checking settings.

    ``tabs`` maps each tab id to its :class:`TabLinks` (``None`` for a tab without controls,
    such as *Start here*); ``labels`` maps ids to the tab names a person sees.
    """

    def __init__(self, tabs: Mapping[str, TabLinks | None],
                 labels: Mapping[str, str] | None = None) -> None:
        self.tabs = dict(tabs)
        self.labels = dict(labels or {})

    def label(self, tab: str) -> str:
        return self.labels.get(tab, tab)

    def parse(self, params: Mapping[str, str]) -> Parsed:
        """Query parameters → :class:`Parsed`; never raises."""
        items = [(str(k), str(v)) for k, v in params.items() if not str(k).startswith("__")]
        ignored: list[str] = []
        if len(items) > MAX_PARAMS:
            ignored.append(f"{len(items) - MAX_PARAMS} parameters past the first {MAX_PARAMS}")
            items = items[:MAX_PARAMS]
        params = dict(items)
        tab = params.pop(TAB, None)
        if tab is None:
            if params:
                ignored.append(f"{_names(params)} (the link names no tab: add ?tab=…)")
            return Parsed(None, {}, ignored)
        if tab not in self.tabs:
            ignored.append(f"tab={common.short(tab, ECHO)} (not a tab here; tabs: "
                           f"{', '.join(self.tabs)})")
            if params:
                ignored.append(f"{_names(params)} (no tab to apply them to)")
            return Parsed(None, {}, ignored)
        links = self.tabs[tab]
        given: dict[str, Any] = {}
        for name, text in params.items():
            c = links.get(name) if links is not None else None
            if c is None:
                ignored.append(f"{common.short(name, ECHO)} (not a setting of "
                               f"{self.label(tab)})")
                continue
            try:
                given[name] = c.parse(text)
            except gr.Error as e:  # the message names the control and echoes a short prefix
                ignored.append(f"{name}: {str(e.message).rstrip('.')}")
        return Parsed(tab, given, ignored)

    def check(self, tab: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        """A lesson's settings, checked like a link's (each value by its control's check);
        raises ``ValueError`` naming the first bad one."""
        links = self.tabs.get(tab)
        if tab not in self.tabs:
            raise ValueError(f"unknown tab {tab!r}")
        out = {}
        for name, value in settings.items():
            c = links.get(name) if links is not None else None
            if c is None:
                raise ValueError(f"{name!r} is not a setting of tab {tab!r}")
            try:
                out[name] = c.check(value)
            except gr.Error as e:
                raise ValueError(f"{tab}.{name} = {value!r}: {e.message}") from None
        return out

    def query(self, tab: str, values: Mapping[str, Any]) -> str:
        """``?tab=…&name=value…`` for the controls that differ from their defaults (or are
        ``always`` written); readable: commas, slashes and colons are not escaped."""
        links = self.tabs[tab]
        pairs = [(TAB, tab)]
        for c in links.controls if links is not None else ():
            if c.name in values and (c.always or not _same(values[c.name], c.default)):
                pairs.append((c.name, c.to_text(values[c.name])))
        return "?" + urlencode(pairs, quote_via=quote, safe=",/:")

    def notice(self, ignored: Sequence[str]) -> str:
        """One line for the page: what a link carried that was not applied."""
        shown = "; ".join(ignored[:MAX_LISTED])
        more = f"; and {len(ignored) - MAX_LISTED} more" if len(ignored) > MAX_LISTED else ""
        return f"Ignored in this link: {shown}{more}."


def split_updates(updates: Mapping[Any, Any], controls: Collection) -> tuple[dict, dict]:
    """``{component: update}`` → ``(first, second)``: a control's plain value goes second, and
    so does the value of a control's ``gr.update`` dict, whose other properties go first (why:
    :func:`wire`); every other output (a figure, a state) goes first, so that a control's
    handler fired by the first event (a slider whose range shrank) already reads the new
    states."""
    first: dict = {}
    second: dict = {}
    for comp, update in updates.items():
        if comp not in controls:
            first[comp] = update
        elif isinstance(update, dict) and update.get("__type__") == "update":
            rest = {k: v for k, v in update.items() if k != "value"}
            if len(rest) > 1:
                first[comp] = rest
            if "value" in update:
                second[comp] = update["value"]
        else:
            second[comp] = update
    return first, second


def _join(props: dict | None, value: Any) -> Any:
    return value if props is None else {**props, "value": value}


def _names(params: Mapping[str, str]) -> str:
    names = [common.short(k, ECHO) for k in list(params)[:MAX_LISTED]]
    return ", ".join(names) + (", …" if len(params) > MAX_LISTED else "")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# ---------------------------------------------------------------------------------------------
# UI: the 🔗 bar and the wiring
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkBar:
    """A tab's 🔗 button and the box that shows the link it made."""

    button: Any
    box: Any


def link_bar(tab: str) -> LinkBar:
    """Tab ``tab``'s 🔗 Link to this view button, and the box that shows the link once made
    (elem_ids ``dl-link-<tab>`` and ``dl-link-<tab>-box``); call inside the tab, before its
    ``render``."""
    with gr.Row(equal_height=False):
        button = gr.Button("🔗 Link to this view", size="sm", scale=0, min_width=170,
                           elem_id=f"dl-link-{tab}")
        box = gr.Textbox("", label="Link to this view (also copied to the clipboard where the "
                         "browser allows it)", visible=False, interactive=False,
                         buttons=["copy"], max_lines=1, scale=5, elem_id=f"dl-link-{tab}-box")
    return LinkBar(button=button, box=box)


# In the browser, after the server wrote "?tab=…": the page's address in front, to the
# clipboard (silently skipped where the browser refuses), shown in the box.
COPY_JS = """
(query) => {
  if (!query || !query.startsWith('?')) return query;
  const url = window.location.origin + window.location.pathname + query;
  try { navigator.clipboard.writeText(url).catch(() => {}); } catch (e) {}
  return url;
}
"""

# In the browser, after a lesson's button opened its tab: show the tab from the top (the
# button sat far down the lesson list).
TOP_JS = "() => { window.scrollTo({top: 0}); }"

_SPECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def spec_of(demo: gr.Blocks) -> LinkSpec:
    """The :class:`LinkSpec` that :func:`wire` built into ``demo`` (tests read the registry)."""
    return _SPECS[demo]


def _request_params(request) -> dict[str, str]:
    if request is None:
        return {}
    try:
        return dict(request.query_params)
    except (AttributeError, TypeError):
        return {}


def wire(tabs: gr.Tabs, spec: LinkSpec, bars: Mapping[str, LinkBar],
         lessons: Sequence[tuple[Any, str, Mapping[str, Any]]] = ()) -> None:
    """Wire links and lessons into the app being built (call after every tab's ``render``).

    ``tabs``: the app's ``gr.Tabs`` (its children have the ids of ``spec.tabs``); ``bars``:
    each tab's :class:`LinkBar`; ``lessons``: ``(button, tab id, settings)`` per lesson button
    (its settings checked by :meth:`LinkSpec.check` here, so a bad lesson fails at build).
    """
    root = gr.context.Context.root_block
    if root is None:
        raise RuntimeError("links.wire must be called inside a gr.Blocks context")
    _SPECS[root] = spec
    lim = limits.ACTIVE
    # What a setting keeps for after its tab's key handler: {"tab", "key", "updates"}.
    pending = gr.State(None, time_to_live=lim.state_ttl_s,
                       delete_callback=sessions.on_free("link settings"))
    # show_progress_on: Gradio's browser code refreshes the loading status of every event's
    # outputs whenever any event streams an update; with the tabs' controls as outputs here,
    # that re-rendered ~60 more components per update and froze the page while tab 3 trained
    # (a script's round trip took 2–26 s instead of 0.2–0.5 s). These events show no progress
    # anyway: their status goes on one state instead.
    quick = dict(concurrency_limit=8, concurrency_id="links", api_visibility="private",
                 show_progress="hidden", show_progress_on=[pending])

    # Applying settings takes two events. First the tab, the controls' other properties
    # (a slider's range, a list's choices, interactive or not) and the view's figures and
    # states; then every control's value at once, plain. Gradio 6.31's browser code sets a
    # several-property update's value after its other properties, a moment after plain values
    # land, so a handler fired by one control's change read another control's old value (tab
    # 2: the schedule handler saw the old kind and T); plain values land together, in a tab
    # already open, and the states they need are in place (a slider whose range shrank fires
    # its handler in the first event). The second event's values wait in ``staged``
    # (``{"for": which event, "values": [...]}``). A key that changes goes with the first
    # event (plain: opening tab 4 fires a handler that reads it), with ``pending``: the key's
    # own handler runs, then ``settle`` sets the rest.
    staged = gr.State(None, time_to_live=lim.state_ttl_s,
                      delete_callback=sessions.on_free("link settings, staged"))

    def apply(tab: str, given: Mapping[str, Any], inputs: Sequence) -> tuple[dict, dict]:
        """``({component: update} now, {component: value} next)`` for settings on ``tab``."""
        links = spec.tabs[tab]
        first: dict = {tabs: gr.Tabs(selected=tab)}
        if links is None:
            return first, {}
        key_now = inputs[0] if links.key else None
        props, values = split_updates(links.updates(given, inputs[1:] if links.key else inputs),
                                      {c.component for c in links.controls})
        if links.key is None:
            return {**first, **props}, values
        key_c = links.key_component
        key_value = links.values(given)[links.key]
        later = [o for o in links.outputs if o is not key_c]
        # Armed in both cases: a .change of the key still to come (a setting applied just
        # before) sets these after the tab's own handler; any other change of the key clears
        # them (settle).
        first[pending] = {"tab": tab, "key": key_value, "updates": {
            i: _join(props.get(o), values[o]) if o in values else props[o]
            for i, o in enumerate(later) if o in values or o in props}}
        if not _same(key_now, key_value):  # the key's handler resets the rest; settle follows
            first[key_c] = values[key_c]  # plain: the tab's handlers that opening it fires
            return first, {}              # read it (its other properties can wait)
        return {**first, **props}, values

    def as_list(out: dict, outputs: Sequence) -> list:
        return [out.get(o, gr.skip()) for o in outputs]

    def two_steps(trigger_dep, first_fn, inputs: list, outputs: list, tag: str):
        """``first_fn(request, *inputs) -> (first, second)`` on ``trigger_dep``; the second
        step sets ``second`` (see above). Returns the second step's event."""
        out1 = [staged, tabs, pending, *outputs]
        out2 = [staged, *outputs]

        def step1(request: gr.Request = None, *values):  # Gradio fills in the request
            first, second = first_fn(request, *values)
            return as_list({**first, staged: {"for": tag, "values": as_list(second, out2[1:])}},
                           out1)

        def step2(kept):
            if not isinstance(kept, dict) or kept.get("for") != tag:
                return [gr.skip()] * len(out2)
            return [None, *kept["values"]]

        return trigger_dep(step1, inputs, out1, **quick).then(step2, staged, out2, **quick)

    # --- a link, when the page opens --------------------------------------------------------
    all_inputs: list = []
    all_outputs: list = []
    for links in spec.tabs.values():
        for c in links.inputs if links else ():
            if c not in all_inputs:
                all_inputs.append(c)
        for c in links.outputs if links else ():
            if c not in all_outputs:
                all_outputs.append(c)

    def page_opened():  # starts the chain below (which reads the link and selects the tab)
        return gr.skip()

    def apply_link(request, *values):
        parsed = spec.parse(_request_params(request))
        if parsed.ignored:
            common.log.info("link: ignored %d parameter(s)", len(parsed.ignored))
            gr.Warning(spec.notice(parsed.ignored))
        if parsed.tab is None:
            return {}, {}
        links = spec.tabs[parsed.tab]
        current = dict(zip(all_inputs, values, strict=True))
        return apply(parsed.tab, parsed.given, [current[c] for c in links.inputs] if links
                     else [])

    opened = root.load(page_opened, None, tabs, **quick)
    two_steps(opened.then, apply_link, all_inputs, all_outputs, "link")

    # --- lessons -------------------------------------------------------------------------------
    def lesson_handler(tab: str, given: dict) -> Callable:
        def apply_lesson(request, *inputs):
            return apply(tab, given, inputs)
        return apply_lesson

    for button, tab, settings in lessons:
        given = spec.check(tab, settings)
        links = spec.tabs[tab]
        two_steps(button.click, lesson_handler(tab, given), links.inputs if links else [],
                  links.outputs if links else [], f"lesson {id(button)}").then(
            None, js=TOP_JS, api_visibility="private")

    # --- a key's own handler ran: set what the setting kept for after it --------------------
    def settle_handler(tab: str, n_later: int) -> Callable:
        def settle(kept, key_value):
            if not isinstance(kept, dict):
                return [gr.skip()] * (1 + n_later)
            if kept.get("tab") != tab or not _same(key_value, kept.get("key")):
                return [None, *([gr.skip()] * n_later)]  # another change: drop them
            updates = kept.get("updates", {})
            return [None, *(updates.get(i, gr.skip()) for i in range(n_later))]
        return settle

    for tab, links in spec.tabs.items():
        if links is None or links.key is None:
            continue
        key_c = links.key_component
        later = [o for o in links.outputs if o is not key_c]
        key_c.change(settle_handler(tab, len(later)), [pending, key_c], [pending, *later],
                     **quick)

    # --- 🔗 the link of the view on screen -----------------------------------------------------
    def link_builder(tab: str, names: list[str]) -> Callable:
        def build(*values):
            query = spec.query(tab, dict(zip(names, values, strict=True)))
            return gr.update(value=query, visible=True)
        return build

    for tab, bar in bars.items():
        links = spec.tabs[tab]
        controls_ = list(links.controls) if links else []
        bar.button.click(link_builder(tab, [c.name for c in controls_]),
                         [c.component for c in controls_], bar.box, **quick).then(
            None, bar.box, bar.box, js=COPY_JS, api_visibility="private")
