"""Labelled 2D toy sets: ``make_2d(..., return_labels=True)`` and ``ToySpec.classes``."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.data.toy2d import make_2d, to_data_coords
from diffusion_core.data.toy2d_spec import (
    CHECKER_CELLS,
    LABELLED_TOY_DATASETS,
    TOY_DATASETS,
    TOY_SPECS,
)

EXPECTED_CLASSES = {"moons": 2, "circles": 2, "spirals": 2, "gaussians8": 8, "checkerboard": 8}


def test_which_sets_have_classes():
    assert set(LABELLED_TOY_DATASETS) == set(EXPECTED_CLASSES)
    for name in TOY_DATASETS:
        assert TOY_SPECS[name].num_classes == EXPECTED_CLASSES.get(name, 0)
        assert len(set(TOY_SPECS[name].classes)) == TOY_SPECS[name].num_classes


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
@pytest.mark.parametrize(("seed", "noise"), [(0, None), (7, 0.1)])
def test_labelled_draw_has_the_unlabelled_points(name, seed, noise):
    points, labels = make_2d(name, 3000, seed=seed, noise=noise, return_labels=True)
    assert torch.equal(points, make_2d(name, 3000, seed=seed, noise=noise))
    assert labels.dtype == torch.int64 and labels.shape == (3000,)
    k = EXPECTED_CLASSES[name]
    counts = torch.bincount(labels, minlength=k)
    assert len(counts) == k and counts.min() > 0.6 * 3000 / k  # every class, about equally


@pytest.mark.parametrize("name", ["swiss_roll", "s_curve"])
def test_sets_without_classes_refuse_labels(name):
    with pytest.raises(ValueError, match="no classes"):
        make_2d(name, 10, return_labels=True)


def _noise_free(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    points, labels = make_2d(name, 2000, noise=0.0, seed=3, return_labels=True)
    return to_data_coords(points.double(), name), labels


def test_moon_labels():
    p, y = _noise_free("moons")  # 0: upper (cos θ, sin θ); 1: lower (1 − cos θ, ½ − sin θ)
    r_upper = p.norm(dim=1)
    r_lower = (p - torch.tensor([1.0, 0.5], dtype=p.dtype)).norm(dim=1)
    torch.testing.assert_close(r_upper[y == 0], torch.ones_like(r_upper[y == 0]))
    torch.testing.assert_close(r_lower[y == 1], torch.ones_like(r_lower[y == 1]))
    assert (p[y == 0, 1] >= -1e-6).all() and (p[y == 1, 1] <= 0.5 + 1e-6).all()


def test_circle_labels():
    p, y = _noise_free("circles")
    r = p.norm(dim=1)
    torch.testing.assert_close(r[y == 0], torch.ones_like(r[y == 0]))  # outer
    torch.testing.assert_close(r[y == 1], torch.full_like(r[y == 1], 0.5))  # inner


def test_spiral_labels():
    p, y = _noise_free("spirals")  # arm k: θ (cos(θ + kπ), sin(θ + kπ)), r = θ
    r = p.norm(dim=1)
    offset = torch.remainder(torch.atan2(p[:, 1], p[:, 0]) - r, 2 * math.pi)
    want = y.double() * math.pi
    d = torch.remainder(offset - want + math.pi, 2 * math.pi) - math.pi
    assert d.abs().max() < 1e-6


def test_gaussian_labels():
    p, y = _noise_free("gaussians8")  # class k: the centre at angle 45° · k, radius 2
    angle = y.double() * math.pi / 4
    want = 2 * torch.stack([angle.cos(), angle.sin()], dim=1)
    torch.testing.assert_close(p, want)


def test_checkerboard_labels():
    p, y = _noise_free("checkerboard")  # class k: the dark cell CHECKER_CELLS[k] of [−4, 4]²
    cell = torch.floor((p + 4.0) / 2.0).long()
    assert torch.equal(cell, torch.tensor(CHECKER_CELLS)[y])
    assert all((i + j) % 2 == 0 for i, j in CHECKER_CELLS) and len(CHECKER_CELLS) == 8
