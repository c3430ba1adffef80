"""Tab 2's view pieces: pictures, the histogram figure and the Markdown of the numbers.

Everything here formats records from :mod:`diffusion_core.workflows.forward_demo`; nothing
computes a diffusion quantity.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from pages import common

if TYPE_CHECKING:
    import torch

    from diffusion_core.workflows.forward_demo import CompareStats, FrameStats, Histogram

DISPLAY_MIN = 256  # small images are enlarged (nearest neighbour) to at least this for display
STRIP_FRAMES = 8
STRIP_MAX = 128  # strip frames are subsampled (every k-th pixel, no blur) to ≤ this
HIST_RANGE = 4.0
HIST_BINS = 80


def to_image(x: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` in [−1, 1] → uint8 ``[H', W', 3]`` or ``[H', W']`` (grey), clipped, and
    enlarged by an integer factor (nearest neighbour) when smaller than ``DISPLAY_MIN``."""
    a = x.numpy()
    a = np.rint((np.clip(a, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    k = DISPLAY_MIN // max(a.shape[:2])
    if k > 1:
        a = a.repeat(k, axis=0).repeat(k, axis=1)
    return a


@lru_cache(maxsize=2)
def _hist_layout_json() -> str:
    """The histogram's styled layout as JSON, built once: validating the full ``plotly_white``
    template costs ~10 ms per figure, so only the parts 2D plots use are kept."""
    fig = go.Figure()
    common.style_figure(fig, height=250, x_title="pixel value of x_t", y_title="density")
    fig.update_layout(margin=dict(l=55, r=10, t=30, b=45), bargap=0.05,
                      legend=dict(y=1.0, font=dict(size=13)), hovermode="x")
    fig.update_xaxes(range=[-HIST_RANGE, HIST_RANGE])
    return common.compact_layout_json(fig)


def _gauss_curve() -> tuple[np.ndarray, np.ndarray]:
    """The N(0, 1) density drawn over the histogram (what x_t approaches as ᾱ_t → 0)."""
    z = np.linspace(-HIST_RANGE, HIST_RANGE, 161)
    return z, np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


def histogram_figure(h: Histogram) -> go.Figure:
    """The density histogram of x_t's values (bars) and the N(0, 1) pdf (line)."""
    z, pdf = _gauss_curve()
    traces = [
        dict(type="bar", x=h.centers, y=h.density, width=h.width, name="x_t pixels",
             marker=dict(color=common.DATA_COLOR, opacity=0.75),
             hovertemplate="value %{x:.2f}: density %{y:.3f}<extra></extra>"),
        dict(type="scatter", mode="lines", x=z, y=pdf, name="N(0, 1)",
             line=dict(color=common.SAMPLE_COLOR, width=3),
             hovertemplate="N(0,1) density %{y:.3f}<extra></extra>"),
    ]
    return go.Figure(data=traces, layout=json.loads(_hist_layout_json()))


def near_one(x: float, digits: int = 4) -> str:
    """``x`` with enough decimals that a value just below 1 never shows as "1": 0.99996 →
    "0.999960" (two significant digits of 1 − x), 0.8459 → "0.8459"."""
    if not math.isfinite(x) or x < 1 - 10 ** -(digits - 1) or x >= 1:
        return f"{x:.{digits}g}" if x < 1 else f"{x:g}"
    return f"{x:.{math.floor(-math.log10(1 - x)) + 2}f}"


def numbers_markdown(n: FrameStats) -> str:
    """The table beside the histogram: the schedule's numbers at t and x_t's PSNR."""
    gap = f" (1 − ᾱ = {1 - n.alpha_bar:.2g})" if n.alpha_bar >= 0.999 else ""
    return (
        f"| quantity | at t = {n.t} (of 0…{n.T - 1}) |\n|:--|--:|\n"
        f"| ᾱ<sub>t</sub> | {near_one(n.alpha_bar)}{gap} |\n"
        f"| signal √ᾱ<sub>t</sub> | {near_one(n.signal)} |\n"
        f"| noise √(1−ᾱ<sub>t</sub>) | {n.noise:.4f} |\n"
        f"| SNR = ᾱ/(1−ᾱ) | {n.snr:.4g} ({n.snr_db:+.1f} dB) |\n"
        f"| PSNR of x<sub>t</sub> vs x<sub>0</sub> | {n.psnr_db:.1f} dB |\n"
    )


def strip_label(ts) -> str:
    return "xₜ at t = " + ", ".join(map(str, ts)) + " (same ε)"


def compare_markdown(st: CompareStats, t: int, seconds: float) -> str:
    rows = [("eq. 2, step by step", st.iterative), ("eq. 4, closed form", st.closed),
            ("theory", st.theory)]
    lines = ["| | mean of x<sub>t</sub> | mean of x<sub>t</sub> − √ᾱ x<sub>0</sub> "
             "| std of x<sub>t</sub> − √ᾱ x<sub>0</sub> |", "|:--|--:|--:|--:|"]
    for name, r in rows:
        lines.append(f"| {name} | {r.mean:+.4f} | {r.resid_mean:+.4f} | {r.resid_std:.4f} |")
    lines.append("")
    lines.append(
        f"Theory: mean √ᾱ·mean(x<sub>0</sub>), noise std √(1−ᾱ). Same distribution, different "
        f"draws: correlation of the two noise parts {st.noise_correlation:+.3f}, RMS "
        f"difference between the pictures {st.rms_difference:.3f} (≈ √(2(1−ᾱ)) = "
        f"{math.sqrt(2) * st.theory.resid_std:.3f})."
        f"\n\nThe step-by-step chain ran {t + 1} steps in {seconds:.2f} s (about 1 ms per step "
        f"for a 256×256 RGB image, up to 4 s at T = 4000), so it runs only while this box is "
        f"ticked, and when you release the t slider."
    )
    return "\n".join(lines)
