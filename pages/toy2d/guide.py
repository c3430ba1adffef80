"""Tab 3's "Guidance" sub-tab: classifier-free guidance, live, on a class-conditional 2D model.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. Guidance convention, as everywhere in the app:
ε̃ = ε_u + s·(ε_c − ε_u); s = 0 the unconditional model, s = 1 the conditional one, s > 1
guides harder (diffusers' ``guidance_scale``).

A view only: the fields, the guided samples, their scores and the trade-off curve are
:mod:`diffusion_core.workflows.guidance2d`; here are the controls, the Plotly figures and the
handlers (plain module-level functions, a generator for the curve, so tests call them):

======================  =========================================================================
handler                 what it does
======================  =========================================================================
``guide_view``          live (s, t, class, denoiser): the fields ε_u, ε_c, ε̃ of the chosen
                        class at t and 1,000 guided samples of every class, with accuracy and
                        spread
``guide_refresh``       after ▶ Train and when the sub-tab opens: the trained set's classes, the
                        t range and the view
``tradeoff``            generator: accuracy, spread and class SW1 against s (streamed, ■ Stop)
``tradeoff_mark``       moves the curve's "current s" marker (no compute)
``tradeoff_finished``   after the curve ends or is stopped: says so after a Stop
``after_train``         ``guide_refresh`` after ▶ Train (nothing for a model without labels)
======================  =========================================================================

:func:`render` builds the controls inside the caller's ``gr.Tab("Guidance")`` and returns the
components that :func:`after_train` refreshes when ▶ Train ends.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from diffusion_core.data.toy2d_spec import LABELLED_TOY_DATASETS, TOY_SPECS
from diffusion_core.sampling.config import GUIDANCE_DEFAULT, GUIDANCE_MAX
from pages import common, jobs, limits, sessions
from pages.toy2d.figures import IDEAL_COLOR, LEARNED_COLOR, arrows, f32, subset
from pages.toy2d.handlers import LIMIT_PREFIX
from pages.toy2d.inputs import DEFAULT_DATASET, PRESET, check_choice, is_session
from pages.toy2d.lab import empty_figure
from pages.widgets import inputs as ui
from pages.widgets import sweep as sweeps
from pages.widgets.sweep import COLORS, FIGURE_EVERY_S, RUNNING

# Imported by the first event that needs them, not while the UI is built (see pages.common).
guidance = common.LazyModule("diffusion_core.workflows.guidance2d")
toy_workflow = common.LazyModule("diffusion_core.workflows.toy2d")

__all__ = ["GuideControls", "after_train", "guide_refresh", "guide_view", "render", "tradeoff",
           "tradeoff_finished", "tradeoff_mark"]

N_SAMPLES = 1000  # guided samples in the live view and at each point of the curve
SEED = 0  # their x_T (the same at every s)
SCALE_STEP = 0.1
T_FRACTION = 10  # the t slider starts at T // 10: the classes apart, ε_c and ε_u far apart
# guidance2d.TRADEOFF_SCALES (a test keeps them equal; the UI is built without torch)
TRADEOFF_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0)
DENOISER_CHOICES: tuple[tuple[str, str], ...] = (
    ("trained network", "network"), ("ideal denoiser (exact guided field)", "ideal"))
# One colour per class (Okabe–Ito, the sampler slots' four first; yellow left out: unreadable
# on white).
CLASS_COLORS = (*COLORS, "#E69F00", "#56B4E9", "#7A5195", "#555555")
DATA_GREY = "#b8c2cc"
UNCOND_COLOR = "#6b7280"  # ε_u's arrows
GUIDED_COLOR = LEARNED_COLOR  # ε̃'s arrows (dark, like the learned field of "Vector field")
CLOUD_POINTS = 500  # noised points drawn per field panel (a fixed subset)
DATA_POINTS = 1000  # training points drawn faintly under the samples
PLOT_HEIGHT = 350
CURVE_HEIGHT = 330
NO_MODEL = ("Train with class labels first: tick **Train with class labels (for guidance)** "
            "by ▶ Train, on a set with classes ({sets}), and press ▶ Train.")
UNCONDITIONAL = ("This model was trained **without class labels**, so it has no ε_c to guide "
                 "with. Train with class labels first: tick **Train with class labels (for "
                 "guidance)** by ▶ Train and press ▶ Train (a new model starts).")
CONVENTION_MD = (
    "**Classifier-free guidance**: at every step the model is asked twice, with the class "
    "label and without it, and the answers are mixed: "
    "$\\tilde\\varepsilon = \\varepsilon_u + s\\,(\\varepsilon_c - \\varepsilon_u)$. "
    "**s = 0** is the unconditional model (the label is ignored), **s = 1** the conditional "
    "model as trained, **s > 1** guides harder, extrapolating past $\\varepsilon_c$ away from "
    "$\\varepsilon_u$. Arrows are $-\\varepsilon$ (where a denoiser pushes) at step t, over the "
    "noised training points $x_t$ (the chosen class in colour). Right: 1,000 samples (DDIM, 20 "
    "steps), each guided toward its own class, all from the same starting noise at every s.")
LOOK_FOR_MD = (
    "**What to look for.** Drag s from 0 up. At s = 0 the samples ignore their label: each "
    "colour is spread over the whole data set (accuracy ≈ chance). By s = 1 each colour sits "
    "on its own class. Past 1 the ε̃ arrows bend away from the other classes, and each class's "
    "samples crowd toward its most typical part: **accuracy goes up, spread goes down** — "
    "fidelity bought with diversity. Move t: at large t the noised classes overlap, $x_t$ "
    "says little about its class and $\\varepsilon_c \\approx \\varepsilon_u$; at small t "
    "they differ most over the *other* classes' points, and there ε̃ bends hardest. Then press "
    "*Trade-off curve* to see it over every s, and compare the network with the ideal "
    "denoiser's exact guided field.")


# ---------------------------------------------------------------------------------------------
# Inputs and messages
# ---------------------------------------------------------------------------------------------


def _sets() -> str:
    return ", ".join(LABELLED_TOY_DATASETS)


def no_model_text(state) -> str | None:
    """Why there is nothing to guide (no model, or one trained without labels), or None."""
    if not is_session(state):
        return NO_MODEL.format(sets=_sets())
    if not state.conditional:
        return UNCONDITIONAL
    return None


def _class_choices(names) -> list[tuple[str, int]]:
    return [(name, k) for k, name in enumerate(names)]


def _check_class(state, klass) -> int:
    k = common.number("Class", klass, 0, state.num_classes - 1, integer=True)
    return int(k)


def _inputs(state, klass, scale, t, denoiser) -> tuple[int, float, int, str]:
    denoiser = check_choice("Denoiser", denoiser, DENOISER_CHOICES)
    scale = common.number("Guidance scale s", scale, 0.0, GUIDANCE_MAX, default=GUIDANCE_DEFAULT)
    t = common.number("t", t, 0, state.T - 1, integer=True, default=state.T // T_FRACTION)
    return _check_class(state, klass), float(scale), t, denoiser


def regime(scale: float) -> str:
    """What s does, in words."""
    if scale == 0:
        return "s = 0: the unconditional model — labels ignored"
    if scale < 1:
        return "0 < s < 1: between the unconditional and the conditional model"
    if scale == 1:
        return "s = 1: the conditional model, as trained"
    return "s > 1: guiding harder than the conditional model"


def _pct(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{100 * v:.1f} %"


def _num(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v:.2f}"


def view_md(state, view, seconds: float | None = None) -> str:
    """The live view's figures: overall and the chosen class's accuracy and spread."""
    s, f = view.samples, view.field
    sc, names, k = s.scores, state.class_names, f.klass
    who = "network" if s.denoiser == "network" else "ideal denoiser"
    K = state.num_classes
    text = (f"**s = {s.scale:g}** ({regime(s.scale)}) · {who} · "
            f"**accuracy {_pct(sc.accuracy)}** (chance {100 / K:.0f} %) · "
            f"**spread {_num(sc.spread)}** × the data's · class *{names[k]}*: accuracy "
            f"{_pct(sc.accuracy_per_class[k])}, spread {_num(sc.spread_per_class[k])}")
    if sc.bad:
        text += f" · ⚠️ {sc.bad} samples NaN/inf"
    how = s.settings.describe(state.T)
    text += (f"  \nFields at **t = {f.t}** (ᾱ_t = {f.alpha_bar:.3f}), arrows −ε normalised "
             f"together · {len(s.samples):,} samples ({len(s.samples) // K:,} per class), "
             f"{how}, x̂0 kept in the data's box, the same x_T at every s · model at step "
             f"{state.trainer.step:,}")
    if seconds is not None:
        text += f" · {1000 * seconds:.0f} ms"
    return text


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def message_figure(text: str, height: int = PLOT_HEIGHT) -> go.Figure:
    """A blank figure with one line of text (nothing to guide yet)."""
    return empty_figure(text, height)


@functools.lru_cache(maxsize=1)
def _view_layout_json() -> str:
    """The four-panel layout, styled and validated once (the view is redrawn as the sliders
    move: :func:`guidance_figure` fills in titles and ranges and adds plain-dict traces)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=4, column_widths=[1, 1, 1, 1.35],
                        horizontal_spacing=0.025, subplot_titles=["a", "b", "c", "d"])
    common.style_figure(fig, height=PLOT_HEIGHT)
    fig.update_layout(hovermode="closest", margin=dict(l=35, r=10, t=40, b=45),
                      legend=dict(orientation="h", x=1.0, y=-0.06, xanchor="right",
                                  yanchor="top", font=dict(size=11), itemsizing="constant"))
    fig.update_annotations(font_size=12)
    for c in range(1, 5):
        xa = "x" if c == 1 else f"x{c}"
        fig.update_xaxes(range=[-1, 1], zeroline=False, constrain="domain", dtick=1,
                         row=1, col=c)
        fig.update_yaxes(range=[-1, 1], zeroline=False, scaleanchor=xa, scaleratio=1,
                         constrain="domain", dtick=1, showticklabels=c == 1, row=1, col=c)
    return common.compact_layout_json(fig)


def _points(pts: np.ndarray, axis: int, **kw) -> dict:
    """A plain-dict marker trace of ``pts [N, 2]`` (float32) on panel ``axis`` (1..4)."""
    ax = "" if axis == 1 else str(axis)
    return dict(type="scatter", mode="markers", x=np.ascontiguousarray(pts[:, 0]),
                y=np.ascontiguousarray(pts[:, 1]), xaxis=f"x{ax}", yaxis=f"y{ax}", **kw)


def guidance_figure(state, view) -> go.Figure:
    """Four panels: −ε_u, −ε_c and −ε̃ of the chosen class at t (arrows over the faint noised
    cloud x_t, that class's points in its colour), then the guided samples coloured by the
    class they were asked for, over the faint training data.

    Arrow lengths are normalised once for the three fields (∝ |ε| up to the 90th percentile of
    |ε_u| and |ε_c|, drawn 0.9 grid cells long; longer ones are capped), so they compare.
    Redrawn live as the sliders move, so it is built from plain dicts on a layout validated
    once (``_validate=False``), with few points: ≤ 500 noised points per field panel, a 15 × 15
    grid of arrows, ≤ 1,000 faint training points and the samples.
    """
    f, s = view.field, view.samples
    names, k = state.class_names, f.klass
    color = CLASS_COLORS[k % len(CLASS_COLORS)]
    ideal = f.denoiser == "ideal"
    star = "*" if ideal else ""
    titles = [f"−ε{star}_u: no label (s = 0)",
              f"−ε{star}_c: {names[k]} (s = 1)",
              f"−ε̃ = −(ε_u + s(ε_c − ε_u)), s = {f.scale:g}",
              f"{len(s.samples):,} guided samples, s = {s.scale:g}"]
    length = 0.9 * (f.axis[1] - f.axis[0])
    mags = np.concatenate([np.linalg.norm(f.eps_uncond, axis=1),
                           np.linalg.norm(f.eps_cond, axis=1)])
    ref = float(np.quantile(mags, 0.9))
    idx = subset(len(f.x_t), CLOUD_POINTS, state.spec.seed)
    cloud, cloud_y = f32(f.x_t[idx]), f.x_t_labels[idx].numpy()
    mine = cloud_y == k
    traces = []
    for c, (eps, arrow_color) in enumerate(
            ((f.eps_uncond, UNCOND_COLOR), (f.eps_cond, color), (f.eps, GUIDED_COLOR)),
            start=1):
        for pts, col, opacity in ((cloud[~mine], DATA_GREY, 0.45), (cloud[mine], color, 0.4)):
            traces.append(_points(pts, c, marker=dict(color=col, size=3.5, opacity=opacity),
                                  showlegend=False, hoverinfo="skip"))
        ax, ay = arrows(f.grid, -eps, length, ref=ref)
        traces.append(dict(type="scatter", mode="lines", x=f32(ax), y=f32(ay),
                           xaxis="x" if c == 1 else f"x{c}", yaxis="y" if c == 1 else f"y{c}",
                           line=dict(color=arrow_color, width=1.5), showlegend=False,
                           hoverinfo="skip"))
    data = f32(state.data[subset(len(state.data), DATA_POINTS, 1)])
    traces.append(_points(data, 4, name="training data", hoverinfo="skip",
                          marker=dict(color=DATA_GREY, size=3, opacity=0.5)))
    pts, labels = f32(s.samples), s.labels.numpy()
    for j in [j for j in range(len(names)) if j != k] + [k]:  # the chosen class on top
        traces.append(_points(
            pts[labels == j], 4, name=names[j], legendrank=j,
            marker=dict(color=CLASS_COLORS[j % len(CLASS_COLORS)], size=4.5 if j == k else 3.5,
                        opacity=0.9 if j == k else 0.7),
            hovertemplate=f"asked for {names[j]}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
    half_s = toy_workflow.half_width(state.data, s.samples[np.isfinite(pts).all(axis=1)],
                                     q=0.99)
    layout = json.loads(_view_layout_json())
    for a, title in zip(layout["annotations"], titles, strict=True):
        a["text"] = title
    for c, half in enumerate((f.half, f.half, f.half, half_s), start=1):
        ax = "" if c == 1 else str(c)
        layout[f"xaxis{ax}"]["range"] = layout[f"yaxis{ax}"]["range"] = [-half, half]
    return go.Figure(data=traces, layout=layout, _validate=False)


@dataclass(frozen=True)
class CurveRecord:
    """A finished (or stopped) trade-off curve: its rows and what it was measured on."""

    rows: tuple
    denoiser: str
    dataset: str
    class_names: tuple[str, ...]
    step: int
    n: int


def curve_figure(record: CurveRecord, scale: float | None = None) -> go.Figure:
    """Accuracy, spread and class SW1 against s (one panel each), the current s dotted."""
    from plotly.subplots import make_subplots

    K = len(record.class_names)
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, subplot_titles=(
        "accuracy: asked-for class (fidelity ↑)", "spread × the data's (diversity)",
        "class SW1 to its training points (↓)"))
    x = [r.scale for r in record.rows]
    color = IDEAL_COLOR if record.denoiser == "ideal" else COLORS[0]
    who = "ideal denoiser" if record.denoiser == "ideal" else "network"
    series = ([100 * r.scores.accuracy for r in record.rows],
              [r.scores.spread for r in record.rows],
              [r.scores.class_sw1 for r in record.rows])
    fmt = ("%{y:.1f} %", "%{y:.3f}", "%{y:.4f}")
    for c, (y, f) in enumerate(zip(series, fmt, strict=True), start=1):
        y = [v if v is not None and math.isfinite(v) else None for v in y]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=who, showlegend=False,
                                 line=dict(color=color, width=2.5), marker=dict(size=8),
                                 hovertemplate=f"s = %{{x:g}}<br>{f}<extra></extra>"),
                      row=1, col=c)
    fig.add_hline(y=100 / K, line=dict(color="#555", dash="dash", width=1.2),
                  annotation_text=f"chance (1/{K})", annotation_position="top right",
                  annotation_font_size=11, row=1, col=1)
    fig.add_hline(y=1.0, line=dict(color="#555", dash="dash", width=1.2),
                  annotation_text="as varied as the data", annotation_position="top right",
                  annotation_font_size=11, row=1, col=2)
    if scale is not None:
        for c in (1, 2, 3):
            label = {} if c != 3 else dict(annotation_text=f"s = {scale:g}",
                                           annotation_position="top right",
                                           annotation_font_size=11)
            fig.add_vline(x=scale, line=dict(color="#111", dash="dot", width=1.5), row=1,
                          col=c, **label)
    common.style_figure(fig, height=CURVE_HEIGHT)
    fig.update_layout(hovermode="closest", margin=dict(l=55, r=15, t=40, b=45),
                      title=dict(text=who, x=0.99, xanchor="right", y=0.02, yanchor="bottom",
                                 font=dict(size=11, color="#555")))
    fig.update_annotations(font_size=12)
    fig.update_xaxes(title_text="guidance scale s", range=[-0.3, GUIDANCE_MAX + 0.3])
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 104], row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=1, col=3)
    return fig


def curve_md(record: CurveRecord) -> str:
    """The curve's figures as a small table (one column per s)."""
    rows = record.rows
    head = "| s | " + " | ".join(f"{r.scale:g}" for r in rows) + " |"
    sep = "|---|" + "---|" * len(rows)
    acc = "| accuracy | " + " | ".join(_pct(r.scores.accuracy) for r in rows) + " |"
    spread = "| spread | " + " | ".join(_num(r.scores.spread) for r in rows) + " |"
    sw = "| class SW1 | " + " | ".join(
        "–" if r.scores.class_sw1 is None or not math.isfinite(r.scores.class_sw1)
        else f"{r.scores.class_sw1:.3f}" for r in rows) + " |"
    who = "ideal denoiser" if record.denoiser == "ideal" else f"network at step {record.step:,}"
    finite = [r for r in rows if r.scores.class_sw1 is not None
              and math.isfinite(r.scores.class_sw1)]
    best = (f" Class SW1 is lowest at s = {min(finite, key=lambda r: r.scores.class_sw1).scale:g}"
            ": closest to each class's real variety." if finite else "")
    return (f"**Fidelity–diversity trade-off** ({who}, {record.n:,} samples per s, the same "
            f"x_T at every s; chance accuracy {100 / len(record.class_names):.0f} %).{best}"
            f"\n\n{head}\n{sep}\n{acc}\n{spread}\n{sw}")


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


def guide_view(state, klass, scale, t, denoiser="network"):
    """The live view at (class, s, t, denoiser); returns ``(figure, Markdown)``.

    Without a class-conditional model it answers with a figure and a text that say "train
    with class labels first" (no error). Bad values raise :class:`~pages.common.UserError`.
    """
    why = no_model_text(state)
    if why is not None:
        return message_figure("Train with class labels first"), why
    klass, scale, t, denoiser = _inputs(state, klass, scale, t, denoiser)
    start = time.perf_counter()
    try:
        view = guidance.guided_view(state, klass=klass, scale=scale, t=t, denoiser=denoiser,
                                    n=N_SAMPLES, seed=SEED)
    except ValueError as e:
        raise common.UserError(str(e)) from None
    fig = guidance_figure(state, view)
    return fig, view_md(state, view, time.perf_counter() - start)


def guide_refresh(state, klass, scale, t, denoiser="network"):
    """After ▶ Train and when the sub-tab opens: the class picker (the trained set's classes),
    the t slider (the model's range) and the view. Returns ``(class picker, t slider, figure,
    Markdown)``; bad values fall back to the defaults instead of an error."""
    why = no_model_text(state)
    if why is not None:
        return (gr.skip(), gr.skip(), message_figure("Train with class labels first"), why)
    names = state.class_names
    try:
        k = int(klass)
    except (TypeError, ValueError):
        k = 0
    k = k if 0 <= k < len(names) else 0
    try:
        t = min(max(int(t), 0), state.T - 1)
    except (TypeError, ValueError):
        t = state.T // T_FRACTION
    try:
        s = float(scale)
        s = s if 0 <= s <= GUIDANCE_MAX else GUIDANCE_DEFAULT
    except (TypeError, ValueError):
        s = GUIDANCE_DEFAULT
    if denoiser not in {v for _, v in DENOISER_CHOICES}:
        denoiser = "network"
    fig, md = guide_view(state, k, s, t, denoiser)
    return (gr.update(choices=_class_choices(names), value=k),
            gr.update(maximum=state.T - 1, value=t), fig, md)


def after_train(state, klass, scale, t, denoiser="network"):
    """:func:`guide_refresh` after ▶ Train, skipped (no work) when the model is not
    class-conditional."""
    if no_model_text(state) is not None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return guide_refresh(state, klass, scale, t, denoiser)


@jobs.heavy("computing a guidance trade-off curve")
def tradeoff(state, scale, denoiser="network", request: gr.Request | None = None):
    """The fidelity–diversity curve: accuracy, spread and class SW1 of 1,000 guided samples at
    s = 0, 0.5, 1, 1.5, 2, 3, 4, 5, 7, 10 (the same x_T each time); a generator for the
    *Trade-off curve* button, ■ Stop closes it.

    Runs under the server's sampling budget and takes turns with other sampling jobs (the same
    queue). Yields ``(figure | no-change, Markdown, curve record | no-change)``: the growing
    curve, then the table of figures. ``scale`` (the slider's s) is marked on the curve.
    """
    denoiser = check_choice("Denoiser", denoiser, DENOISER_CHOICES)
    scale = common.number("Guidance scale s", scale, 0.0, GUIDANCE_MAX, default=GUIDANCE_DEFAULT)
    why = no_model_text(state)
    if why is not None:
        gr.Warning("Train with class labels first (tick “Train with class labels” by ▶ Train).")
        yield gr.skip(), why, gr.skip()
        return
    budget = limits.ACTIVE.sampling_budget()
    rows: list = []

    def record() -> CurveRecord:
        return CurveRecord(rows=tuple(rows), denoiser=denoiser, dataset=state.spec.name,
                           class_names=state.class_names, step=state.trainer.step, n=N_SAMPLES)

    run = guidance.tradeoff_curve(state, scales=TRADEOFF_SCALES, n=N_SAMPLES, seed=SEED,
                                  denoiser=denoiser)
    total = len(TRADEOFF_SCALES)
    yield gr.skip(), f"{RUNNING} s = {TRADEOFF_SCALES[0]:g} (1 / {total}) …", gr.skip()
    start = last_fig = time.perf_counter()
    chain = jobs.paced(run)
    spent = None
    try:
        for row in chain:
            rows.append(row)
            now = time.perf_counter()
            spent = sweeps.stop_reason(budget, start, len(rows), chain)
            if spent is not None and len(rows) < total:
                break
            if len(rows) < total:
                status = (f"{RUNNING} s = {TRADEOFF_SCALES[len(rows)]:g} ({len(rows) + 1} / "
                          f"{total}) …")
                if now - last_fig >= FIGURE_EVERY_S:
                    last_fig = now
                    yield curve_figure(record(), scale), status, gr.skip()
                else:  # a scale takes ~0.1–0.3 s: a status line after each
                    yield gr.skip(), status, gr.skip()
    except ValueError as e:
        raise common.UserError(str(e)) from None
    finally:
        chain.close()
    rec = record()
    md = curve_md(rec) + f"\n\nComputed in {time.perf_counter() - start:.1f} s."
    if spent is not None and len(rows) < total:
        gr.Warning(f"The curve stopped at {spent}.")
        md = (f"{LIMIT_PREFIX} {spent}** (this server's limit) after {len(rows)} of {total} "
              f"scales.\n\n" + md)
    yield curve_figure(rec, scale), md, rec


def tradeoff_mark(record, scale):
    """Redraw the last curve with the slider's s marked (no compute); skipped before a curve."""
    if not isinstance(record, CurveRecord) or not record.rows:
        return gr.skip()
    scale = common.number("Guidance scale s", scale, 0.0, GUIDANCE_MAX, default=GUIDANCE_DEFAULT)
    return curve_figure(record, scale)


def tradeoff_finished(text):
    """Runs after the curve ends or is stopped; says so after a Stop (and clears its badges).

    Returns ``(figure, Markdown)``.
    """
    if isinstance(text, str) and text.startswith(RUNNING):
        return gr.skip(), ("Stopped: press *Trade-off curve* again for the whole curve (the "
                           "scales done so far are not kept).")
    return gr.skip(), gr.skip()


# ---------------------------------------------------------------------------------------------
# Layout and wiring
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuideControls:
    """The components :func:`after_train` reads and writes (tab 3 wires it after ▶ Train)."""

    klass: gr.components.Component
    scale: gr.components.Component
    t: gr.components.Component
    denoiser: gr.components.Component
    figure: gr.components.Component
    text: gr.components.Component


def render(state: gr.State) -> GuideControls:
    """Build the "Guidance" sub-tab inside the caller's ``gr.Tab`` of tab 3 and wire its
    events; returns the controls :func:`after_train` refreshes.

    ``state`` is tab 3's ``gr.State`` holding the user's
    :class:`~diffusion_core.workflows.toy2d.Toy2DSession` (None before ▶ Train).
    """
    lim = limits.ACTIVE
    live = dict(concurrency_limit=8, concurrency_id="toy_guide", trigger_mode="always_last",
                show_progress="hidden")
    cheap = dict(concurrency_limit=8, concurrency_id="toy_guide_cheap", show_progress="hidden")
    curve_state = gr.State(None, time_to_live=lim.state_ttl_s,
                           delete_callback=sessions.on_free("2D guidance curve"))
    T = PRESET.schedule.T

    gr.Markdown(CONVENTION_MD, latex_delimiters=common.LATEX)
    with gr.Row(equal_height=True):
        scale = ui.Slider(0.0, GUIDANCE_MAX, value=GUIDANCE_DEFAULT, step=SCALE_STEP,
                          label="guidance scale s (0 unconditional · 1 conditional · > 1 "
                                "harder)", scale=3, min_width=220)
        t = ui.Slider(0, T - 1, value=T // T_FRACTION, step=1, label="t (the fields' step)",
                      scale=2, min_width=160)
        klass = ui.Dropdown(_class_choices(TOY_SPECS[DEFAULT_DATASET].classes), value=0,
                            label="class (the fields')", scale=1, min_width=170)
        denoiser = ui.Radio([*DENOISER_CHOICES], value="network", label="Denoiser", scale=2,
                            min_width=200)
    figure = gr.Plot(message_figure("Train with class labels first"), show_label=False)
    text = gr.Markdown(NO_MODEL.format(sets=_sets()), elem_classes=["dl-health"])
    gr.Markdown(LOOK_FOR_MD, latex_delimiters=common.LATEX, elem_classes=["dl-health"])
    with gr.Row(equal_height=True):
        curve_btn = gr.Button("Trade-off curve", variant="primary", min_width=140, scale=1)
        curve_stop = gr.Button("■ Stop", variant="stop", min_width=80, scale=1)
        gr.Markdown(f"Accuracy, spread and class SW1 at s = "
                    f"{', '.join(f'{s:g}' for s in TRADEOFF_SCALES)} ({N_SAMPLES:,} samples "
                    f"each, the same x_T). A run may take ≤ {lim.sample_seconds:g} s on this "
                    "server.", elem_classes=["dl-limit"])
    curve_fig = gr.Plot(show_label=False)
    curve_text = gr.Markdown("", elem_classes=["dl-health"])
    with gr.Accordion("How guidance works: label dropout, ε̃, p(y | x)^s, the ideal guided "
                      "field", open=False):
        gr.Markdown(common.explanation("toy2d_guidance"), latex_delimiters=common.LATEX)

    # --- events -------------------------------------------------------------------------------
    view_inputs = [state, klass, scale, t, denoiser]
    gr.on([scale.input, t.input, klass.input, denoiser.input], guide_view, view_inputs,
          [figure, text], api_name="toy_guide_view", **live)
    curve_event = curve_btn.click(
        tradeoff, [state, scale, denoiser], [curve_fig, curve_text, curve_state],
        api_name="toy_guide_tradeoff", concurrency_limit=lim.sample_slots,
        concurrency_id=jobs.SAMPLE_QUEUE, trigger_mode="once", show_progress="minimal")
    curve_event.then(tradeoff_finished, curve_text, [curve_fig, curve_text],
                     api_name="toy_guide_tradeoff_finished", api_visibility="private", **cheap)
    curve_stop.click(None, None, None, cancels=[curve_event], api_name="toy_guide_tradeoff_stop",
                     api_visibility="private", queue=False)
    scale.release(tradeoff_mark, [curve_state, scale], curve_fig, api_name="toy_guide_mark",
                  api_visibility="private", trigger_mode="always_last", **cheap)
    return GuideControls(klass=klass, scale=scale, t=t, denoiser=denoiser, figure=figure,
                         text=text)
