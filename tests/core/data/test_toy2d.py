"""Tests for diffusion_core.data.toy2d: drawing the 2D toy sets and their fixed maps."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion_core.data.toy2d import (
    MAX_POINTS,
    from_data_coords,
    make_2d,
    to_data_coords,
    toy_scale,
)
from diffusion_core.data.toy2d_spec import TOY_DATASETS

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_make_2d_shape_determinism_and_extent(name: str) -> None:
    x = make_2d(name, 1500, seed=3)
    assert x.shape == (1500, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, make_2d(name, 1500, seed=3))
    assert not torch.allclose(x, make_2d(name, 1500, seed=4))
    assert x.abs().max() <= 1.5


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_noise_free_set_spans_unit_box_along_its_longer_axis(name: str) -> None:
    # The fixed map puts the nominal support into [-1, 1] along the longer axis, centred.
    x = make_2d(name, 20_000, noise=0.0, seed=1)
    lo, hi = x.min(dim=0).values, x.max(dim=0).values
    assert x.abs().max() <= 1.0 + 1e-5
    assert 1.9 <= float((hi - lo).max()) <= 2.0 + 1e-5
    assert float((hi + lo).abs().max()) < 0.1  # centred
    # The map does not depend on the draw: a small draw sits inside the same box.
    assert make_2d(name, 7, noise=0.0, seed=9).abs().max() <= 1.0 + 1e-5


@pytest.mark.parametrize("name", TOY_DATASETS)
def test_data_coords_round_trip(name: str) -> None:
    x = make_2d(name, 500, seed=0)
    back = from_data_coords(to_data_coords(x, name), name)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-5)
    offset, scale = toy_scale(name)
    torch.testing.assert_close(to_data_coords(x, name),
                               x / scale + torch.tensor(offset, dtype=torch.float32))


def test_original_coordinates_match_the_generators() -> None:
    moons = to_data_coords(make_2d("moons", 5000, noise=0.0), "moons")
    torch.testing.assert_close(moons.min(0).values, torch.tensor([-1.0, -0.5]), atol=1e-3, rtol=0)
    torch.testing.assert_close(moons.max(0).values, torch.tensor([2.0, 1.0]), atol=1e-3, rtol=0)
    # Swiss roll columns (x, z) = t·(cos t, sin t): the radius is t ∈ [1.5π, 4.5π].
    roll = to_data_coords(make_2d("swiss_roll", 5000, noise=0.0), "swiss_roll")
    r = roll.norm(dim=1)
    assert r.min() >= 1.5 * math.pi - 1e-3 and r.max() <= 4.5 * math.pi + 1e-3
    ring = to_data_coords(make_2d("gaussians8", 200, noise=0.0), "gaussians8")
    torch.testing.assert_close(ring.norm(dim=1), torch.full((200,), 2.0))
    assert len(torch.unique(ring.round(decimals=4), dim=0)) == 8
    board = to_data_coords(make_2d("checkerboard", 2000), "checkerboard")
    cells = torch.floor((board + 4) / 2).long()
    assert board.abs().max() <= 4.0 + 1e-5 and ((cells.sum(1) % 2) == 0).all()


def test_noise_is_in_model_coordinates() -> None:
    clean = make_2d("gaussians8", 20_000, noise=0.0, seed=2)
    noisy = make_2d("gaussians8", 20_000, noise=0.1, seed=2)
    # Same centres (same draw), jitter std 0.1 per axis.
    assert abs(float((noisy - clean).std()) - 0.1) < 0.005


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_moons_and_circles_are_iid_samples_not_a_fixed_grid(name: str) -> None:
    # scikit-learn's make_moons / make_circles put points at evenly spaced angles, so two
    # noise-free draws of the same size are the same point set; ours must differ, and each
    # component must get a random (not exactly equal) share of the points.
    a = make_2d(name, 2000, noise=0.0, seed=1)
    b = make_2d(name, 2000, noise=0.0, seed=2)
    assert not torch.allclose(a.sort(dim=0).values, b.sort(dim=0).values, atol=1e-3)
    raw = to_data_coords(make_2d(name, 4000, noise=0.0, seed=3), name).double()
    if name == "moons":
        first = ((raw[:, 0] ** 2 + raw[:, 1] ** 2 - 1).abs() < 1e-4) & (raw[:, 1] >= -1e-6)
    else:
        first = (raw.norm(dim=1) - 1).abs() < 1e-4
    share = first.float().mean().item()
    assert share != 0.5 and abs(share - 0.5) < 0.05, share  # Binomial(4000, ½): sd 0.008


def test_make_2d_validation() -> None:
    with pytest.raises(ValueError, match="moons"):  # lists the valid names
        make_2d("nope")
    for n in (0, -5, 200_001, 2.5, True):
        with pytest.raises(ValueError, match="n must"):
            make_2d("moons", n)
    for noise in (-0.1, math.nan, math.inf, "0.1"):
        with pytest.raises(ValueError, match="noise"):
            make_2d("moons", 10, noise=noise)
    with pytest.raises(ValueError, match="seed"):
        make_2d("moons", 10, seed=-1)
    assert make_2d("circles", 1).shape == (1, 2)
    assert make_2d("moons", MAX_POINTS, seed=0).shape == (MAX_POINTS, 2)
    with pytest.raises(ValueError, match="points"):
        to_data_coords(torch.zeros(3, 3), "moons")


@pytest.mark.parametrize("name", ["swiss_roll", "s_curve"])
@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_curves_are_scikit_learns_points(name: str, seed: int) -> None:
    """The swiss roll and the S are written out; they are bit for bit scikit-learn's draws
    (its columns x and z) from the same random state."""
    from sklearn import datasets

    from diffusion_core.data.toy2d import _raw_2d

    ours, labels = _raw_2d(name, 1000, np.random.default_rng(seed))
    state = int(np.random.default_rng(seed).integers(0, 2**31 - 1))
    make = datasets.make_swiss_roll if name == "swiss_roll" else datasets.make_s_curve
    theirs = make(1000, noise=0.0, random_state=state)[0][:, [0, 2]]
    assert labels is None and ours.dtype == np.float64
    np.testing.assert_array_equal(ours, theirs)


def test_drawing_data_imports_no_scikit_learn() -> None:
    """A worker process that draws any toy set or the digits stays lean: scikit-learn cost
    ≈ 110 MB and 1.4 s per process that imported it."""
    code = ("import sys\nfrom diffusion_core.data import make_2d\n"
            "from diffusion_core.data.digits import load_digits_images\n"
            "from diffusion_core.data.toy2d_spec import TOY_DATASETS\n"
            "for name in TOY_DATASETS:\n    make_2d(name, 100, seed=1)\n"
            "load_digits_images(16, 'train')\n"
            "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "[]"
