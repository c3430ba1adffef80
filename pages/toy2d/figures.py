"""Tab 3's figures: the data scatter, the loss curves, the vector field and the animations.

Each builder takes the workflow's records (:mod:`diffusion_core.workflows.toy2d`) and returns
a Plotly figure; nothing here trains or samples. Point clouds are sent as float32 and at most
:data:`SHOW_POINTS` (scatter) or :data:`ANIM_POINTS` (animations) of them, a fixed random
subset, so the browser stays quick.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from pages import common
from pages.toy2d.inputs import PRESET, is_session
from pages.widgets.animated import AnimatedFigure, animate

if TYPE_CHECKING:
    import torch

    from diffusion_core.workflows.toy2d import (
        DataSpec,
        ForwardFrames,
        Toy2DSamples,
        Toy2DSession,
        VectorField,
    )
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
             prefix: str, duration_ms: int = 90) -> AnimatedFigure:
    """One frame per cloud ``[N, 2]``, each replacing the points of trace ``trace_id``."""
    frame_traces = [[go.Scatter(dict(zip("xy", xy(c), strict=True)))] for c in clouds]
    return animate(fig, frame_traces, labels, [trace_id], prefix=prefix, height=PLOT_HEIGHT,
                   duration_ms=duration_ms)


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


def loss_figure(state: Toy2DSession | None) -> go.Figure:
    """Loss per step (log y, block means + a smoothed line) and mean loss per t-range."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                        subplot_titles=("loss per step (dark: moving average)",
                                        "mean loss by t"))
    if is_session(state) and state.losses:
        losses = np.asarray(state.losses, dtype=np.float64)
        x, y = block_mean(losses, LOSS_POINTS)
        per = "" if len(x) == len(losses) else f" (mean of {math.ceil(len(losses) / len(x))})"
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="loss per step" + per,
                                 line=dict(color="#9ab7d3", width=1),
                                 hovertemplate="step %{x:.0f}<br>loss %{y:.4f}<extra></extra>"),
                      row=1, col=1)
        w = max(1, len(y) // 20)
        smooth = np.convolve(y, np.ones(w) / w, mode="valid")
        fig.add_trace(go.Scatter(x=x[w - 1:], y=smooth, mode="lines",
                                 name=f"moving average ({w} points)",
                                 line=dict(color=common.DATA_COLOR, width=2.5),
                                 hovertemplate="step %{x:.0f}<br>smoothed %{y:.4f}"
                                               "<extra></extra>"),
                      row=1, col=1)
        edges = state.trainer.edges
        tl = np.asarray(state.trainer.timestep_loss(), dtype=np.float64)
        labels = [f"{a}–{b - 1}" if b - 1 > a else f"{a}"
                  for a, b in zip(edges[:-1], edges[1:], strict=True)]
        fig.add_trace(go.Bar(x=labels, y=np.where(np.isfinite(tl), tl, None),
                             marker_color=common.SAMPLE_COLOR, name="mean loss in t range",
                             hovertemplate="t %{x}<br>loss %{y:.4f}<extra></extra>"),
                      row=1, col=2)
    else:
        fig.add_annotation(text="Press ▶ Train to see the loss here", showarrow=False,
                           xref="x domain", yref="y domain", x=0.5, y=0.5, font=dict(size=15))
        fig.update_xaxes(range=[0, PRESET.train.steps], row=1, col=1)
        fig.update_yaxes(range=[-1, 0.3], row=1, col=1)
    common.style_figure(fig, height=PLOT_HEIGHT)
    fig.update_layout(hovermode="closest", showlegend=False, margin=dict(l=60, r=10, t=40, b=50))
    fig.update_annotations(font_size=14)
    fig.update_xaxes(title_text="training step", row=1, col=1)
    stf = (state.trainer.config if state is not None else PRESET.train).target == "stf"
    fig.update_yaxes(title_text=f"‖{'ε_STF' if stf else 'ε'} − ε̂‖² (log scale)", type="log",
                     row=1, col=1)
    fig.update_xaxes(title_text="t", row=1, col=2)
    fig.update_yaxes(title_text="mean loss", row=1, col=2)
    return fig


# ---------------------------------------------------------------------------------------------
# Vector field
# ---------------------------------------------------------------------------------------------


def arrows(grid: np.ndarray, vec: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """One polyline for all arrows: shaft, NaN, head, NaN (plotly draws NaN as a gap).

    Lengths are normalised for readability: proportional to |vec| up to its 90th percentile,
    which (and anything longer) is drawn ``length`` long.
    """
    mag = np.linalg.norm(vec, axis=1, keepdims=True)
    unit = vec / np.maximum(mag, 1e-12)
    ref = max(float(np.quantile(mag, 0.9)), 1e-12)
    scaled = unit * (length * np.minimum(mag / ref, 1.0))
    tip = grid + scaled
    head = 0.3 * np.linalg.norm(scaled, axis=1, keepdims=True)
    c, s = math.cos(math.radians(25)), math.sin(math.radians(25))
    back = -unit
    left = tip + head * np.stack([c * back[:, 0] - s * back[:, 1],
                                  s * back[:, 0] + c * back[:, 1]], axis=1)
    right = tip + head * np.stack([c * back[:, 0] + s * back[:, 1],
                                   -s * back[:, 0] + c * back[:, 1]], axis=1)
    gap = np.full_like(grid, np.nan)
    seg = np.stack([grid, tip, gap, left, tip, right, gap], axis=1)  # [G, 7, 2]
    return seg[..., 0].ravel(), seg[..., 1].ravel()


def vector_field_figure(state: Toy2DSession, vf: VectorField) -> go.Figure:
    """Arrows of −ε̂ (normalised lengths, 0.9 grid cells at most) over the cloud x_t."""
    grid, pred_eps, t = vf.grid, vf.pred_eps, vf.t
    mag = np.linalg.norm(pred_eps, axis=1)
    ax, ay = arrows(grid, -pred_eps, 0.9 * (vf.axis[1] - vf.axis[0]))
    idx = subset(len(vf.x_t), SHOW_POINTS, state.spec.seed)
    fig = go.Figure()
    fig.add_trace(points_trace(vf.x_t[idx], f"x_t (t = {t})", common.DATA_COLOR, size=3.5,
                               opacity=0.35))
    fig.add_trace(go.Scatter(x=f32(ax), y=f32(ay), mode="lines", name="−ε̂ direction",
                             line=dict(color="#1f2937", width=1.6), hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=f32(grid[:, 0].copy()), y=f32(grid[:, 1].copy()), mode="markers",
        name="|ε̂| at arrow base",
        marker=dict(size=4, color=mag, colorscale="Viridis", showscale=True,
                    colorbar=dict(title=dict(text="|ε̂|"), thickness=12, len=0.7)),
        customdata=np.round(np.stack([pred_eps[:, 0], pred_eps[:, 1], mag], axis=1), 4),
        hovertemplate="x = (%{x:.2f}, %{y:.2f})<br>ε̂ = (%{customdata[0]:.3f}, "
                      "%{customdata[1]:.3f})<br>|ε̂| = %{customdata[2]:.3f}<extra></extra>"))
    title = f"−ε̂_θ(x, t = {t}) over x_t (ᾱ_t = {vf.alpha_bar:.3f}); lengths normalised"
    scatter_style(fig, vf.half, title=title)
    fig.update_layout(showlegend=False)
    return fig


# ---------------------------------------------------------------------------------------------
# Animations
# ---------------------------------------------------------------------------------------------


def sample_figure(state: Toy2DSession, run: Toy2DSamples, how: str) -> AnimatedFigure:
    """The reverse chain animated (final samples over the training data, shown first)."""
    x, x_T = run.samples, run.x_T
    anim = subset(len(x), ANIM_POINTS, run.seed)
    finite = x[torch.isfinite(x).all(dim=1)]
    half = workflow.half_width(state.data, finite if len(finite) else state.data, q=0.99)
    half = max(half, min(workflow.half_width(x_T, q=0.98), 3.2))
    fig = AnimatedFigure()
    fig.add_trace(points_trace(state.data[subset(len(state.data), SHOW_POINTS, state.spec.seed)],
                               "training data", common.DATA_COLOR, size=3.5, opacity=0.35))
    fig.add_trace(points_trace(torch.nan_to_num(x[anim], nan=0.0), "samples",
                               common.SAMPLE_COLOR, size=4.5, opacity=0.85))
    labels = [f"{run.frame_t[0]} (start: N(0, I))"]
    labels += ["−1 (final)" if t == -1 else str(t) for t in run.frame_t[1:]]
    scatter_style(fig, half, title=f"Reverse chain: {how}")
    _animate(fig, [f[anim] for f in run.frames], labels, 1, prefix="points at t = ")
    # Open on the final frame: samples over the data.
    fig.layout.sliders[0].active = len(labels) - 1
    return fig


def forward_figure(frames: ForwardFrames) -> AnimatedFigure:
    """x_t of (a fixed subset of) the data at every recorded t, starting from the data."""
    spec, schedule = frames.spec, frames.schedule
    idx = subset(spec.n, ANIM_POINTS, spec.seed)
    x0 = frames.data[idx]
    clouds = [x0] + [x[idx] for x in frames.x_t]
    labels = ["−1 (data)"] + [f"{t} (ᾱ = {ab:.3f})"
                              for t, ab in zip(frames.timesteps, frames.alpha_bar, strict=True)]
    half = max(workflow.half_width(frames.data),
               min(workflow.half_width(clouds[-1], q=0.98), 3.2))
    fig = AnimatedFigure()
    fig.add_trace(points_trace(x0, "x_t", common.DATA_COLOR, size=4, opacity=0.6))
    scatter_style(fig, half, title=f"Forward diffusion: {spec.name}, {schedule.config.kind}, "
                                   f"T = {schedule.T}")
    return _animate(fig, clouds, labels, 0, prefix="t = ", duration_ms=150)
