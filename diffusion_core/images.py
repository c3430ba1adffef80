"""Turning image tensors into pictures: grids, uint8 conversion, PNG and GIF files.

Value-range contract: image tensors are in [−1, 1] (``[B, C, H, W]``); pixels outside are
clipped for display only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[−1, 1] floats → uint8 0..255 (any shape), clipping out-of-range values."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def make_grid(images: torch.Tensor, *, ncols: int | None = None, pad: int = 1,
              scale: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``[B, C, H, W]`` images in [−1, 1] into one uint8 picture ``[H', W', 3]``.

    ``ncols`` defaults to ⌈√B⌉; ``scale`` enlarges each pixel (nearest neighbour) so tiny
    16×16 samples stay crisp; ``pad`` pixels of ``pad_value`` separate the tiles.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [B, C, H, W]; got {list(images.shape)}")
    b, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels; got {c}")
    x = images.detach().float().cpu()
    if c == 1:
        x = x.expand(b, 3, h, w)
    if scale > 1:
        x = x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        h, w = h * scale, w * scale
    ncols = ncols or math.ceil(math.sqrt(b))
    nrows = math.ceil(b / ncols)
    if nrows * ncols > b:
        x = torch.cat([x, torch.full((nrows * ncols - b, 3, h, w), pad_value)])
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=pad_value)
    grid = rearrange(x, "(r c) ch h w -> (r h) (c w) ch", r=nrows, c=ncols)
    return to_uint8(grid)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Save a uint8 ``[H, W, 3]`` array as a lossless PNG."""
    path = Path(path)
    Image.fromarray(array).save(path, format="PNG")
    return path


def save_gif(frames: list[np.ndarray], path: str | Path, *, duration_ms: int = 80,
             hold_last_ms: int = 1200) -> Path:
    """Save uint8 frames (``[H, W]`` grey or ``[H, W, 3]`` RGB) as a looping GIF; the last
    frame is held longer."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    path = Path(path)
    pics = [Image.fromarray(f) for f in frames]
    durations = [duration_ms] * (len(pics) - 1) + [hold_last_ms]
    pics[0].save(path, format="GIF", save_all=True, append_images=pics[1:], loop=0,
                 duration=durations, optimize=False)
    return path
