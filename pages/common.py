"""Shared look and helpers for every tab: theme, plot styling, schedule inputs, error messages.

Pages import this module and ``diffusion_core``; they never import each other.

Start-up: building the UI must not import torch (≈ 1 s of the app's start-up; see
``bench/ui_bench.py``). Pages take configs and option names from the torch-free config
modules (``diffusion_core.schedule.config``, …) and ``presets``, reach torch and the engine's
compute modules through :class:`LazyModule` (imported by the first event that uses them),
and fill their first views in an :func:`on_load` event rather than at build time.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import math
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import gradio as gr
import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder

from diffusion_core.schedule.config import BUILTIN_KINDS, ScheduleConfig

log = logging.getLogger("diffusion_lab")

SHORT = 40  # characters of a user's string echoed back in a message


def short(value: Any, limit: int = SHORT) -> str:
    """``repr(value)`` cut to ``limit`` characters (messages never echo a huge input)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class UserError(gr.Error):
    """A refused input or a spent limit: the user reads the message; the server logs one line.

    Gradio prints a full traceback for every ``gr.Error`` unless told not to; a user's mistake
    is not a fault of the app, so it is logged as one INFO line (faults keep their traceback).
    """

    def __init__(self, message: str, **kwargs) -> None:
        kwargs.setdefault("print_exception", False)
        super().__init__(message, **kwargs)
        log.info("refused: %s", message if len(message) <= 200 else message[:199] + "…")


class LazyModule:
    """Stands for the module ``name`` and imports it on first attribute access.

    ``torch = LazyModule("torch")`` at the top of a page lets its handlers write ``torch.zeros``
    as usual while building the UI imports nothing heavy. After the first access it is just a
    ``sys.modules`` lookup.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<LazyModule {self._name!r}>"


def on_load(fn: Callable, outputs: list, **kwargs) -> None:
    """Run ``fn`` (no inputs) whenever a browser opens the page, filling ``outputs``.

    Must be called while the app's ``gr.Blocks`` is being built (inside a tab's ``render``).
    Each visitor gets fresh values (nothing computed at build time is shared).

    A page opened from a shared link to this tab (``?tab=<the enclosing gr.Tab's id>``) gets
    its first view from the link's settings instead (:mod:`pages.links`), so this one steps
    aside: two first views racing to fill one tab would leave whichever finished last.
    """
    root = gr.context.Context.root_block
    if root is None:
        raise RuntimeError("on_load must be called inside a gr.Blocks context")
    tab = _enclosing_tab_id()

    def first_view(request: gr.Request = None):  # no functools.wraps: Gradio reads this signature
        if tab is not None and request is not None and request.query_params.get("tab") == tab:
            return gr.skip()
        return fn()

    root.load(first_view, inputs=None, outputs=outputs, api_visibility="private", **kwargs)


def _enclosing_tab_id() -> str | None:
    """The id of the outermost ``gr.Tab`` around the block being built (None: none has one)."""
    block, found = gr.context.Context.block, None
    while block is not None:
        if isinstance(block, gr.Tab) and isinstance(block.id, str):
            found = block.id
        block = getattr(block, "parent", None)
    return found


# One colour per schedule kind, used on every tab (colour-blind-safe Okabe–Ito palette).
SCHEDULE_COLORS = {
    "linear": "#0072B2",
    "cosine": "#D55E00",
    "quadratic": "#009E73",
    "sigmoid": "#CC79A7",
    "polynomial": "#E69F00",
    "custom": "#56B4E9",
}
DATA_COLOR = "#0072B2"
SAMPLE_COLOR = "#D55E00"
NOISE_COLOR = "#7f7f7f"

SCHEDULE_LABELS = {
    "linear": "linear — β in equal steps from β_start to β_end",
    "cosine": "cosine — ᾱ_t = f(t+1)/f(0), f(u) = cos²((u/T + s)/(1 + s)·π/2)",
    "quadratic": "quadratic — √β in equal steps from √β_start to √β_end",
    "sigmoid": "sigmoid — β_start + (β_end − β_start)·sigmoid(linspace(−6, 6, T))",
    "polynomial": "polynomial — β_start + (β_end − β_start)·(t/(T−1))^p",
}

T_MIN, T_MAX = 2, 4000
BETA_MIN, BETA_MAX = 1e-8, 0.999  # β_start / β_end a user may type
COSINE_S_MAX = 0.5
MAX_SEED = 2**31 - 1  # seeds a user may type (a torch.Generator takes any 64-bit value)

# Markdown maths: $$…$$ for display equations, $…$ inline (every tab's explanations).
LATEX = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
]

EXPLANATIONS = Path(__file__).resolve().parent / "explanations"


@functools.cache
def explanation(name: str) -> str:
    """The Markdown text ``pages/explanations/NAME.md``, read once per process."""
    return (EXPLANATIONS / f"{name}.md").read_text(encoding="utf-8")
MAX_POINTS = 20_000  # 2D points a user may ask for (plots and memory stay sane)

# Sizes chosen to read well on a laptop and on a projector.
FONT = dict(family="Inter, ui-sans-serif, system-ui, -apple-system, Segoe UI, sans-serif",
            size=14)


def theme() -> gr.themes.Base:
    """The app's theme: system fonts only (no web-font requests), indigo accents."""
    return gr.themes.Soft(
        primary_hue="indigo",
        secondary_hue="pink",
        neutral_hue="slate",
        font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


CSS = """
.gradio-container {max-width: 1400px !important;}
.dl-health {font-size: 0.95rem;}
.dl-warn {color: #b45309; font-weight: 600;}
.dl-limit {font-size: 0.85rem; opacity: 0.75;}
footer {display: none !important;}
.dl-offscreen {position: absolute !important; left: -10000px !important; width: 1px;
               height: 1px; overflow: hidden;}
.prose table td, .prose table th {word-break: normal !important;
                                  overflow-wrap: normal !important; hyphens: none;}
.prose table {display: block; width: max-content; max-width: 100%; overflow-x: auto;
              border: none !important; padding: 0 !important;}
"""


def style_figure(fig: go.Figure, *, title: str | None = None, height: int = 360,
                 x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    """Apply the app's plot style (white background, readable fonts, labelled axes)."""
    fig.update_layout(
        template=white_template(),
        font=FONT,
        height=height,
        margin=dict(l=60, r=20, t=50 if title else 20, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        hovermode="x unified",
    )
    if title:
        fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=16)))
    if x_title:
        fig.update_xaxes(title_text=x_title)
    if y_title:
        fig.update_yaxes(title_text=y_title)
    return fig


# The parts of a template's layout that 2D line/bar plots use (skip polar, 3D, geo, colorbars).
_TEMPLATE_KEYS = ("autotypenumbers", "colorway", "font", "hovermode", "hoverlabel",
                  "paper_bgcolor", "plot_bgcolor", "xaxis", "yaxis", "title", "annotationdefaults")


@functools.cache
def white_template() -> go.layout.Template:
    """``plotly_white`` cut to what the app draws (2D cartesian scatter and bar plots), built
    once. Assigning the named template validates all of it again on every figure (≈ 12–20 ms
    of a light view's ≈ 40 ms of styling); this one, already validated, costs ≈ 2–5 ms and
    draws the same."""
    import plotly.io as pio

    full = pio.templates["plotly_white"]
    layout, data = full.layout.to_plotly_json(), full.data.to_plotly_json()
    return go.layout.Template(
        layout={k: v for k, v in layout.items() if k in _TEMPLATE_KEYS + ("colorscale",
                                                                          "shapedefaults")},
        data={k: data[k] for k in ("scatter", "bar") if k in data})


def compact_layout_json(fig: go.Figure) -> str:
    """``fig``'s layout as JSON, keeping only the template parts 2D cartesian plots use.

    Validating the full ``plotly_white`` template costs ~10–20 ms per figure; tabs build a
    styled layout once, cache this string and start every figure from a fresh copy of it.
    """
    layout = fig.layout.to_plotly_json()
    tpl = layout["template"]["layout"]
    layout["template"] = {"layout": {k: v for k, v in tpl.items() if k in _TEMPLATE_KEYS}}
    return json.dumps(layout, cls=PlotlyJSONEncoder)


def number(name: str, value, lo: float, hi: float, *, integer: bool = False,
           default: float | None = None) -> float | int:
    """Validate one numeric UI input; raises :class:`UserError` in plain words when it is bad.

    An empty box (``None`` or ``""``) means ``default`` when one is given.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is not None:
            return default
        raise UserError(f"{name} is empty: enter {allowed_range(lo, hi, integer)}.")
    if isinstance(value, bool):
        raise UserError(f"{name} must be {allowed_range(lo, hi, integer)} (got {short(value)}).")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{name} must be {allowed_range(lo, hi, integer)} (got {short(value)}).") \
            from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise UserError(f"{name} must be {allowed_range(lo, hi, integer)} (got {short(value)}).")
    if integer:
        if v != int(v):
            raise UserError(f"{name} must be a whole number (got {short(value)}).")
        return int(v)
    return v


def allowed_range(lo: float | None, hi: float | None, integer: bool) -> str:
    """What a number input accepts, in words: "a whole number from 1 to 1,000", "a number ≥ 0"."""
    what = "a whole number" if integer else "a number"

    def fmt(x):
        return f"{int(x):,}" if integer and float(x).is_integer() else f"{x:g}"

    if lo is not None and hi is not None:
        return f"{what} from {fmt(lo)} to {fmt(hi)}"
    if lo is not None:
        return f"{what} ≥ {fmt(lo)}"
    if hi is not None:
        return f"{what} ≤ {fmt(hi)}"
    return what


def schedule_config(kind: str, T, beta_start, beta_end, scale_to_T: bool = False,
                    cosine_s=0.008, power=2.0) -> ScheduleConfig:
    """Build a :class:`ScheduleConfig` from UI values, turning bad input into :class:`UserError`."""
    if kind not in BUILTIN_KINDS:
        raise UserError(f"Unknown schedule {short(kind)}; choose one of "
                        f"{', '.join(BUILTIN_KINDS)}.")
    T = number("T (number of steps)", T, T_MIN, T_MAX, integer=True)
    beta_start = number("β_start", beta_start, BETA_MIN, BETA_MAX)
    beta_end = number("β_end", beta_end, BETA_MIN, BETA_MAX)
    cosine_s = number("cosine offset s", cosine_s, 0.0, COSINE_S_MAX)
    power = number("polynomial power p", power, 0.1, 10.0)
    if kind != "cosine" and beta_end <= beta_start:
        raise UserError(f"β_end ({beta_end:g}) must be larger than β_start ({beta_start:g}).")
    try:
        return ScheduleConfig(kind=kind, T=T, beta_start=beta_start, beta_end=beta_end,
                              scale_to_T=bool(scale_to_T), cosine_s=cosine_s, power=power)
    except ValueError as e:
        raise UserError(str(e)) from None


def friendly_errors(fn: Callable) -> Callable:
    """Turn a core ``ValueError`` into a :class:`UserError` with its message (no stack trace).

    Works for plain functions and generators. ``gr.Error`` passes through unchanged.
    """
    import inspect

    if inspect.isgeneratorfunction(fn):
        @wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except ValueError as e:
                raise UserError(str(e)) from None
        return gen_wrapper

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as e:
            raise UserError(str(e)) from None
    return wrapper


INDEX_CONVENTION_MD = (
    "Steps are numbered **t = 0 … T−1** (as in diffusers): "
    "$\\bar\\alpha_t = \\prod_{s \\le t}(1-\\beta_s)$, so t = 0 is already one noising step "
    "and $\\bar\\alpha_{-1} = 1$ is the clean image. (The DDPM paper counts 1 … T.)"
)
