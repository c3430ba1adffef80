"""2D toy sets as float32 points ``[N, 2]`` in model coordinates.

* Each set is moved into model coordinates by its FIXED affine map ``model = (original −
  offset) · scale`` (:mod:`.toy2d_spec` lists them): the noise-free set spans [−1, 1] along its
  longer axis, and the map does not depend on the drawn points, so the same set at any ``n`` or
  ``seed`` lands in the same coordinates (linear scaling into [−1, 1] trained better than
  standardising in the 2D toy DDPM tutorial). :func:`toy_scale` gives the map,
  :func:`to_data_coords` / :func:`from_data_coords` apply it.
* ``noise`` in :func:`make_2d` is the standard deviation of isotropic Gaussian jitter **in model
  coordinates**, so one value means the same thing for every set.
* Every set is an i.i.d. sample of its distribution: each point picks its component (moon,
  circle, arm, …) and its position on it at random. scikit-learn's ``make_moons`` and
  ``make_circles`` instead place the points at evenly spaced angles (only the jitter is random),
  so two of their draws are far closer to each other than independent samples can be, and the
  "two fresh draws" floor of :func:`diffusion_core.evaluation.distances.sw1_floor` would sit
  below what even an exact sampler of the distribution scores (≈ 2× on average for moons,
  n = 2000). We therefore draw moons and circles ourselves, with the same curves and
  coordinates.
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np
import torch

from ._checks import check_int, check_seed
from .toy2d_spec import CHECKER_CELLS, TOY_DATASETS, TOY_SPECS, ToySpec

__all__ = ["MAX_POINTS", "from_data_coords", "make_2d", "to_data_coords", "toy_scale"]

MAX_POINTS = 200_000
"""Largest ``n`` accepted by :func:`make_2d`."""


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


def _raw_2d(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Noise-free points ``[n, 2]`` (float64) in the set's original coordinates, i.i.d., and
    each point's class ``[n]`` (int64; the component it was drawn from), or ``None`` for a set
    without classes. The labels cost no extra random draws."""
    if name in ("swiss_roll", "s_curve"):  # random positions along the curve: already i.i.d.
        # scikit-learn's make_swiss_roll / make_s_curve (noise 0, columns x and z), written out
        # with the same draws from the same generator, so the points are bit for bit theirs
        # (tests/core/data/test_toy2d.py checks it). Importing scikit-learn instead cost each
        # process that drew them ≈ 110 MB and 1.4 s: every worker that ran a job on these sets
        # kept that for its life (the soak's workers grew by it).
        draws = np.random.RandomState(int(rng.integers(0, 2**31 - 1)))
        if name == "swiss_roll":  # t ~ U[1.5π, 4.5π]: (t cos t, t sin t)
            t = 1.5 * np.pi * (1 + 2 * draws.uniform(size=n))
            return np.stack([t * np.cos(t), t * np.sin(t)], axis=1), None
        t = 3 * np.pi * (draws.uniform(size=n) - 0.5)  # t ~ U[−1.5π, 1.5π]: an S
        return np.stack([np.sin(t), np.sign(t) * (np.cos(t) - 1)], axis=1), None
    if name == "moons":  # make_moons' curves: upper (cos θ, sin θ), lower (1 − cos θ, ½ − sin θ)
        theta = math.pi * rng.random(n)
        upper = rng.random(n) < 0.5
        x = np.where(upper, np.cos(theta), 1.0 - np.cos(theta))
        y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
        return np.stack([x, y], axis=1), (~upper).astype(np.int64)  # 0 upper, 1 lower
    if name == "circles":  # make_circles(factor=0.5): radius 1 or 0.5, uniform angle
        theta = 2.0 * math.pi * rng.random(n)
        inner = rng.random(n) >= 0.5
        radius = np.where(inner, 0.5, 1.0)
        return (np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1),
                inner.astype(np.int64))  # 0 outer, 1 inner
    if name == "spirals":
        theta = 3.0 * math.pi * np.sqrt(rng.random(n))  # √u: roughly uniform along the arc
        arm = rng.integers(0, 2, n)
        angle = theta + math.pi * arm
        return np.stack([theta * np.cos(angle), theta * np.sin(angle)], axis=1), arm
    if name == "gaussians8":
        k = rng.integers(0, 8, n)
        angle = k * (math.pi / 4.0)
        return 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1), k
    if name == "checkerboard":
        # Cells (i, j), i, j ∈ 0..3 with i + j even: 8 dark cells of side 2 on [−4, 4]².
        cells = np.array(CHECKER_CELLS)
        k = rng.integers(0, len(cells), n)
        return -4.0 + 2.0 * (cells[k] + rng.random((n, 2))), k
    raise AssertionError(name)  # pragma: no cover - names are validated first


@overload
def make_2d(name: str, n: int = ..., *, noise: float | None = ..., seed: int = ...,
            return_labels: Literal[False] = ...) -> torch.Tensor: ...
@overload
def make_2d(name: str, n: int = ..., *, noise: float | None = ..., seed: int = ...,
            return_labels: Literal[True]) -> tuple[torch.Tensor, torch.Tensor]: ...


def make_2d(name: str, n: int = 2000, *, noise: float | None = None, seed: int = 0,
            return_labels: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` points of 2D toy set ``name`` in model coordinates.

    Args:
        name: one of :data:`~.toy2d_spec.TOY_DATASETS`.
        n: number of points, 1..200_000.
        noise: std of isotropic Gaussian jitter in model coordinates (≥ 0); ``None`` uses the
            set's ``default_noise`` (see :data:`~.toy2d_spec.TOY_SPECS`). For ``gaussians8`` it
            is the component std.
        seed: 0..2**32−1; the same (name, n, noise, seed) always gives the same points.
        return_labels: also return each point's class (the component it was drawn from; see
            ``TOY_SPECS[name].classes`` and the table in :mod:`.toy2d_spec`). The points are the
            same as without it. Sets without classes (swiss_roll, s_curve) raise ``ValueError``.

    Returns:
        float32 tensor ``[n, 2]`` on CPU; the noise-free set spans [−1, 1] along its longer axis
        (see the module docstring for the fixed per-set map). With ``return_labels``:
        ``(points [n, 2], labels [n] int64 in 0..K−1)``.
    """
    spec = _toy_spec(name)
    n = check_int("n", n, 1, MAX_POINTS)
    seed = check_seed(seed)
    if noise is None:
        noise = spec.default_noise
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise):
        raise ValueError(f"noise must be a finite number >= 0 (or None), got {noise!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if return_labels and not spec.classes:
        labelled = ", ".join(k for k, v in TOY_SPECS.items() if v.classes)
        raise ValueError(f"2D data set {name!r} has no classes; sets with classes: {labelled}")
    rng = np.random.default_rng(seed)
    raw, labels = _raw_2d(name, n, rng)
    pts = (raw - np.asarray(spec.offset)) * spec.scale
    if noise > 0:
        pts = pts + noise * rng.standard_normal(pts.shape)
    points = torch.from_numpy(pts.astype(np.float32))
    if not return_labels:
        return points
    assert labels is not None
    return points, torch.from_numpy(labels.astype(np.int64))
