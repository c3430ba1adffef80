"""The image-set container, the image-set spec, and the resize / crop / channel helpers.

The image value-range contract: images are float32 tensors ``[N, C, H, W]`` (one image:
``[C, H, W]``) with values in [−1, 1]: −1 is black, +1 is white. 8-bit sources map as
``v / 127.5 − 1``, 16-bit sources as ``v / 32767.5 − 1``, scikit-learn's 0..16 digits as
``v / 8 − 1``. No diffusion code rescales data behind the caller's back; to display, map back
with ``(x + 1) / 2`` and clamp. The helpers below keep the value range (resizing clamps to the
input's own range).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ImageDatasetSpec", "ImageSet"]


@dataclass(frozen=True, eq=False)
class ImageSet:
    """An image data set: ``images [N, C, H, W]`` float32 in [−1, 1], ``labels [N]`` int64 or
    ``None``, and the registry ``name``."""

    images: torch.Tensor
    labels: torch.Tensor | None
    name: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be [N, C, H, W], got {tuple(self.images.shape)}")
        if self.labels is not None and self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be [N], got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)


@dataclass(frozen=True)
class ImageDatasetSpec:
    """A named image set: its image shape ``(channels, size, size)`` and a description.

    Each set's spec sits beside its generator (``digits.DIGITS_SPEC``,
    ``synthetic.GRADIENTS_SPEC``, …); :data:`~.registry.IMAGE_DATASETS` collects them.
    """

    name: str
    channels: int
    size: int
    description: str


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize of ``x [N, C, H, W]`` (antialiased when shrinking); range preserved."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    lo, hi = float(x.min()), float(x.max())
    shrink = height < x.shape[-2] or width < x.shape[-1]
    out = F.interpolate(
        x, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink
    )
    return out.clamp(lo, hi)


def _center_crop(x: torch.Tensor) -> torch.Tensor:
    """Centre-crop the last two dims of ``x [..., H, W]`` to a square of side min(H, W)."""
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return x[..., top : top + s, left : left + s]


_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as PIL's "L" conversion


def _to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert ``x [N, C, H, W]`` (C ∈ {1, 3}) to ``channels`` ∈ {1, 3} (luma or replication)."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {c} channels to {channels}")
