"""The image-training tab's pictures: the loss curve and the three rows of a training panel.

Each builder takes the workflow's records (:mod:`diffusion_core.workflows.image_train`) and
returns a Plotly figure or a uint8 picture; nothing here trains or samples.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from pages import common

if TYPE_CHECKING:
    import torch

    from diffusion_core.workflows.image_train import ImageTrainSession, TrainPanel

images = common.LazyModule("diffusion_core.images")

LOSS_POINTS = 400  # the loss curve is block-averaged down to about this many points
PLOT_HEIGHT = 330
ROW_SIDE = 760  # a panel row is about this many pixels wide
MIN_SCALE, MAX_SCALE = 2, 12


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


LOSS_NAMES = {"eps": "‖ε − ε̂‖²", "x0": "‖x₀ − x̂₀‖²", "v": "‖v − v̂‖²"}


def loss_name(state: ImageTrainSession | None) -> str:
    """What the curve shows: the squared error of what the network predicts (ε, x0 or v),
    against the Stable Target Field's target when the recipe uses it."""
    if state is None:
        return LOSS_NAMES["eps"]
    cfg = state.trainer.config
    name = LOSS_NAMES.get(cfg.prediction, "loss")
    return name.replace("ε ", "ε_STF ").replace("v ", "v_STF ").replace("x₀ ", "x₀,STF ") \
        if cfg.target == "stf" else name


def loss_figure(state: ImageTrainSession | None) -> go.Figure:
    """The loss of every step since the model was created (block means, log scale) and a
    moving average; a hint before the first step."""
    fig = go.Figure()
    losses = np.asarray(state.losses if state is not None else [], dtype=np.float64)
    if len(losses):
        x, y = block_mean(losses, LOSS_POINTS)
        per = "" if len(x) == len(losses) else f" (mean of {math.ceil(len(losses) / len(x))})"
        fig.add_trace(go.Scatter(x=x.astype(np.float32), y=y.astype(np.float32), mode="lines",
                                 name="loss per step" + per, line=dict(color="#9ab7d3", width=1),
                                 hovertemplate="step %{x:.0f}<br>loss %{y:.4f}<extra></extra>"))
        w = max(1, len(y) // 15)
        if len(y) > w:
            smooth = np.convolve(y, np.ones(w) / w, mode="valid")
            fig.add_trace(go.Scatter(x=x[w - 1:].astype(np.float32),
                                     y=smooth.astype(np.float32), mode="lines",
                                     name="moving average",
                                     line=dict(color=common.DATA_COLOR, width=2.5),
                                     hovertemplate="step %{x:.0f}<br>smoothed %{y:.4f}"
                                                   "<extra></extra>"))
    else:
        fig.add_annotation(text="Press ▶ Train to see the loss here", showarrow=False,
                           xref="x domain", yref="y domain", x=0.5, y=0.5, font=dict(size=15))
        # (ticks clear of the corner: "0.01" and the first step's label touched in
        # presentation mode's larger font)
        fig.update_yaxes(range=[-2.25, 0.3])
        fig.update_xaxes(range=[0, 100])
    common.style_figure(fig, height=PLOT_HEIGHT, x_title="training step",
                        y_title=f"{loss_name(state)} per value (log)")
    fig.update_yaxes(type="log")
    fig.update_layout(hovermode="closest", margin=dict(l=60, r=10, t=30, b=45),
                      legend=dict(orientation="h", x=1.0, y=1.02, xanchor="right",
                                  yanchor="bottom", font=dict(size=12)))
    return fig


def row_scale(n: int, size: int) -> int:
    """Integer enlargement that makes a row of ``n`` images about :data:`ROW_SIDE` wide."""
    return max(MIN_SCALE, min(MAX_SCALE, ROW_SIDE // (n * (size + 1))))


def row_picture(x: torch.Tensor, scale: int | None = None) -> np.ndarray:
    """``[n, C, H, W]`` images in [−1, 1] → one row, uint8 ``[H', W', 3]`` (clipped for
    display; NaN drawn grey), each pixel a ``scale × scale`` block."""
    import torch

    n, _, size, _ = x.shape
    scale = row_scale(n, size) if scale is None else scale
    x = torch.nan_to_num(x.float(), nan=0.0, posinf=1.0, neginf=-1.0)
    return images.make_grid(x, ncols=n, scale=scale, pad=max(1, scale // 3))


def panel_pictures(panel: TrainPanel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The panel's three rows: (a) x_t, (b) the network's x̂0, (c) DDIM samples."""
    scale = row_scale(len(panel.t), panel.x0.shape[-1])
    return (row_picture(panel.x_t, scale), row_picture(panel.pred_x0, scale),
            row_picture(panel.samples, scale))


def _png_uri(picture: np.ndarray) -> str:
    """A uint8 ``[H, W, 3]`` picture as a PNG data URI."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def panel_html(panel: TrainPanel | None) -> str:
    """The three rows, each under its caption, as one HTML block: scale-1 PNGs that the
    browser enlarges without smoothing (a few kB per panel)."""
    if panel is None:
        return ("<p><em>Press ▶ Train: the panel appears at once and refreshes every few "
                "seconds.</em></p>")
    rows = []
    for picture, label in zip((row_picture(x, 1) for x in (panel.x_t, panel.pred_x0,
                                                            panel.samples)),
                              panel_labels(panel), strict=True):
        h, w = picture.shape[:2]
        alt = html.escape(label)
        rows.append(f'<figure style="margin:0 0 10px 0">'
                    f'<figcaption style="font-size:0.9rem;margin-bottom:3px">{alt}</figcaption>'
                    f'<img src="{_png_uri(picture)}" alt="{alt}" width="{w}" height="{h}" '
                    f'style="width:100%;max-width:{ROW_SIDE}px;height:auto;'
                    'image-rendering:pixelated;border:1px solid #cbd5e1;display:block">'
                    "</figure>")
    return "".join(rows)


def panel_labels(panel: TrainPanel | None) -> tuple[str, str, str]:
    """The three rows' labels (with the panel's t values and sampler)."""
    if panel is None:
        return ROW_LABELS
    ts = ", ".join(str(t) for t in panel.t)
    steps = panel.sampler.steps
    return (f"(a) training images noised to xₜ, t = {ts} (left → right)",
            f"(b) the network's x̂₀ from each xₜ (EMA weights, step {panel.step:,})",
            f"(c) samples from the EMA weights: DDIM, {steps} steps, the same noise each time "
            f"(step {panel.step:,})")


ROW_LABELS = ("(a) training images noised to xₜ (t grows left → right)",
              "(b) the network's x̂₀ from each xₜ",
              "(c) samples from the EMA weights (DDIM, the same noise each time)")
