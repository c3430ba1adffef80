"""Guidance's fidelity and diversity measures (diffusion_core.evaluation.guidance) against
values known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.data.toy2d import make_2d
from diffusion_core.evaluation.guidance import (
    gaussian_blur,
    mean_pairwise_distance,
    nearest_class_2d,
    spread_ratio,
)


def test_mean_pairwise_distance_of_known_points():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])  # distances 5, 4, 3
    assert mean_pairwise_distance(x) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_distance(x[:1])


def test_spread_is_one_for_the_data_itself_and_scales_with_the_samples():
    real, y = make_2d("gaussians8", 800, seed=0, return_labels=True)
    assert spread_ratio(real, y, real, y) == pytest.approx(1.0)
    # samples shrunk towards each class's mean by ½: every pairwise distance halves
    means = torch.stack([real[y == k].mean(0) for k in range(8)])
    shrunk = means[y] + 0.5 * (real - means[y])
    assert spread_ratio(shrunk, y, real, y) == pytest.approx(0.5, rel=1e-6)
    collapsed = means[y]  # guidance pulled each class to one point
    assert spread_ratio(collapsed, y, real, y) == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(spread_ratio(real[:1], y[:1], real, y))  # nothing to compare


def test_nearest_class_reads_each_class_of_fresh_data():
    for name in ("moons", "gaussians8", "circles"):
        x, y = make_2d(name, 1000, noise=0.0, seed=3, return_labels=True)
        assert (nearest_class_2d(x, name) == y).double().mean() >= 0.99, name


def test_blur_keeps_constants_and_the_mean():
    flat = torch.full((2, 1, 8, 8), 0.3)
    assert torch.allclose(gaussian_blur(flat, 0.5), flat, atol=1e-6)
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0  # an impulse far from the edges: the blur conserves its mass
    out = gaussian_blur(x, 1.0)
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
    assert out[0, 0, 4, 4] < 1.0 and out[0, 0, 4, 5] > 0
