"""Tab 3's figures: the data scatter, the loss curves, the vector field (learned, ideal or both),
the network-vs-ideal error by t, the likelihood bound and the animations.

Each builder takes the workflow's records (:mod:`diffusion_core.workflows.toy2d`) and returns
a Plotly figure; nothing here trains or samples. Point clouds are sent as float32 and at most
:data:`SHOW_POINTS` (scatter) or :data:`ANIM_POINTS` (animations) of them, a fixed random
subset, so the browser stays quick.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import uuid
import weakref
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from pages import common, layout
from pages.toy2d.inputs import PREDICTION_NAMES, PRESET, is_session
from pages.widgets.animated import AnimatedFigure, animate

if TYPE_CHECKING:
    import torch

    from diffusion_core.workflows.toy2d import (
        DataSpec,
        FieldTable,
        ForwardFrames,
        LivePreview,
        Toy2DSamples,
        Toy2DSession,
        VectorField,
    )
    from diffusion_core.workflows.toy2d_why import BoundResult, ErrorByT
else:
    torch = common.LazyModule("torch")

workflow = common.LazyModule("diffusion_core.workflows.toy2d")

GRID = 21  # arrows per side of the vector-field grid
LOSS_POINTS = 600  # the loss curve is block-averaged down to about this many points
SHOW_POINTS = 4000  # scatter plots show at most this many points (a fixed random subset)
ANIM_POINTS = 1000  # animations move at most this many points per frame
MAX_FRAMES = 60  # frames of the sampling animation (x_T and up to 59 reverse steps)
FORWARD_FRAMES = 30  # timesteps of the forward-diffusion animation
PLOT_HEIGHT = 430
LOSS_MARGIN_T = 82  # room above the loss chart for its title and the loss in words
SMALL_HEIGHT = 270  # the error-by-t plot under the vector field
LEARNED_COLOR = "#1f2937"  # the learned field's arrows (and the network in the bound)
IDEAL_COLOR = "#D55E00"  # the ideal denoiser everywhere on this tab
NETWORK_COLOR = common.DATA_COLOR
# One colour per prediction type in the per-t loss comparison (Okabe–Ito).
PREDICTION_COLORS = {"eps": "#D55E00", "x0": "#009E73", "v": "#CC79A7"}


def subset(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Indices of a fixed random subset of at most k of n points (for drawing only)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def f32(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """float32 numpy: plotly sends it as base64 (4 bytes a value), half of float64."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def xy(pts: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns x₁, x₂ of ``pts [N, 2]`` as contiguous float32 arrays."""
    a = f32(pts)
    return np.ascontiguousarray(a[:, 0]), np.ascontiguousarray(a[:, 1])


def scatter_style(fig: go.Figure, half: float, *, title: str | None = None) -> go.Figure:
    common.style_figure(fig, title=title, height=PLOT_HEIGHT, x_title="x₁", y_title="x₂")
    fig.update_layout(hovermode="closest", margin=dict(l=55, r=10, t=40 if title else 20, b=45),
                      legend=dict(orientation="v", x=1.0, y=1.0, xanchor="right",
                                  yanchor="top", bgcolor="rgba(255,255,255,0.8)"))
    # A square view (1 unit is as long on both axes) that keeps the requested ranges.
    fig.update_xaxes(range=[-half, half], zeroline=False, constrain="domain")
    fig.update_yaxes(range=[-half, half], zeroline=False, scaleanchor="x", scaleratio=1,
                     constrain="domain")
    return fig


def points_trace(pts: torch.Tensor, name: str, color: str, *, size: float = 4,
                 opacity: float = 0.6) -> go.Scatter:
    x, y = xy(pts)
    return go.Scatter(x=x, y=y, mode="markers", name=name,
                      marker=dict(color=color, size=size, opacity=opacity),
                      hovertemplate="x₁ %{x:.3f}<br>x₂ %{y:.3f}<extra>" + name + "</extra>")


def _animate(fig: AnimatedFigure, clouds: list, labels: list[str], trace_id: int, *,
             prefix: str, duration_ms: int = 90, hovers: list[str] | None = None
             ) -> AnimatedFigure:
    """One frame per cloud ``[N, 2]``, each replacing the points of trace ``trace_id``;
    ``hovers[i]`` (optional) is frame i's hover template (where the frame's t is told)."""
    frame_traces = []
    for i, c in enumerate(clouds):
        trace = dict(zip("xy", xy(c), strict=True))
        if hovers is not None:
            trace["hovertemplate"] = hovers[i]
        frame_traces.append([go.Scatter(trace)])
    return animate(fig, frame_traces, labels, [trace_id], prefix=prefix, height=PLOT_HEIGHT,
                   duration_ms=duration_ms)


# Learner-facing names of the chain's ends; the index goes in the points' hover tooltip.
DATA_WORD, NOISE_WORD, SAMPLES_WORD = "data", "pure noise", "samples"
PURE_NOISE_BELOW = 1e-3  # the forward chain's last frame is "pure noise" when ᾱ_t < this


def frame_hover(what: str, where: str) -> str:
    """A point's hover: its coordinates, then what the frame shows and where (its t)."""
    return f"x₁ %{{x:.3f}}<br>x₂ %{{y:.3f}}<extra>{what}<br>{where}</extra>"


# ---------------------------------------------------------------------------------------------
# Data and loss
# ---------------------------------------------------------------------------------------------


def data_figure(spec: DataSpec, pts: torch.Tensor) -> go.Figure:
    idx = subset(len(pts), SHOW_POINTS, spec.seed)
    fig = go.Figure(points_trace(pts[idx], "data", common.DATA_COLOR))
    shown = "" if len(idx) == len(pts) else f" (showing {len(idx):,})"
    title = f"{spec.name}: {spec.n:,} points{shown}, noise {spec.noise:g}"
    return scatter_style(fig, workflow.half_width(pts), title=title)


def block_mean(values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(step numbers, mean loss) averaged over equal blocks so at most ~max_points remain."""
    n = len(values)
    k = max(1, math.ceil(n / max_points))
    m = n // k
    head = values[: m * k].reshape(m, k).mean(axis=1)
    steps = np.arange(m) * k + (k + 1) / 2
    if m * k < n:  # the unfinished last block
        head = np.append(head, values[m * k:].mean())
        steps = np.append(steps, (m * k + n + 1) / 2)
    return steps, head


@functools.lru_cache(maxsize=16)
def _loss_layout_json(words: str, symbol: str) -> str:
    """The loss figure's two-panel layout for one loss (its words and symbol), styled and
    validated once: :func:`loss_figure` adds plain-dict traces to it (building and validating
    the Plotly objects every time cost ≈ 70 ms of server CPU per redraw, several per ▶ Train)."""
    from plotly.subplots import make_subplots

    # The left title also says, in words, what the loss compares (the STF target is not the
    # drawn ε): small grey lines under it, above the axis they explain.
    fig = make_subplots(rows=1, cols=2, column_widths=[0.56, 0.44], horizontal_spacing=0.1,
                        subplot_titles=("loss per step (dark: moving average)<br>"
                                        f"<span style='font-size:11px;color:#475569'>"
                                        f"{words}</span>",
                                        "mean by t, in ε units"))
    common.style_figure(fig, height=PLOT_HEIGHT)
    fig.update_layout(hovermode="closest", showlegend=True,
                      margin=dict(l=60, r=10, t=LOSS_MARGIN_T, b=95),
                      legend=dict(orientation="v", x=1.0, y=-0.2, xanchor="right", yanchor="top",
                                  font=dict(size=12)))
    fig.update_annotations(font_size=14)
    fig.update_xaxes(title_text="training step", row=1, col=1)
    fig.update_yaxes(title_text=f"{symbol} (log scale)", type="log", row=1, col=1)
    fig.update_xaxes(title_text="t", row=1, col=2)
    fig.update_yaxes(title_text="ε units (log)", type="log", exponentformat="power", row=1,
                     col=2)
    return common.compact_layout_json(fig)


def loss_figure(state: Toy2DSession | None) -> go.Figure:
    """Loss per step (log y, block means + a smoothed line) and, right, the mean loss per t-range
    in ε units (‖ε̂ − ε‖²/2 with ε̂ the output converted), one line per prediction type trained
    on these data, schedule and model (:meth:`Toy2DSession.prediction_curves`)."""
    cfg = state.trainer.config if is_session(state) else PRESET.train
    layout = json.loads(_loss_layout_json(loss_words(cfg), loss_symbol(cfg)))
    traces = []
    if is_session(state) and state.losses:
        losses = np.asarray(state.losses, dtype=np.float64)
        x, y = block_mean(losses, LOSS_POINTS)
        per = "" if len(x) == len(losses) else f" (mean of {math.ceil(len(losses) / len(x))})"
        traces.append(dict(type="scatter", x=x, y=y, mode="lines", name="loss per step" + per,
                           showlegend=False, line=dict(color="#9ab7d3", width=1),
                           hovertemplate="step %{x:.0f}<br>loss %{y:.4f}<extra></extra>"))
        w = max(1, len(y) // 20)
        smooth = np.convolve(y, np.ones(w) / w, mode="valid")
        traces.append(dict(type="scatter", x=x[w - 1:], y=smooth, mode="lines",
                           showlegend=False, name=f"moving average ({w} points)",
                           line=dict(color=common.DATA_COLOR, width=2.5),
                           hovertemplate="step %{x:.0f}<br>smoothed %{y:.4f}<extra></extra>"))
        for curve in state.prediction_curves().values():
            traces.append(_per_t_trace(curve, current=curve.prediction == state.prediction))
    else:
        layout["annotations"].append(dict(
            text="Press ▶ Train to see the loss here", showarrow=False, xref="x domain",
            yref="y domain", x=0.5, y=0.5, font=dict(size=15)))
        layout["annotations"].append(dict(
            text="… and by t here", showarrow=False, xref="x2 domain", yref="y2 domain",
            x=0.5, y=0.5, font=dict(size=15)))
        # Both panels drawn empty, decades only (an empty log axis otherwise labels 2…9).
        layout["xaxis"]["range"] = [0, PRESET.train.steps]
        layout["xaxis2"]["range"] = [0, PRESET.schedule.T]
        for axis in ("yaxis", "yaxis2"):
            layout[axis].update(range=[-2, 0.3], dtick=1)
    return go.Figure(data=traces, layout=layout, _validate=False)


# What the network's output is compared with, per prediction: (symbol, output, in words).
LOSS_TARGETS = {"eps": ("ε", "ε̂", "the noise that was added to make x_t"),
                "x0": ("x0", "x̂0", "the clean point the noise was added to"),
                "v": ("v", "v̂", "the velocity √ᾱ ε − √(1−ᾱ) x0")}


def loss_symbol(cfg) -> str:
    """The loss of ``cfg`` (a ``TrainConfig``) as a formula, e.g. ``‖ε_STF − ε̂‖²/2`` (an x0
    or v target under STF, the posterior means', keeps its plain symbol; see
    :func:`loss_words`)."""
    target, output, _ = LOSS_TARGETS[cfg.prediction]
    if cfg.target == "stf" and cfg.prediction == "eps":
        target += "_STF"
    return f"‖{target} − {output}‖²/2"


def loss_words(cfg) -> str:
    """What the loss compares, in words (``<br>``-broken lines of ≤ ~50 characters), for the
    loss chart's title, above the axis that shows it."""
    target, _, words = LOSS_TARGETS[cfg.prediction]
    if cfg.target != "stf":
        return f"{target}: {words}"
    name = "ε_STF" if cfg.prediction == "eps" else target
    thing = {"eps": "the noise", "x0": "the clean point", "v": "the velocity"}[cfg.prediction]
    return (f"{name}: the <b>stable target</b> (STF, Xu et al. 2023): {thing}<br>averaged "
            "over the batch's clean points, each weighted<br>by how likely it made x_t")


def _per_t_trace(curve, *, current: bool) -> dict:
    """One prediction's per-t ε-unit loss as a line over the bins' centres (a plain-dict trace
    on the loss figure's right panel)."""
    edges = np.asarray(curve.edges)
    lo, hi = edges[:-1], edges[1:] - 1
    y = np.asarray(curve.eps_loss, dtype=np.float64)
    name = PREDICTION_NAMES[curve.prediction]
    label = f"{name}-prediction, {curve.steps:,} steps" + (" (this model)" if current else "")
    ranges = [f"{a}–{b}" if b > a else f"{a}" for a, b in zip(lo, hi, strict=True)]
    return dict(
        type="scatter", xaxis="x2", yaxis="y2",
        x=(lo + hi) / 2, y=np.where(np.isfinite(y) & (y > 0), y, None), mode="lines+markers",
        name=label, customdata=ranges,
        line=dict(color=PREDICTION_COLORS[curve.prediction], width=3 if current else 2,
                  dash="solid" if current else "dash"),
        marker=dict(size=7 if current else 5),
        hovertemplate=f"{name}-prediction<br>t %{{customdata}}<br>‖ε − ε̂‖²/2 (ε units) "
                      "%{y:.4f}<extra></extra>")


# ---------------------------------------------------------------------------------------------
# Vector field
# ---------------------------------------------------------------------------------------------


ARROW_HEAD = 0.3  # an arrow's head: this × its length, …
ARROW_HEAD_DEG = 25  # … at this angle either side of the shaft


def arrow_offsets(vec: np.ndarray, *, ref: float | None = None) -> np.ndarray:
    """Each arrow's tip relative to its base, in units of the longest arrow: the unit vector
    of ``vec [..., G, 2]`` times min(|vec| / ``ref``, 1), same shape. ``ref`` defaults to
    the 90th percentile of |vec| over the G arrows (of each field, for a stack of fields):
    lengths ∝ |vec| up to it, and that long beyond it."""
    mag = np.linalg.norm(vec, axis=-1, keepdims=True)
    unit = vec / np.maximum(mag, 1e-12)
    if ref is None:
        ref = np.quantile(mag, 0.9, axis=-2, keepdims=True)
    return unit * np.minimum(mag / np.maximum(ref, 1e-12), 1.0)


def arrows(grid: np.ndarray, vec: np.ndarray, length: float, *, ref: float | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """One polyline for all arrows: shaft, NaN, head, NaN (plotly draws NaN as a gap).

    Lengths are normalised for readability: proportional to |vec| up to ``ref`` (default: the
    90th percentile of |vec|), which (and anything longer) is drawn ``length`` long
    (:func:`arrow_offsets`; the browser's fast path, :func:`field_fast_js`, draws the same).
    """
    scaled = arrow_offsets(vec, ref=ref) * length
    unit = scaled / np.maximum(np.linalg.norm(scaled, axis=1, keepdims=True), 1e-300)
    tip = grid + scaled
    head = ARROW_HEAD * np.linalg.norm(scaled, axis=1, keepdims=True)
    c, s = math.cos(math.radians(ARROW_HEAD_DEG)), math.sin(math.radians(ARROW_HEAD_DEG))
    back = -unit
    left = tip + head * np.stack([c * back[:, 0] - s * back[:, 1],
                                  s * back[:, 0] + c * back[:, 1]], axis=1)
    right = tip + head * np.stack([c * back[:, 0] + s * back[:, 1],
                                   -s * back[:, 0] + c * back[:, 1]], axis=1)
    gap = np.full_like(grid, np.nan)
    seg = np.stack([grid, tip, gap, left, tip, right, gap], axis=1)  # [G, 7, 2]
    return seg[..., 0].ravel(), seg[..., 1].ravel()


ARROW_LENGTH = 0.9  # the longest arrows of a field span this many grid cells
FIELD_POINTS = 500  # the t slider's field shows at most this many points of x_t (a fixed
#                    subset: Plotly styles each marker node on every redraw)
LIVE_HEIGHT = 330  # the live views beside the loss while ▶ Train runs
LIVE_POINTS = 500  # points of x_t in the live field
FIELD_FRAMES = 24  # timesteps of the "▶ Play over t" animation


@functools.cache
def _scatter_layout_json() -> str:
    """A square x₁/x₂ view's styled layout (:func:`scatter_style`) with a title, built and
    validated once: the field figures set its ranges and title and add plain-dict traces (a
    slider drag redraws the field many times a second)."""
    return common.compact_layout_json(scatter_style(go.Figure(), 1.0, title="-"))


def _square_layout(half: float, title: str, *, height: int = PLOT_HEIGHT) -> dict:
    layout = json.loads(_scatter_layout_json())
    layout["height"] = height
    layout["title"]["text"] = title
    layout["xaxis"]["range"] = [-half, half]
    layout["yaxis"]["range"] = [-half, half]
    layout["showlegend"] = False  # the titles name the colours
    return layout


def _cloud_trace(pts, t: int, *, size: float = 3.5, opacity: float = 0.35) -> dict:
    x, y = xy(pts)
    return dict(type="scatter", x=x, y=y, mode="markers", name=f"x_t (t = {t})",
                showlegend=False, marker=dict(color=common.DATA_COLOR, size=size,
                                              opacity=opacity),
                hovertemplate="x₁ %{x:.3f}<br>x₂ %{y:.3f}<extra>x_t</extra>")


def _arrow_trace(vf: VectorField, length: float, ref: float | None, name: str, color: str,
                 width: float) -> dict:
    ax, ay = arrows(vf.grid, -vf.pred_eps, length, ref=ref)
    return dict(type="scatter", x=f32(ax), y=f32(ay), mode="lines", name=name,
                line=dict(color=color, width=width), hoverinfo="skip")


def vector_field_figure(state: Toy2DSession, vf: VectorField,
                        ideal: VectorField | None = None) -> go.Figure:
    """Arrows of −ε̂ (normalised lengths, 0.9 grid cells at most) over the cloud x_t.

    ``vf`` is the learned field (``vf.denoiser == "network"``: dark arrows, the look this tab
    always had) or the ideal one (vermillion arrows). ``ideal`` overlays the ideal field on a
    learned ``vf`` (same grid and t); both are then scaled by one reference length (the 90th
    percentile of all their |ε|), so their lengths compare; the title names the colours.
    Traces: the cloud x_t (at most :data:`FIELD_POINTS`), ``vf``'s arrows, the arrow bases
    (colour and hover: |ε| of ``vf``; hover also ε* when overlaid), then ``ideal``'s arrows.

    Built from plain dicts on a cached layout, everything float32 (≈ 60 kB of JSON): the t
    slider redraws it on every key press and drag step.
    """
    grid, t = vf.grid, vf.t
    learned = vf.denoiser == "network"
    sym = "ε̂" if learned else "ε*"
    mag = np.linalg.norm(vf.pred_eps, axis=1)
    length = ARROW_LENGTH * (vf.axis[1] - vf.axis[0])
    ref = None
    if ideal is not None:
        both = np.concatenate([mag, np.linalg.norm(ideal.pred_eps, axis=1)])
        ref = float(np.quantile(both, 0.9))
    idx = subset(len(vf.x_t), FIELD_POINTS, state.spec.seed)
    traces = [_cloud_trace(vf.x_t[idx], t),
              _arrow_trace(vf, length, ref,
                           "learned −ε̂_θ" if learned else "ideal −ε* (memorising)",
                           LEARNED_COLOR if learned else IDEAL_COLOR, 1.6)]
    custom = [vf.pred_eps[:, 0], vf.pred_eps[:, 1], mag]
    hover = (f"x = (%{{x:.2f}}, %{{y:.2f}})<br>{sym} = (%{{customdata[0]:.3f}}, "
             f"%{{customdata[1]:.3f}})<br>|{sym}| = %{{customdata[2]:.3f}}")
    if ideal is not None:
        custom += [ideal.pred_eps[:, 0], ideal.pred_eps[:, 1]]
        hover += "<br>ε* = (%{customdata[3]:.3f}, %{customdata[4]:.3f})"
    traces.append(dict(
        type="scatter", x=f32(grid[:, 0]), y=f32(grid[:, 1]), mode="markers",
        name=f"|{sym}| at arrow base", showlegend=False,
        marker=dict(size=4, color=f32(mag), colorscale="Viridis", showscale=True,
                    colorbar=dict(title=dict(text=f"|{sym}|"), thickness=12, len=0.7)),
        customdata=f32(np.stack(custom, axis=1)), hovertemplate=hover + "<extra></extra>"))
    if ideal is not None:
        traces.append(_arrow_trace(ideal, length, ref, "ideal −ε* (memorising)", IDEAL_COLOR,
                                   1.3))
        title = (f"learned −ε̂_θ (dark), ideal −ε* (vermillion), t = {t} "
                 f"(ᾱ_t = {vf.alpha_bar:.3f})")
    elif learned:
        title = LEARNED_TITLE.format(t=t, alpha_bar=f"{vf.alpha_bar:.3f}")
    else:
        title = f"ideal −ε*(x, t = {t}) over x_t (ᾱ_t = {vf.alpha_bar:.3f}); lengths normalised"
    layout = _square_layout(vf.half, title)
    show = "both" if ideal is not None else "learned" if learned else "ideal"
    # Which model and t this is: the browser's fast path (field_fast_js) redraws a new t from
    # the field table of the same key only.
    layout["meta"] = {"dl_field": {"key": field_key(state), "t": t, "show": show}}
    return go.Figure(data=traces, layout=layout, _validate=False)


# The learned field's title ({alpha_bar} already formatted, 3 decimals): also the browser's.
LEARNED_TITLE = "−ε̂_θ(x, t = {t}) over x_t (ᾱ_t = {alpha_bar}); lengths normalised"

_model_ids: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def field_key(state: Toy2DSession) -> str:
    """Names the weights a field was computed from: the session (a random id of its own,
    kept while it lives) and its training step. Any training step, a new model or another
    session gives a new key, so the browser never draws a field table of other weights."""
    token = _model_ids.get(state)
    if token is None:
        token = _model_ids.setdefault(state, uuid.uuid4().hex[:12])
    return f"{token}:{state.trainer.step}"


def _b64(a: np.ndarray, dtype: str) -> str:
    """``a`` as little-endian ``dtype`` bytes in base64 (the browser reads them into a typed
    array: Int32Array, Float32Array, Float64Array)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<"))
                            .tobytes()).decode("ascii")


def pack_tips(tips: np.ndarray) -> str:
    """Arrow tips ``[K, G², 2]`` in [−1, 1] (:func:`arrow_offsets`) as int8 steps of 1/127,
    each t's minus the previous t's (wrapping mod 256: a field changes little from one t to
    the next), zlib-compressed, base64: ≈ 0.2 kB a t for a 21 × 21 grid instead of 0.9."""
    q = np.rint(np.clip(tips, -1.0, 1.0) * 127).astype(np.int16)
    delta = np.diff(q, axis=0, prepend=np.zeros_like(q[:1]))
    return base64.b64encode(zlib.compress(delta.astype(np.uint8).tobytes(), 6)
                            ).decode("ascii")


def unpack_tips(packed: str, k: int, g2: int) -> np.ndarray:
    """:func:`pack_tips` undone: int8 ``[k, g2, 2]`` (divide by 127 for the tips)."""
    delta = np.frombuffer(zlib.decompress(base64.b64decode(packed)), dtype=np.uint8)
    q = np.cumsum(delta.reshape(k, g2, 2).astype(np.int64), axis=0) % 256
    return q.astype(np.uint8).view(np.int8)


def field_table_meta(state: Toy2DSession, table: FieldTable) -> dict:
    """The learned field at the table's t, packed for the browser's fast path (about 0.3 kB
    per t for a 21 × 21 grid: the preset's 200 t ≈ 70 kB of JSON). :func:`field_fast_js`
    draws from it what :func:`vector_field_figure` would draw for a learned field at any
    0 ≤ t < T: the cloud x_t (exact, from x0, ε and the schedule's float32 √ᾱ_t, √(1−ᾱ_t)),
    the arrows on the grid of ``half`` (``tips``: :func:`arrow_offsets` of −ε̂ at each
    tabled t, int8 / 127, ≤ 0.4 % of an arrow off; between tabled t of a decimated table,
    interpolated) and the title; the marker colours and hover numbers wait for the server.

    Keys: ``key`` (:func:`field_key`), ``T``, ``grid`` (G), ``t`` (int32 ``[K]``), ``half``
    (float64 ``[K]``), ``tips`` (:func:`pack_tips` of ``[K, G², 2]``), ``sab``, ``s1mab``
    (float32 ``[T]``), ``alpha_bar`` (float64 ``[T]``), ``x0``, ``eps`` (float32 ``[P, 2]``,
    the cloud's fixed subset, P ≤ :data:`FIELD_POINTS`), ``length`` (an arrow's length in
    cells), ``head``, ``head_deg``, ``title``.
    """
    tips = arrow_offsets(-table.pred_eps.astype(np.float64))  # [K, G², 2]
    idx = subset(len(state.data), FIELD_POINTS, state.spec.seed)
    sched = state.schedule
    return dict(
        key=field_key(state), T=table.T, grid=table.grid_size, t=_b64(table.t, "i4"),
        half=_b64(table.half, "f8"), tips=pack_tips(tips),
        sab=_b64(sched.sqrt_alphas_cumprod.numpy(), "f4"),
        s1mab=_b64(sched.sqrt_one_minus_alphas_cumprod.numpy(), "f4"),
        alpha_bar=_b64(sched.float64["alphas_cumprod"].numpy(), "f8"),
        x0=_b64(f32(state.data[idx]), "f4"), eps=_b64(f32(state.eps[idx]), "f4"),
        length=ARROW_LENGTH, head=ARROW_HEAD, head_deg=ARROW_HEAD_DEG, title=LEARNED_TITLE)


ASSETS = Path(__file__).resolve().parents[2] / "assets"
FIELD_PLOT_ID = "dl-toy-field"  # elem_id of the Vector field sub-tab's gr.Plot …
FIELD_T_ID = "dl-toy-field-t"  # … and of its t slider


@functools.cache
def field_fast_js() -> str:
    """The t slider's fast path in the browser (``assets/toy2d_fast.js``, for
    ``Blocks.load(None, js=...)``): installs ``window.__dlToyField`` once per page, which draws
    the learned field for a new t at once from the figure's field table
    (:func:`field_table_meta`) while the server's figure follows."""
    text = (ASSETS / "toy2d_fast.js").read_text(encoding="utf-8")
    text = text.replace("__PAINT_FIRST__", layout.paint_first_js())
    return text.replace("__CONFIG__", json.dumps({"plot": FIELD_PLOT_ID, "slider": FIELD_T_ID}))


# On the field plot's change event (its value: {plot: the figure's JSON, ...}): keep a field
# table the figure carries. Parsed only when there is one (once after ▶ Train).
TAKE_TABLE_JS = """
(fig) => {
  const F = window.__dlToyField, s = fig && fig.plot;
  if (F && typeof s === 'string' && s.includes('"dl_field_table"')) {
    try { F.take(JSON.parse(s).layout.meta.dl_field_table); }
    catch (e) { console.warn('toy field table:', e); }
  }
  return [];
}
"""

# On ▶ Train: the weights are about to change, so the table goes (a new one follows the run).
DROP_TABLE_JS = "() => { if (window.__dlToyField) window.__dlToyField.drop(); return []; }"


def with_field_table(fig: go.Figure, state: Toy2DSession, table: FieldTable) -> go.Figure:
    """``fig`` (a :func:`vector_field_figure` of ``state``) carrying ``table`` in its
    ``layout.meta.dl_field_table`` (:func:`field_table_meta`), for the browser to keep."""
    meta = dict(fig.layout.meta or {})
    meta["dl_field_table"] = field_table_meta(state, table)
    fig.layout.meta = meta
    return fig


def field_animation_figure(state: Toy2DSession, frames: tuple[VectorField, ...],
                           ideal: tuple[VectorField, ...] | None = None) -> AnimatedFigure:
    """"▶ Play over t": the field at each of ``frames`` (t from T−1 down to 0, one grid, see
    :func:`~diffusion_core.workflows.toy2d.field_frames`) as client-side frames, with the
    cloud x_t moving under the arrows; ``ideal`` (same t) overlays the ideal field. Opens on
    the first frame (t = T−1, pure noise); the slider names each frame's t and ᾱ_t.

    Arrow lengths are normalised per frame (as on the t slider). Traces: the cloud, the
    arrows, then the ideal arrows; each frame replaces all of them.
    """
    first = frames[0]
    length = ARROW_LENGTH * (first.axis[1] - first.axis[0])
    idx = subset(len(first.x_t), ANIM_POINTS, state.spec.seed)
    learned = first.denoiser == "network"
    name = "learned −ε̂_θ" if learned else "ideal −ε* (memorising)"
    color = LEARNED_COLOR if learned else IDEAL_COLOR
    clouds, labels = [], []
    for i, vf in enumerate(frames):
        ref = None
        if ideal is not None:
            ref = float(np.quantile(np.concatenate([np.linalg.norm(vf.pred_eps, axis=1),
                                                    np.linalg.norm(ideal[i].pred_eps, axis=1)]),
                                    0.9))
        traces = [_cloud_trace(vf.x_t[idx], vf.t), _arrow_trace(vf, length, ref, name, color,
                                                                1.6)]
        if ideal is not None:
            traces.append(_arrow_trace(ideal[i], length, ref, "ideal −ε* (memorising)",
                                       IDEAL_COLOR, 1.3))
        clouds.append(traces)
        labels.append(f"t = {vf.t} · ᾱ = {vf.alpha_bar:.3g}")
    what = ("learned −ε̂_θ (dark) and ideal −ε* (vermillion)" if ideal is not None
            else "−ε̂_θ" if learned else "ideal −ε*")
    fig = AnimatedFigure(data=clouds[0],
                         layout=_square_layout(first.half, f"{what} over x_t, t from "
                                                           f"{frames[0].t} down to "
                                                           f"{frames[-1].t}"))
    ids = list(range(len(clouds[0])))
    return animate(fig, [[go.Scatter(tr) for tr in traces] for traces in clouds], labels, ids,
                   prefix="", height=PLOT_HEIGHT, duration_ms=220)


def live_field_figure(state: Toy2DSession, preview: LivePreview) -> go.Figure:
    """The live preview's field (small: no hover data, :data:`LIVE_POINTS` of x_t)."""
    vf = preview.field
    idx = subset(len(vf.x_t), LIVE_POINTS, state.spec.seed)
    traces = [_cloud_trace(vf.x_t[idx], vf.t, size=3, opacity=0.3),
              _arrow_trace(vf, ARROW_LENGTH * (vf.axis[1] - vf.axis[0]), None, "learned −ε̂_θ",
                           LEARNED_COLOR, 1.3)]
    layout = _square_layout(vf.half, f"field at t = {vf.t}, step {preview.step:,}",
                            height=LIVE_HEIGHT)
    layout["title"]["font"] = dict(size=14)
    layout["margin"] = dict(l=45, r=10, t=40, b=40)
    return go.Figure(data=traces, layout=layout, _validate=False)


def live_samples_figure(state: Toy2DSession, preview: LivePreview) -> go.Figure:
    """The live preview's samples (:data:`~diffusion_core.workflows.toy2d.PREVIEW_SAMPLER`)
    over a faint subset of the training data."""
    x = preview.samples
    finite = x[torch.isfinite(x).all(dim=1)]
    half = workflow.half_width(state.data, finite if len(finite) else state.data, q=0.99)
    data = state.data[subset(len(state.data), LIVE_POINTS, state.spec.seed)]
    dx, dy = xy(data)
    sx, sy = xy(torch.nan_to_num(x, nan=0.0))
    traces = [dict(type="scatter", x=dx, y=dy, mode="markers", name="training data",
                   marker=dict(color=common.DATA_COLOR, size=3, opacity=0.3),
                   hoverinfo="skip"),
              dict(type="scatter", x=sx, y=sy, mode="markers", name="samples",
                   marker=dict(color=common.SAMPLE_COLOR, size=4, opacity=0.85),
                   hovertemplate="x₁ %{x:.3f}<br>x₂ %{y:.3f}<extra>sample</extra>")]
    layout = _square_layout(half, f"{len(x):,} samples (DDIM 20), step {preview.step:,}",
                            height=LIVE_HEIGHT)
    layout["title"]["font"] = dict(size=14)
    layout["margin"] = dict(l=45, r=10, t=40, b=40)
    return go.Figure(data=traces, layout=layout, _validate=False)


def live_placeholder(text: str) -> go.Figure:
    """An empty live view with a hint (before the first preview of a run)."""
    layout = _square_layout(1.5, "", height=LIVE_HEIGHT)
    layout["margin"] = dict(l=45, r=10, t=40, b=40)
    layout["annotations"] = [dict(text=text, showarrow=False, xref="x domain",
                                  yref="y domain", x=0.5, y=0.5, font=dict(size=13))]
    return go.Figure(layout=layout, _validate=False)


def error_by_t_figure(err: ErrorByT | None, T: int | None = None) -> go.Figure:
    """Mean ‖ε̂_θ − ε*‖² over the noised training points against t (log y); a hint before any
    model exists."""
    fig = go.Figure()
    if err is None:
        fig.add_annotation(text="Train a model to see where it differs from the ideal denoiser",
                           showarrow=False, xref="x domain", yref="y domain", x=0.5, y=0.5,
                           font=dict(size=13))
        fig.update_xaxes(range=[0, (T or PRESET.schedule.T) - 1])
        fig.update_yaxes(range=[-3, 1], type="log")
        title = "network vs ideal denoiser by t"
    else:
        y = np.where(err.mse > 0, err.mse, None)
        fig.add_trace(go.Scatter(
            x=err.t, y=y, mode="lines+markers", name="mean ‖ε̂_θ − ε*‖²",
            line=dict(color=IDEAL_COLOR, width=2), marker=dict(size=4),
            hovertemplate="t %{x}<br>mean ‖ε̂_θ − ε*‖² %{y:.4f}<extra></extra>"))
        title = (f"mean ‖ε̂_θ − ε*‖² over {err.n_points:,} noised training points "
                 f"(after {err.step:,} steps)")
    common.style_figure(fig, title=title, height=SMALL_HEIGHT, x_title="t",
                        y_title="‖ε̂_θ − ε*‖² (log)")
    fig.update_layout(showlegend=False, hovermode="closest",
                      title=dict(font=dict(size=14)), margin=dict(l=60, r=15, t=40, b=45))
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


# ---------------------------------------------------------------------------------------------
# The likelihood bound
# ---------------------------------------------------------------------------------------------

VARIANCE_NAMES = {"beta_tilde": "σ_t² = β̃_t", "beta": "σ_t² = β_t"}


def bound_figure(result: BoundResult | None) -> go.Figure:
    """Left: each step's KL term L_t (t = 1…T−1, nats per point, log y) of the network and of
    the ideal denoiser. Right: the bound's parts, L_0 (decoder), Σ L_t, L_T (prior), and the
    total, grouped by denoiser (linear y: L_0 of a density is usually negative)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.56, 0.44], horizontal_spacing=0.12,
                        subplot_titles=("L_t by t (the KL terms, t = 1 … T−1)",
                                        "the bound's parts"))
    if result is None:
        fig.add_annotation(text="Train a model, then press “Compute the bound”",
                           showarrow=False, xref="x domain", yref="y domain", x=0.5, y=0.5,
                           font=dict(size=15))
        fig.update_yaxes(type="log", range=[-4, 1], row=1, col=1)
    else:
        T = result.network.T
        t = np.arange(1, T)
        parts = ["L_0", "Σ L_t", "L_T", "total"]
        names = ["L_0, the decoder", "Σ L_t, t = 1…T−1, the KL terms", "L_T, the prior",
                 "the total"]
        for name, terms, color in (("trained network", result.network, NETWORK_COLOR),
                                   ("ideal denoiser", result.ideal, IDEAL_COLOR)):
            kl = terms.terms[1:].numpy()
            fig.add_trace(go.Scatter(
                x=t, y=np.where(kl > 0, kl, None), mode="lines", name=name, legendgroup=name,
                line=dict(color=color, width=2),
                hovertemplate=f"{name}<br>t %{{x}}<br>L_t %{{y:.4g}} nats<extra></extra>"),
                row=1, col=1)
            values = [float(terms.terms[0]), float(terms.terms[1:].sum()), terms.prior,
                      terms.total]
            fig.add_trace(go.Bar(
                x=parts, y=values, name=name, legendgroup=name, showlegend=False,
                marker_color=color, customdata=names,
                text=["", "", "", f"{values[-1]:.2f}"], textposition="outside",
                textfont=dict(size=11), cliponaxis=False,
                hovertemplate=f"{name}<br>%{{customdata}}: %{{y:.4f}} nats<extra></extra>"),
                row=1, col=2)
        fig.update_yaxes(type="log", row=1, col=1)
        fig.update_xaxes(range=[0, T], row=1, col=1)
        where = "training points" if result.points == "train" else "fresh points"
        fig.update_layout(title=dict(
            text=f"Variational bound on {result.n:,} {where}, {VARIANCE_NAMES[result.variance]}"
                 f" (T = {T})", x=0.01, font=dict(size=15)))
    common.style_figure(fig, height=PLOT_HEIGHT)
    fig.update_layout(hovermode="closest", barmode="group", bargap=0.25, bargroupgap=0.12,
                      margin=dict(l=60, r=10, t=70 if result is not None else 40, b=70),
                      legend=dict(orientation="h", x=0.0, y=-0.2, xanchor="left",
                                  yanchor="top"))
    fig.update_annotations(font_size=14)
    fig.update_xaxes(title_text="t", row=1, col=1)
    fig.update_xaxes(tickangle=0, row=1, col=2)
    fig.update_yaxes(title_text="nats per point (log)", exponentformat="power", row=1, col=1)
    fig.update_yaxes(title_text="nats per point", zeroline=True, zerolinecolor="#94a3b8",
                     row=1, col=2)
    return fig


# ---------------------------------------------------------------------------------------------
# Animations
# ---------------------------------------------------------------------------------------------


# The traced points' colours (Okabe–Ito without the data's blue and the samples' vermillion,
# then darker tones), cycled.
PATH_COLORS = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000", "#7f3c8d",
               "#11a579", "#3969ac", "#e73f74")


PATH_MARKERS_ZORDER = 1  # above the samples (Plotly's default 0)


def path_traces(paths: torch.Tensor, path_t: tuple[int, ...]) -> list[go.Scatter]:
    """The paths of the traced points through the reverse chain, ``paths [S + 1, k, 2]``
    (``paths[i]`` at ``path_t[i]``): one line per point from x_{T−1} to x_{−1}, an open
    circle at its start and a filled diamond at its end, both drawn above every other trace
    (``zorder``: the lines go under the samples, the markers over them — a path ends inside
    the sample cloud, where its diamond was hidden). Hover names the point and its t."""
    steps, k = paths.shape[0], paths.shape[1]
    p = f32(paths)
    t = np.asarray(path_t, dtype=np.int32)
    traces = []
    for j in range(k):
        color = PATH_COLORS[j % len(PATH_COLORS)]
        traces.append(go.Scatter(
            x=p[:, j, 0], y=p[:, j, 1], mode="lines", name=f"path of point {j + 1}",
            line=dict(color=color, width=1.6), opacity=0.9, customdata=t, showlegend=False,
            hovertemplate=f"point {j + 1}<br>t = %{{customdata}}<br>x₁ %{{x:.3f}}<br>"
                          "x₂ %{y:.3f}<extra></extra>"))
    starts, ends = p[0], p[steps - 1]
    colors = [PATH_COLORS[j % len(PATH_COLORS)] for j in range(k)]
    traces.append(go.Scatter(
        x=starts[:, 0], y=starts[:, 1], mode="markers", name="start (pure noise)",
        marker=dict(symbol="circle-open", size=10, color=colors, line=dict(width=2)),
        zorder=PATH_MARKERS_ZORDER,
        hovertemplate=f"start of a path: t = {path_t[0]} (pure noise)<extra></extra>"))
    traces.append(go.Scatter(
        x=ends[:, 0], y=ends[:, 1], mode="markers", name="end (sample)",
        marker=dict(symbol="diamond", size=11, color=colors,
                    line=dict(width=1.5, color="white")),
        zorder=PATH_MARKERS_ZORDER,
        hovertemplate="end of a path: t = −1 (the sample)<extra></extra>"))
    return traces


def sample_figure(state: Toy2DSession, run: Toy2DSamples, how: str) -> AnimatedFigure:
    """The reverse chain animated (final samples over the training data, shown first).

    With traced points (``run.paths``, the Sample sub-tab's "Trace paths"), their paths
    through the chain are drawn between the data and the samples (:func:`path_traces`); the
    samples stay the last trace, the one the animation moves."""
    x, x_T = run.samples, run.x_T
    anim = subset(len(x), ANIM_POINTS, run.seed)
    finite = x[torch.isfinite(x).all(dim=1)]
    half = workflow.half_width(state.data, finite if len(finite) else state.data, q=0.99)
    half = max(half, min(workflow.half_width(x_T, q=0.98), 3.2))
    fig = AnimatedFigure()
    fig.add_trace(points_trace(state.data[subset(len(state.data), SHOW_POINTS, state.spec.seed)],
                               "training data", common.DATA_COLOR, size=3.5, opacity=0.35))
    labels, hovers = [], []
    for i, t in enumerate(run.frame_t):
        if i == 0:  # x_T ~ N(0, I), whatever the schedule
            labels.append(NOISE_WORD)
            hovers.append(frame_hover("pure noise x_T ~ N(0, I)", f"t = {t} (the start)"))
        elif t == -1:
            labels.append(SAMPLES_WORD)
            hovers.append(frame_hover("samples (the chain's end)", "t = −1"))
        else:
            labels.append(f"t = {t}")
            hovers.append(frame_hover("x_t, part-denoised", f"t = {t}"))
    last = points_trace(torch.nan_to_num(x[anim], nan=0.0), "samples", common.SAMPLE_COLOR,
                        size=4.5, opacity=0.85)
    last.hovertemplate = hovers[-1]
    if run.paths is not None:  # the lines under the samples, their ends' markers over them
        for trace in path_traces(run.paths, run.path_t):
            fig.add_trace(trace)
    fig.add_trace(last)  # the last trace: the one the frames move
    scatter_style(fig, half, title=f"Reverse chain: {how}")
    _animate(fig, [f[anim] for f in run.frames], labels, len(fig.data) - 1, prefix="",
             hovers=hovers)
    # Open on the final frame: samples over the data.
    fig.layout.sliders[0].active = len(labels) - 1
    return fig


def forward_figure(frames: ForwardFrames) -> AnimatedFigure:
    """x_t of (a fixed subset of) the data at every recorded t, starting from the data."""
    spec, schedule = frames.spec, frames.schedule
    idx = subset(spec.n, ANIM_POINTS, spec.seed)
    x0 = frames.data[idx]
    clouds = [x0] + [x[idx] for x in frames.x_t]
    labels = [DATA_WORD]
    hovers = [frame_hover("the data x₀", "t = −1 (ᾱ = 1)")]
    for i, (t, ab) in enumerate(zip(frames.timesteps, frames.alpha_bar, strict=True)):
        end = i == len(frames.timesteps) - 1 and ab < PURE_NOISE_BELOW
        labels.append(NOISE_WORD if end else f"t = {t}")
        hovers.append(frame_hover("pure noise (almost)" if end else "x_t, the data noised",
                                  f"t = {t} · ᾱ = {ab:.3g}"))
    half = max(workflow.half_width(frames.data),
               min(workflow.half_width(clouds[-1], q=0.98), 3.2))
    fig = AnimatedFigure()
    first = points_trace(x0, "x_t", common.DATA_COLOR, size=4, opacity=0.6)
    first.hovertemplate = hovers[0]
    fig.add_trace(first)
    scatter_style(fig, half, title=f"Forward diffusion: {spec.name}, {schedule.config.kind}, "
                                   f"T = {schedule.T}")
    return _animate(fig, clouds, labels, 0, prefix="", duration_ms=150, hovers=hovers)
