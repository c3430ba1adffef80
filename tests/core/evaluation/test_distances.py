"""Tests for diffusion_core.evaluation.distances: SW1 and its floor, nearest-neighbour ratio,
Fréchet distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion_core.data.toy2d import make_2d
from diffusion_core.evaluation.distances import (
    frechet_distance,
    mean_nn_distance,
    nearest_neighbour_ratio,
    sliced_wasserstein,
    sw1_floor,
)


def test_sw1_identical_clouds_is_zero() -> None:
    x = make_2d("moons", 1000, seed=0)
    assert sliced_wasserstein(x, x) < 1e-12
    # Order does not matter.
    assert sliced_wasserstein(x, x[torch.randperm(1000)]) < 1e-12


def test_sw1_of_a_shift_matches_the_analytic_value() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 2, generator=g)
    v = torch.tensor([0.3, -0.4])  # |v| = 0.5
    sw = sliced_wasserstein(x, x + v, n_projections=8000, seed=1)
    assert sw == pytest.approx(0.5 * 2 / math.pi, rel=0.02)  # |v|·E|cos θ| in 2D
    # In 1-D every projection sees the whole shift.
    y = torch.randn(300, 1, generator=g)
    assert sliced_wasserstein(y, y - 0.7, n_projections=4) == pytest.approx(0.7)


def test_sw1_unequal_sizes_is_exact() -> None:
    # F⁻¹ of {0, 1} and of {0, 0.5, 1} differ by 0.5 on u ∈ (1/3, 2/3): W1 = 1/6.
    a = torch.tensor([[0.0], [1.0]])
    b = torch.tensor([[0.0], [0.5], [1.0]])
    assert sliced_wasserstein(a, b, n_projections=3) == pytest.approx(1 / 6)
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    u, w = rng.normal(size=137), rng.exponential(size=59)
    expected = stats.wasserstein_distance(u, w)
    got = sliced_wasserstein(u[:, None], w[:, None], n_projections=2)
    assert got == pytest.approx(expected, rel=1e-9)


def test_sw1_is_symmetric_and_validates() -> None:
    x = make_2d("spirals", 700, seed=0)
    y = make_2d("circles", 500, seed=0)
    assert sliced_wasserstein(x, y) == pytest.approx(sliced_wasserstein(y, x))
    with pytest.raises(ValueError, match="dimension"):
        sliced_wasserstein(x, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(x, y, n_projections=0)


def test_sw1_floor_is_below_a_shifted_set() -> None:
    floor = sw1_floor("moons", 2000, seed=0)
    assert 0 < floor < 0.03
    shifted = make_2d("moons", 2000, seed=7) + torch.tensor([0.2, 0.0])
    assert sliced_wasserstein(make_2d("moons", 2000, seed=8), shifted) > 3 * floor
    # A callable works too.
    assert sw1_floor(lambda n, s: make_2d("moons", n, seed=s), 2000) == floor


def test_nearest_neighbour_ratio() -> None:
    base = make_2d("moons", 2000, seed=0)
    ref = make_2d("moons", 1000, seed=1)
    fresh = make_2d("moons", 1000, seed=2)
    assert 0.8 < nearest_neighbour_ratio(fresh, base, ref) < 1.25
    noise = torch.rand(1000, 2, generator=torch.Generator().manual_seed(0)) * 3 - 1.5
    assert nearest_neighbour_ratio(noise, base, ref) > 3
    # Chunking does not change the answer.
    assert mean_nn_distance(noise, base, chunk_size=7) == pytest.approx(
        mean_nn_distance(noise, base))
    with pytest.raises(ValueError, match="fresh draw"):
        nearest_neighbour_ratio(fresh, base, base)


def test_frechet_distance_known_values() -> None:
    # 1-D: (μ1 − μ2)² + (σ1 − σ2)² = 1 + 1 for N(0, 1) vs N(1, 4).
    assert frechet_distance(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1)) == (
        pytest.approx(2.0))
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    assert frechet_distance(np.ones(5), cov, np.ones(5), cov) == pytest.approx(0, abs=1e-8)
    # Commuting (diagonal) covariances: Σ (√s1 − √s2)².
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    d = frechet_distance(np.zeros(3), np.diag(s1), np.zeros(3), np.diag(s2))
    assert d == pytest.approx(float(((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()))
    # Not symmetric in the formula's appearance, but symmetric in value.
    b = rng.normal(size=(5, 5))
    cov2 = b @ b.T
    assert frechet_distance(np.zeros(5), cov, np.ones(5), cov2) == pytest.approx(
        frechet_distance(np.ones(5), cov2, np.zeros(5), cov))
