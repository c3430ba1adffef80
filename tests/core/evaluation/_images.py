"""A small Gaussian blur for the image judges' calibration references."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Blur ``x [N, 1, H, W]`` with a 5×5 Gaussian of std ``sigma`` pixels (edges replicated)."""
    r = 2
    k = torch.tensor([math.exp(-(i * i) / (2 * sigma**2)) for i in range(-r, r + 1)])
    k = (k[:, None] * k[None, :]) / k.sum() ** 2
    return F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), k[None, None])
