"""Data sets for Diffusion Lab, and the value-range contract every model relies on.

The value-range contract
------------------------
* **Images** are float32 tensors ``[N, C, H, W]`` (one image: ``[C, H, W]``) with values in
  [−1, 1]: −1 is black, +1 is white. 8-bit sources map as ``v / 127.5 − 1``, 16-bit sources as
  ``v / 32767.5 − 1``, scikit-learn's 0..16 digits as ``v / 8 − 1``. No diffusion code rescales
  data behind the caller's back; to display, map back with ``(x + 1) / 2`` and clamp.
* **2D points** are float32 tensors ``[N, 2]`` in *model coordinates*: each toy set is moved into
  them by a FIXED affine map per data set, ``model = (original − offset) · scale`` (one isotropic
  ``scale``, so shapes are not distorted). ``offset`` is the centre of the set's nominal
  (noise-free) support and ``scale = 2 / (largest extent of that support)``, so the noise-free set
  spans [−1, 1] along its longer axis. The map does not depend on the drawn points: the same set at
  any ``n`` or ``seed`` lands in the same coordinates (linear scaling into [−1, 1] trained better
  than standardising in the 2D-toy seed document). :func:`toy_scale` gives the map,
  :func:`to_data_coords` / :func:`from_data_coords` apply it. ``noise`` in :func:`make_2d` is the
  standard deviation of isotropic Gaussian jitter **in model coordinates**, so one value means the
  same thing for every set.
- Every set is an i.i.d. sample of its distribution: each point picks its component (moon,
  circle, arm, …) and its position on it at random. scikit-learn's ``make_moons`` and
  ``make_circles`` instead place the points at evenly spaced angles (only the jitter is random),
  so two of their draws are far closer to each other than independent samples can be, and the
  "two fresh draws" floor of :func:`diffusion_core.metrics.sw1_floor` would sit below what even an
  exact sampler of the distribution scores (≈ 2× on average for moons, n = 2000). We therefore
  draw moons and circles ourselves, with the same curves and coordinates.

2D toy sets (``TOY_DATASETS``; original coordinates → model coordinates)
----------------------------------------------------------------------
========== =================================================== ===================== ========
name       original coordinates                                offset                scale
========== =================================================== ===================== ========
moons      make_moons' half circles: x ∈ [−1, 2], y ∈ [−½, 1]   (0.5, 0.25)           2/3
circles    make_circles' circles (factor 0.5): radii 1 and 0.5  (0, 0)                1
swiss_roll ``make_swiss_roll`` columns (x, z), t ∈ [1.5π, 4.5π]  (1.5643, 1.5482)      2/25.178
spirals    two arms r = θ, θ = 3π√u, arm k rotated by kπ         (0, 0)                1/(3π)
s_curve    ``make_s_curve`` columns (x, z): x ∈ [−1,1], z ∈ [−2,2] (0, 0)              1/2
gaussians8 8 Gaussians centred on a ring of radius 2             (0, 0)                1/2
checkerboard 8 filled 2×2 cells of a 4×4 board on [−4, 4]²       (0, 0)                1/4
========== =================================================== ===================== ========

Image sets
----------
``IMAGE_DATASETS`` (for ``--dataset NAME``): ``"digits"`` (scikit-learn digits, 1×16×16),
``"digits8"`` (1×8×8), ``"gradients"`` (3×16×16 two-colour gradients of seed 001) and
``"shapes"`` (3×16×16 anti-aliased two-colour shapes, :func:`make_shapes`). The digits'
train/test split is fixed, seeded and stratified (:func:`digits_split_indices`): the U-Net trains
on ``"train"``; the quality classifier in :mod:`diffusion_core.metrics` is fitted on ``"test"``.
User files are read by :func:`load_image_file`, :func:`load_image_folder`,
:func:`load_npz_images` and :func:`load_idx_images`; nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .configs import TOY_DATASETS, TOY_SPECS, ToySpec

__all__ = [
    "GRADIENT_DIRECTIONS",
    "IMAGE_DATASETS",
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "MAX_POINTS",
    "SHAPE_CLASSES",
    "SHAPE_MIN_CONTRAST",
    "TOY_DATASETS",
    "TOY_SPECS",
    "ImageDatasetSpec",
    "ImageSet",
    "ToySpec",
    "digit_image",
    "digits_split_indices",
    "from_data_coords",
    "gradient_weight_maps",
    "is_image_dataset",
    "load_digits_images",
    "load_idx_images",
    "load_image_dataset",
    "load_image_file",
    "load_image_folder",
    "load_npz_images",
    "make_2d",
    "make_gradients",
    "make_shapes",
    "sample_photos",
    "to_data_coords",
    "toy_scale",
]

MAX_POINTS = 200_000
"""Largest ``n`` accepted by :func:`make_2d`."""

MAX_IMAGE_PIXELS = 40_000_000
"""Default pixel-count limit (width × height) of :func:`load_image_file` (decompression bombs)."""

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
"""File endings :func:`load_image_folder` reads (case-insensitive)."""


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return int(value)


def _check_seed(seed: object) -> int:
    return _check_int("seed", seed, 0, 2**32 - 1)


def _check_choice(name: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


# ---------------------------------------------------------------------------------------------
# 2D toy sets
# ---------------------------------------------------------------------------------------------


def _toy_spec(name: str) -> ToySpec:
    if name not in TOY_SPECS:
        raise ValueError(f"unknown 2D data set {name!r}; valid names: {', '.join(TOY_DATASETS)}")
    return TOY_SPECS[name]


def toy_scale(name: str) -> tuple[tuple[float, float], float]:
    """The fixed affine map of toy set ``name``: ``(offset, scale)``.

    ``model = (original − offset) · scale`` and ``original = model / scale + offset``.
    """
    spec = _toy_spec(name)
    return spec.offset, spec.scale


def to_data_coords(points: torch.Tensor, name: str) -> torch.Tensor:
    """Map model-coordinate points ``[N, 2]`` back into toy set ``name``'s own coordinates.

    Follows the input's device and dtype; returns a new tensor ``[N, 2]``.
    """
    offset, scale = toy_scale(name)
    _check_points(points)
    off = torch.tensor(offset, dtype=points.dtype, device=points.device)
    return points / scale + off


def from_data_coords(points: torch.Tensor, name: str) -> torch.Tensor:
    """Map points ``[N, 2]`` in toy set ``name``'s own coordinates into model coordinates."""
    offset, scale = toy_scale(name)
    _check_points(points)
    off = torch.tensor(offset, dtype=points.dtype, device=points.device)
    return (points - off) * scale


def _check_points(points: torch.Tensor) -> None:
    if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 2:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f"points must be a tensor of shape [N, 2], got {shape}")
    if not points.is_floating_point():
        raise ValueError(f"points must be a floating-point tensor, got {points.dtype}")


def _raw_2d(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Noise-free points ``[n, 2]`` (float64) in the set's original coordinates, i.i.d."""
    if name in ("swiss_roll", "s_curve"):  # random positions along the curve: already i.i.d.
        from sklearn import datasets as skd  # imported here: ~1.5 s, only these two need it

        state = int(rng.integers(0, 2**31 - 1))
        if name == "swiss_roll":
            return skd.make_swiss_roll(n, noise=0.0, random_state=state)[0][:, [0, 2]]
        return skd.make_s_curve(n, noise=0.0, random_state=state)[0][:, [0, 2]]
    if name == "moons":  # make_moons' curves: upper (cos θ, sin θ), lower (1 − cos θ, ½ − sin θ)
        theta = math.pi * rng.random(n)
        upper = rng.random(n) < 0.5
        x = np.where(upper, np.cos(theta), 1.0 - np.cos(theta))
        y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
        return np.stack([x, y], axis=1)
    if name == "circles":  # make_circles(factor=0.5): radius 1 or 0.5, uniform angle
        theta = 2.0 * math.pi * rng.random(n)
        radius = np.where(rng.random(n) < 0.5, 1.0, 0.5)
        return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    if name == "spirals":
        theta = 3.0 * math.pi * np.sqrt(rng.random(n))  # √u: roughly uniform along the arc
        arm = rng.integers(0, 2, n)
        angle = theta + math.pi * arm
        return np.stack([theta * np.cos(angle), theta * np.sin(angle)], axis=1)
    if name == "gaussians8":
        k = rng.integers(0, 8, n)
        angle = k * (math.pi / 4.0)
        return 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    if name == "checkerboard":
        # Cells (i, j), i, j ∈ 0..3 with i + j even: 8 dark cells of side 2 on [−4, 4]².
        cells = np.array([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
        pick = cells[rng.integers(0, len(cells), n)]
        return -4.0 + 2.0 * (pick + rng.random((n, 2)))
    raise AssertionError(name)  # pragma: no cover - names are validated first


def make_2d(name: str, n: int = 2000, *, noise: float | None = None, seed: int = 0) -> torch.Tensor:
    """Draw ``n`` points of 2D toy set ``name`` in model coordinates.

    Args:
        name: one of :data:`TOY_DATASETS`.
        n: number of points, 1..200_000.
        noise: std of isotropic Gaussian jitter in model coordinates (≥ 0); ``None`` uses the
            set's ``default_noise`` (see :data:`TOY_SPECS`). For ``gaussians8`` it is the
            component std.
        seed: 0..2**32−1; the same (name, n, noise, seed) always gives the same points.

    Returns:
        float32 tensor ``[n, 2]`` on CPU; the noise-free set spans [−1, 1] along its longer axis
        (see the module docstring for the fixed per-set map).
    """
    spec = _toy_spec(name)
    n = _check_int("n", n, 1, MAX_POINTS)
    seed = _check_seed(seed)
    if noise is None:
        noise = spec.default_noise
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise):
        raise ValueError(f"noise must be a finite number >= 0 (or None), got {noise!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    raw = _raw_2d(name, n, rng)
    pts = (raw - np.asarray(spec.offset)) * spec.scale
    if noise > 0:
        pts = pts + noise * rng.standard_normal(pts.shape)
    return torch.from_numpy(pts.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# Image containers and resizing helpers
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # ships with scikit-learn; no download

    d = load_digits()
    images = d.images.astype(np.float32)  # [1797, 8, 8], values 0..16
    labels = d.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _check_fraction(test_fraction: float) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise ValueError(f"test_fraction must be a number in [0.05, 0.95], got {test_fraction!r}")
    if not 0.05 <= test_fraction <= 0.95:
        raise ValueError(f"test_fraction must be in [0.05, 0.95], got {test_fraction}")
    return float(test_fraction)


@lru_cache(maxsize=16)
def _split_cached(seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    _, labels = _digits_raw()
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in range(10):  # stratified: the same fraction of every class goes to "test"
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = min(max(1, round(test_fraction * len(idx))), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    tr, te = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    tr.setflags(write=False)
    te.setflags(write=False)
    return tr, te


def digits_split_indices(
    seed: int = 0, test_fraction: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed, seeded, stratified train/test split of scikit-learn's 1797 digits.

    For each class c = 0..9 (in order), its indices are permuted by one
    ``numpy.random.default_rng(seed)`` and the first ``round(test_fraction · n_c)`` go to test.

    Returns:
        ``(train_idx, test_idx)``: sorted, disjoint int64 arrays (read-only) covering 0..1796.
    """
    return _split_cached(_check_seed(seed), _check_fraction(test_fraction))


def load_digits_images(
    size: int = 16,
    split: Literal["train", "test", "all"] = "train",
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
) -> ImageSet:
    """scikit-learn's 8×8 digits as ``ImageSet(images [N, 1, size, size], labels [N], name)``.

    Values 0..16 map to ``v / 8 − 1`` ∈ [−1, 1]. ``size=16`` upsamples ×2 with bilinear
    interpolation (``align_corners=False``), which stays inside [−1, 1]. ``split`` picks the
    :func:`digits_split_indices` half (``"train"`` is the U-Net's, ``"test"`` is held out);
    ``name`` is ``"digits"`` (16) or ``"digits8"`` (8).
    """
    _check_choice("size", size, (8, 16))
    _check_choice("split", split, ("train", "test", "all"))
    images, labels = _digits_raw()
    if split == "all":
        idx = np.arange(len(labels))
    else:
        train, test = digits_split_indices(seed, test_fraction)
        idx = train if split == "train" else test
    x = torch.from_numpy(images[idx] / 8.0 - 1.0).float().unsqueeze(1)
    if size == 16:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    x = x.clamp(-1.0, 1.0)
    y = torch.from_numpy(labels[idx].copy())
    return ImageSet(x, y, "digits" if size == 16 else "digits8")


def digit_image(index: int = 0, size: int = 64) -> torch.Tensor:
    """Digit number ``index`` (0..1796, of all digits) as ``[1, size, size]`` in [−1, 1].

    Upsampled from 8×8 with bilinear interpolation, for display (e.g. the forward-noising tab).
    """
    images, labels = _digits_raw()
    index = _check_int("index", index, 0, len(labels) - 1)
    size = _check_int("size", size, 8, 512)
    x = torch.from_numpy(images[index] / 8.0 - 1.0).float().view(1, 1, 8, 8)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x[0].clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Colour gradients (seed 001)
# ---------------------------------------------------------------------------------------------

GRADIENT_DIRECTIONS: tuple[str, ...] = ("diagonal", "anti_diagonal", "horizontal", "vertical")
"""The weight maps of :func:`gradient_weight_maps`, in order."""


def gradient_weight_maps(height: int, width: int) -> torch.Tensor:
    """The blend weights ``w`` of the gradient model: float32 ``[4, height, width]`` in [0, 1].

    With row ``i`` and column ``j``, ``y = i / (H − 1)`` and ``x = j / (W − 1)``:

    * ``diagonal`` (seed 001's layout): ``w = (W·x + H·y) / (W + H)``: 0 at the top-left corner,
      1 at the bottom-right corner (``(x + y) / 2`` for square images);
    * ``anti_diagonal``: ``w = (W·(1 − x) + H·y) / (W + H)``: top-right → bottom-left;
    * ``horizontal``: ``w = x``; ``vertical``: ``w = y``.

    Opposite directions need no entry of their own: swapping the two colours reverses ``w``.
    """
    height = _check_int("height", height, 2, 4096)
    width = _check_int("width", width, 2, 4096)
    y = torch.linspace(0.0, 1.0, height, dtype=torch.float64).view(-1, 1).expand(height, width)
    x = torch.linspace(0.0, 1.0, width, dtype=torch.float64).view(1, -1).expand(height, width)
    maps = torch.stack(
        [
            (width * x + height * y) / (width + height),
            (width * (1 - x) + height * y) / (width + height),
            x,
            y,
        ]
    )
    return maps.float()


def make_gradients(
    n: int,
    size: int = 16,
    seed: int = 0,
    *,
    directions: Literal["all", "diagonal"] = "all",
) -> torch.Tensor:
    """Random two-colour gradient images (seed 001's toy data): float32 ``[n, 3, size, size]``.

    Exact generative model, per image: two colours ``c0, c1 ~ Uniform([−1, 1]³)``, a direction
    ``d`` uniform over :data:`GRADIENT_DIRECTIONS` (``directions="all"``) or always
    ``"diagonal"`` (seed 001's layout), and ``pixel[:, i, j] = c0 · (1 − w_d[i, j]) + c1 ·
    w_d[i, j]`` with ``w_d`` from :func:`gradient_weight_maps`. Values lie in [−1, 1]. Randomness
    comes from a ``torch.Generator`` seeded with ``seed``.
    ``metrics.gradient_residual`` fits exactly this model.
    """
    n = _check_int("n", n, 1, MAX_POINTS)
    size = _check_int("size", size, 2, 256)
    seed = _check_seed(seed)
    _check_choice("directions", directions, ("all", "diagonal"))
    g = torch.Generator().manual_seed(seed)
    c0 = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
    c1 = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
    if directions == "all":
        d = torch.randint(0, len(GRADIENT_DIRECTIONS), (n,), generator=g)
    else:
        d = torch.zeros(n, dtype=torch.int64)
    w = gradient_weight_maps(size, size)[d].unsqueeze(1)  # [n, 1, H, W]
    return (c0 * (1 - w) + c1 * w).clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Coloured shapes
# ---------------------------------------------------------------------------------------------

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "plus")
"""The classes of :func:`make_shapes`, in label order."""

SHAPE_MIN_CONTRAST = 0.8
"""Smallest L2 distance between the two colours of a :func:`make_shapes` image (in [−1, 1]³)."""

_SHAPE_SUPERSAMPLE = 4


def _shape_masks(labels: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, r: torch.Tensor,
                 size: int) -> torch.Tensor:
    """Anti-aliased coverage masks float32 ``[n, 1, size, size]`` in [0, 1].

    Each pixel is the mean of a 4×4 grid of point tests at the sub-pixel centres (pixel ``(i, j)``
    covers ``[j, j + 1] × [i, i + 1]``; ``x`` is the column coordinate, ``y`` the row one).
    """
    k = _SHAPE_SUPERSAMPLE
    u = (torch.arange(size * k, dtype=torch.float64) + 0.5) / k  # sub-pixel centres
    x = u.view(1, 1, -1)
    y = u.view(1, -1, 1)
    dx = (x - cx.view(-1, 1, 1)).abs()
    dy = y - cy.view(-1, 1, 1)
    rr = r.view(-1, 1, 1)
    circle = dx**2 + dy**2 <= rr**2
    square = (dx <= rr) & (dy.abs() <= rr)
    triangle = (dy <= rr) & (dx <= (dy + rr) / 2)  # apex (cx, cy − r), base y = cy + r, width 2r
    arm = rr / 3
    plus = ((dx <= arm) & (dy.abs() <= rr)) | ((dx <= rr) & (dy.abs() <= arm))
    fine = torch.stack([circle, square, triangle, plus], 1)  # [n, 4, Hk, Wk]
    fine = fine[torch.arange(labels.shape[0]), labels].unsqueeze(1).float()
    return F.avg_pool2d(fine, k)


def make_shapes(n: int, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random filled shapes on a plain background: ``(images, labels)``.

    ``images`` is float32 ``[n, 3, size, size]`` in [−1, 1], ``labels`` int64 ``[n]`` indexing
    :data:`SHAPE_CLASSES` (circle 0, square 1, triangle 2, plus 3).

    Exact generative model, per image (pixel ``(i, j)`` covers ``[j, j + 1] × [i, i + 1]`` in
    continuous coordinates ``(x, y)``, the image spanning ``[0, size]²``):

    * class ``k ~ Uniform{0, 1, 2, 3}``;
    * colours ``fg, bg ~ Uniform([−1, 1]³)``, both redrawn until ``‖fg − bg‖₂ ≥ 0.8``
      (:data:`SHAPE_MIN_CONTRAST`);
    * half-extent ``r ~ Uniform[0.2·size, 0.4·size]``, centre ``cx, cy ~ Uniform[r, size − r]``
      (so every shape lies inside its box ``[cx − r, cx + r] × [cy − r, cy + r]`` inside the
      image);
    * shape, with ``dx = x − cx``, ``dy = y − cy``: circle ``dx² + dy² ≤ r²``; square
      ``|dx|, |dy| ≤ r``; triangle (apex up) ``dy ≤ r`` and ``|dx| ≤ (dy + r) / 2``; plus
      ``(|dx| ≤ r/3 and |dy| ≤ r) or (|dx| ≤ r and |dy| ≤ r/3)``;
    * coverage ``m[i, j]`` = the fraction of a 4×4 grid of sub-pixel centres inside the shape
      (4× supersampling, area-averaged), and ``pixel = bg · (1 − m) + fg · m``.

    Randomness comes from a ``torch.Generator`` seeded with ``seed``, drawn in this order:
    labels, colours (then redraws of the rejected pairs), r, cx, cy.
    ``metrics.shape_quality``'s ``two_colour_residual`` fits the ``bg · (1 − m) + fg · m`` model.
    """
    n = _check_int("n", n, 1, MAX_POINTS)
    size = _check_int("size", size, 8, 256)
    seed = _check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(SHAPE_CLASSES), (n,), generator=g)
    fg = torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1
    bg = torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1
    bad = (fg - bg).norm(dim=1) < SHAPE_MIN_CONTRAST
    while bool(bad.any()):
        m = int(bad.sum())
        fg[bad] = torch.rand(m, 3, generator=g, dtype=torch.float64) * 2 - 1
        bg[bad] = torch.rand(m, 3, generator=g, dtype=torch.float64) * 2 - 1
        bad = (fg - bg).norm(dim=1) < SHAPE_MIN_CONTRAST
    r = (0.2 + 0.2 * torch.rand(n, generator=g, dtype=torch.float64)) * size
    cx = r + (size - 2 * r) * torch.rand(n, generator=g, dtype=torch.float64)
    cy = r + (size - 2 * r) * torch.rand(n, generator=g, dtype=torch.float64)
    masks = torch.cat([_shape_masks(labels[i:i + 1024], cx[i:i + 1024], cy[i:i + 1024],
                                    r[i:i + 1024], size) for i in range(0, n, 1024)])
    fg4 = fg.float().view(n, 3, 1, 1)
    bg4 = bg.float().view(n, 3, 1, 1)
    return (bg4 * (1 - masks) + fg4 * masks).clamp(-1.0, 1.0), labels


# ---------------------------------------------------------------------------------------------
# Photos shipped with scikit-learn
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _photos_raw() -> dict[str, np.ndarray]:
    """The JPEGs behind ``sklearn.datasets.load_sample_images``, read the way it reads them.

    They ship inside scikit-learn (no download). The package is only located, not imported:
    importing scikit-learn costs ~1.5 s, which the forward tab's first view need not pay.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("scikit-learn is not installed; its sample photos are unavailable")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    out = {}
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as img:
            out[path.stem] = np.asarray(img)
    return out


def sample_photos(size: int = 256) -> dict[str, torch.Tensor]:
    """scikit-learn's sample photos (``"china"``, ``"flower"``) as ``[3, size, size]`` in [−1, 1].

    Each photo (427×640) is centre-cropped to a square and resized with PIL (Lanczos).
    """
    size = _check_int("size", size, 4, 1024)
    out = {}
    for name, arr in _photos_raw().items():
        h, w = arr.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = Image.fromarray(arr[top : top + s, left : left + s])
        img = img.resize((size, size), Image.Resampling.LANCZOS)
        t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
        out[name] = t.permute(2, 0, 1).contiguous()
    return out


# ---------------------------------------------------------------------------------------------
# User image files
# ---------------------------------------------------------------------------------------------


def _pil_to_unit(img: Image.Image, notes: list[str]) -> np.ndarray:
    """PIL image → float32 ``[H, W, C]`` (C ∈ {1, 3}) in [0, 1]; alpha composited on white."""
    mode = img.mode
    if mode.startswith("I;16"):
        notes.append("16-bit greyscale scaled by 1/65535")
        return (np.asarray(img).astype(np.float32) / 65535.0)[..., None]
    if mode == "I":
        a = np.asarray(img).astype(np.int64)
        if a.min() >= 0 and a.max() <= 255:
            notes.append("32-bit integer image with values 0..255 scaled by 1/255")
            return (a.astype(np.float32) / 255.0)[..., None]
        if a.min() < 0 or a.max() > 65535:
            notes.append("32-bit integer values outside 0..65535 clipped")
        notes.append("32-bit integer image treated as 16-bit (scaled by 1/65535)")
        return (np.clip(a, 0, 65535).astype(np.float32) / 65535.0)[..., None]
    if mode == "F":
        a = np.asarray(img).astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError("floating-point image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            notes.append(f"floating-point values in [{lo:.3g}, {hi:.3g}] rescaled to [0, 1]")
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        return a[..., None]
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("LA", "La", "PA"):
        img = img.convert("LA")
    elif mode in ("RGBa", "RGBX"):
        img = img.convert("RGBA" if mode == "RGBa" else "RGB")
    elif mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGB")
    a = np.asarray(img).astype(np.float32) / 255.0
    if a.ndim == 2:
        a = a[..., None]
    if img.mode in ("LA", "RGBA"):
        color, alpha = a[..., :-1], a[..., -1:]
        if (alpha < 1.0).any():
            notes.append("transparent pixels composited on white")
        a = color * alpha + (1.0 - alpha)
    return a


def load_image_file(
    source: str | os.PathLike | Image.Image,
    *,
    max_side: int | None = 256,
    mode: Literal["RGB", "L"] = "RGB",
    center_crop: bool = False,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> tuple[torch.Tensor, list[str]]:
    """Read one image (any format PIL reads) as ``([C, H, W] float32 in [−1, 1], notes)``.

    * ``mode="RGB"`` gives C = 3, ``"L"`` gives C = 1 (ITU-R 601-2 luma).
    * Transparency (RGBA, LA, palette with transparency) is composited on white.
    * 16-bit greyscale (``I;16*``) is scaled by 1/65535 before mapping to [−1, 1]; 32-bit
      ``I`` images are read as 8-bit if all values are in 0..255, else as 16-bit (0..65535,
      clipped); float ``F`` images outside [0, 1] are min–max rescaled. Each such step adds a note.
    * EXIF orientation is applied; animated/multi-page files use their first frame (noted).
    * ``center_crop=True`` crops to the central square first. If the longest side exceeds
      ``max_side`` (``None``: no limit) the image is downscaled, aspect kept, with a note.

    Raises:
        FileNotFoundError: ``source`` names no file.
        ValueError: the file is not an image PIL can read, cannot be decoded, or has more than
            ``max_pixels`` pixels (decompression-bomb guard); or a bad argument.
    """
    _check_choice("mode", mode, ("RGB", "L"))
    if max_side is not None:
        max_side = _check_int("max_side", max_side, 1, 65536)
    max_pixels = _check_int("max_pixels", max_pixels, 1, 2**40)
    notes: list[str] = []
    if isinstance(source, Image.Image):
        arr = _read_pil(source, "the image", max_pixels, notes)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is not a file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    arr = _read_pil(img, path.name, max_pixels, notes)
        except UnidentifiedImageError as e:
            raise ValueError(f"{path.name} is not an image PIL can read ({e})") from e
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError(f"{path.name} has too many pixels to load safely ({e})") from e
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    x = _to_channels(x, 3 if mode == "RGB" else 1)
    if center_crop and x.shape[-1] != x.shape[-2]:
        h, w = x.shape[-2:]
        x = _center_crop(x)
        notes.append(f"centre-cropped from {w}×{h} to {x.shape[-1]}×{x.shape[-2]}")
    h, w = x.shape[-2:]
    if max_side is not None and max(h, w) > max_side:
        f = max_side / max(h, w)
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        x = _resize(x, nh, nw)
        notes.append(f"downscaled from {w}×{h} to {nw}×{nh} (longest side ≤ {max_side})")
    return (x[0] * 2.0 - 1.0).clamp(-1.0, 1.0).float().contiguous(), notes


def _read_pil(img: Image.Image, label: str, max_pixels: int, notes: list[str]) -> np.ndarray:
    w, h = img.size
    if w * h > max_pixels:
        raise ValueError(
            f"{label} has {w}×{h} = {w * h} pixels, more than max_pixels = {max_pixels}"
        )
    if w < 1 or h < 1:
        raise ValueError(f"{label} is empty ({w}×{h})")
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        notes.append(f"used the first of {frames} frames")
        img.seek(0)
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
    except (OSError, SyntaxError, ValueError, TypeError) as e:
        raise ValueError(f"{label} could not be decoded as an image ({e})") from e
    return _pil_to_unit(img, notes)


def load_image_folder(
    path: str | os.PathLike,
    size: int,
    channels: int = 3,
    *,
    max_images: int = 10_000,
) -> torch.Tensor:
    """Every image file under folder ``path`` (recursive, sorted by relative path) as
    ``[N, channels, size, size]`` float32 in [−1, 1].

    Files whose ending is in :data:`IMAGE_EXTENSIONS` are read (hidden files skipped), each with
    :func:`load_image_file`, centre-cropped to a square and resized to ``size × size``. A file
    that cannot be read raises ``ValueError`` naming it; so does a folder with no images.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    size = _check_int("size", size, 2, 1024)
    _check_choice("channels", channels, (1, 3))
    max_images = _check_int("max_images", max_images, 1, 10**7)
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise ValueError(f"{folder} holds no image files (endings: {sorted(IMAGE_EXTENSIONS)})")
    if len(files) > max_images:
        raise ValueError(f"{folder} holds {len(files)} images, more than max_images={max_images}")
    out = []
    for f in files:
        x, _ = load_image_file(f, max_side=None, mode="RGB" if channels == 3 else "L",
                               center_crop=True)
        out.append(_resize(x.unsqueeze(0), size, size))
    return torch.cat(out).contiguous()


def _array_to_unit(a: np.ndarray, label: str) -> np.ndarray:
    """Numeric array → float32 in [−1, 1], detecting its value range (see load_npz_images)."""
    if a.dtype == np.bool_:
        return a.astype(np.float32) * 2 - 1
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if a.dtype == np.uint8 or (lo >= 0 and hi <= 255):
            return a.astype(np.float32) / 127.5 - 1
        if lo >= 0 and hi <= 65535:
            return a.astype(np.float32) / 32767.5 - 1
        raise ValueError(f"{label}: integer values in {lo}..{hi}; expected 0..255 or 0..65535")
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError(f"{label}: contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            return a * 2 - 1
        if lo >= -1.0 and hi <= 1.0:
            return a
        raise ValueError(
            f"{label}: float values in [{lo:.3g}, {hi:.3g}]; expected [0, 1] or [-1, 1]"
        )
    raise ValueError(f"{label}: unsupported dtype {a.dtype}")


def _finish_images(
    x: torch.Tensor, size: int | None, channels: int | None
) -> torch.Tensor:
    """``x [N, C, H, W]`` in [−1, 1] (C ∈ {1, 3}) → requested channels and square size."""
    if channels is not None:
        x = _to_channels(x, channels)
    if size is not None:
        if x.shape[-1] != x.shape[-2]:
            x = _center_crop(x)
        x = _resize(x, size, size)
    return x.clamp(-1.0, 1.0).float().contiguous()


def load_npz_images(
    path: str | os.PathLike,
    size: int | None = None,
    channels: int | None = None,
    *,
    key: str | None = None,
) -> torch.Tensor:
    """Images from a ``.npz`` (or ``.npy``) file as ``[N, C, H, W]`` float32 in [−1, 1].

    The array is ``key``, else ``"images"``, else the file's first array
    (``allow_pickle=False``). Layouts: ``[N, H, W]`` (grey), ``[N, C, H, W]`` when
    ``shape[1] ∈ {1, 3, 4}`` and ``shape[-1] ∉ {1, 3, 4}``, otherwise ``[N, H, W, C]`` with
    ``C ∈ {1, 3, 4}``; 4 channels are RGBA, composited on white.

    Value range is detected: ``uint8`` (or integers within 0..255) → ``v / 127.5 − 1``; other
    integers within 0..65535 → ``v / 32767.5 − 1``; bool → {−1, 1}; floats all in [0, 1] →
    ``2v − 1``; floats in [−1, 1] with a negative value → unchanged; anything else raises
    ``ValueError``. (A [−1, 1] float set with no negative value would be read as [0, 1].)

    ``channels`` ∈ {1, 3} converts (luma / replication), ``None`` keeps 1 or 3; ``size`` centre-
    crops to a square and resizes, ``None`` keeps the size.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} is not a file")
    if size is not None:
        size = _check_int("size", size, 2, 1024)
    if channels is not None:
        _check_choice("channels", channels, (1, 3))
    try:
        loaded = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{p.name} is not a readable .npz/.npy file ({e})") from e
    if isinstance(loaded, np.ndarray):
        a = loaded
    else:
        with loaded:
            names = list(loaded.files)
            if not names:
                raise ValueError(f"{p.name} holds no arrays")
            if key is not None and key not in names:
                raise ValueError(f"key {key!r} not in {p.name}; arrays: {names}")
            name = key if key is not None else ("images" if "images" in names else names[0])
            try:
                a = loaded[name]
            except ValueError as e:  # object arrays need pickle, which we refuse
                raise ValueError(f"{p.name}[{name!r}] cannot be read without pickle") from e
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4:
        small = (1, 3, 4)
        if not (a.shape[1] in small and a.shape[-1] not in small):
            if a.shape[-1] not in small:
                raise ValueError(f"{p.name}: cannot find a channel axis in shape {a.shape}")
            a = np.moveaxis(a, -1, 1)
    else:
        raise ValueError(f"{p.name}: images must be [N, H, W] or 4-D, got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[2] < 1 or a.shape[3] < 1:
        raise ValueError(f"{p.name}: empty image array {a.shape}")
    x = torch.from_numpy(np.ascontiguousarray(_array_to_unit(a, p.name)))
    if x.shape[1] == 4:
        alpha = (x[:, 3:] + 1) / 2
        x = x[:, :3] * alpha + (1 - alpha)
    return _finish_images(x, size, channels)


def load_idx_images(
    path: str | os.PathLike,
    size: int | None = None,
    *,
    max_images: int | None = None,
) -> torch.Tensor:
    """An MNIST / Fashion-MNIST IDX image file (optionally ``.gz``) as ``[N, 1, H, W]`` in [−1, 1].

    Format: big-endian int32 magic 2051 (``0x00000803``: unsigned bytes, 3 dimensions), then
    N, rows, cols as big-endian int32, then N·rows·cols uint8 pixels (``v / 127.5 − 1``).
    Gzip is detected from its magic bytes. ``size`` resizes (bilinear); ``max_images`` keeps the
    first images only.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} is not a file")
    if size is not None:
        size = _check_int("size", size, 2, 1024)
    if max_images is not None:
        max_images = _check_int("max_images", max_images, 1, 10**7)
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{p.name} is not a valid gzip file ({e})") from e
    if len(raw) < 16:
        raise ValueError(f"{p.name} is too short to be an IDX image file")
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
    if magic != 2051:
        raise ValueError(f"{p.name}: IDX magic {magic}, expected 2051 (uint8 images, 3 dims)")
    if n < 1 or rows < 1 or cols < 1:
        raise ValueError(f"{p.name}: bad IDX dimensions {n}×{rows}×{cols}")
    need = 16 + int(n) * int(rows) * int(cols)
    if len(raw) < need:
        raise ValueError(f"{p.name}: truncated ({len(raw)} bytes, need {need})")
    count = int(n) if max_images is None else min(int(n), max_images)
    pix = np.frombuffer(raw, dtype=np.uint8, count=count * int(rows) * int(cols), offset=16)
    x = torch.from_numpy(pix.reshape(count, 1, int(rows), int(cols)).astype(np.float32))
    x = x / 127.5 - 1.0
    if size is not None:
        x = _resize(x, size, size)
    return x.clamp(-1.0, 1.0).contiguous()


# ---------------------------------------------------------------------------------------------
# Registry (for `--dataset NAME`)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageDatasetSpec:
    """A named image set: its image shape ``(channels, size, size)`` and a description."""

    name: str
    channels: int
    size: int
    description: str


IMAGE_DATASETS: dict[str, ImageDatasetSpec] = {
    s.name: s
    for s in (
        ImageDatasetSpec("digits", 1, 16,
                         "scikit-learn digits, train split, upsampled 8→16 (bilinear)"),
        ImageDatasetSpec("digits8", 1, 8, "scikit-learn digits, train split, native 8×8"),
        ImageDatasetSpec("gradients", 3, 16, "random two-colour gradients (seed 001)"),
        ImageDatasetSpec("shapes", 3, 16,
                         "random anti-aliased circles, squares, triangles, pluses (2 colours)"),
    )
}


def is_image_dataset(name: str) -> bool:
    """Whether ``name`` is in :data:`IMAGE_DATASETS`."""
    return name in IMAGE_DATASETS


def load_image_dataset(name: str, **kw: object) -> ImageSet:
    """Load registry set ``name`` as an :class:`ImageSet`.

    Keywords: ``digits`` / ``digits8`` take ``split`` (default ``"train"``), ``seed``,
    ``test_fraction`` (see :func:`load_digits_images`); ``gradients`` takes ``n`` (default
    2000), ``seed``, ``directions`` (see :func:`make_gradients`; labels are ``None``);
    ``shapes`` takes ``n`` (default 2000) and ``seed`` (see :func:`make_shapes`; labels are the
    shape classes).
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image data set {name!r}; valid names: "
                         f"{', '.join(IMAGE_DATASETS)}")
    loaders: dict[str, Callable[..., ImageSet]] = {
        "digits": lambda **k: load_digits_images(16, **k),
        "digits8": lambda **k: load_digits_images(8, **k),
        "gradients": lambda n=2000, **k: ImageSet(make_gradients(n, 16, **k), None, "gradients"),
        "shapes": lambda n=2000, **k: ImageSet(*make_shapes(n, 16, **k), "shapes"),
    }
    return loaders[name](**kw)
