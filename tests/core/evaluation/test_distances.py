"""Tests for diffusion_core.metrics: SW1, nearest-neighbour ratio, digit quality, gradients,
shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffusion_core import data, metrics

# ---------------------------------------------------------------------------------------------
# Sliced Wasserstein
# ---------------------------------------------------------------------------------------------


def test_sw1_identical_clouds_is_zero() -> None:
    x = data.make_2d("moons", 1000, seed=0)
    assert metrics.sliced_wasserstein(x, x) < 1e-12
    # Order does not matter.
    assert metrics.sliced_wasserstein(x, x[torch.randperm(1000)]) < 1e-12


def test_sw1_of_a_shift_matches_the_analytic_value() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 2, generator=g)
    v = torch.tensor([0.3, -0.4])  # |v| = 0.5
    sw = metrics.sliced_wasserstein(x, x + v, n_projections=8000, seed=1)
    assert sw == pytest.approx(0.5 * 2 / math.pi, rel=0.02)  # |v|·E|cos θ| in 2D
    # In 1-D every projection sees the whole shift.
    y = torch.randn(300, 1, generator=g)
    assert metrics.sliced_wasserstein(y, y - 0.7, n_projections=4) == pytest.approx(0.7)


def test_sw1_unequal_sizes_is_exact() -> None:
    # F⁻¹ of {0, 1} and of {0, 0.5, 1} differ by 0.5 on u ∈ (1/3, 2/3): W1 = 1/6.
    a = torch.tensor([[0.0], [1.0]])
    b = torch.tensor([[0.0], [0.5], [1.0]])
    assert metrics.sliced_wasserstein(a, b, n_projections=3) == pytest.approx(1 / 6)
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    u, w = rng.normal(size=137), rng.exponential(size=59)
    expected = stats.wasserstein_distance(u, w)
    got = metrics.sliced_wasserstein(u[:, None], w[:, None], n_projections=2)
    assert got == pytest.approx(expected, rel=1e-9)


def test_sw1_is_symmetric_and_validates() -> None:
    x = data.make_2d("spirals", 700, seed=0)
    y = data.make_2d("circles", 500, seed=0)
    assert metrics.sliced_wasserstein(x, y) == pytest.approx(metrics.sliced_wasserstein(y, x))
    with pytest.raises(ValueError, match="dimension"):
        metrics.sliced_wasserstein(x, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="n_projections"):
        metrics.sliced_wasserstein(x, y, n_projections=0)


def test_sw1_floor_is_below_a_shifted_set() -> None:
    floor = metrics.sw1_floor("moons", 2000, seed=0)
    assert 0 < floor < 0.03
    shifted = data.make_2d("moons", 2000, seed=7) + torch.tensor([0.2, 0.0])
    assert metrics.sliced_wasserstein(data.make_2d("moons", 2000, seed=8), shifted) > 3 * floor
    # A callable works too.
    assert metrics.sw1_floor(lambda n, s: data.make_2d("moons", n, seed=s), 2000) == floor


# ---------------------------------------------------------------------------------------------
# Nearest-neighbour ratio
# ---------------------------------------------------------------------------------------------


def test_nearest_neighbour_ratio() -> None:
    base = data.make_2d("moons", 2000, seed=0)
    ref = data.make_2d("moons", 1000, seed=1)
    fresh = data.make_2d("moons", 1000, seed=2)
    assert 0.8 < metrics.nearest_neighbour_ratio(fresh, base, ref) < 1.25
    noise = torch.rand(1000, 2, generator=torch.Generator().manual_seed(0)) * 3 - 1.5
    assert metrics.nearest_neighbour_ratio(noise, base, ref) > 3
    # Chunking does not change the answer.
    assert metrics.mean_nn_distance(noise, base, chunk_size=7) == pytest.approx(
        metrics.mean_nn_distance(noise, base))
    with pytest.raises(ValueError, match="fresh draw"):
        metrics.nearest_neighbour_ratio(fresh, base, base)


# ---------------------------------------------------------------------------------------------
# Fréchet distance
# ---------------------------------------------------------------------------------------------


def test_frechet_distance_known_values() -> None:
    # 1-D: (μ1 − μ2)² + (σ1 − σ2)² = 1 + 1 for N(0, 1) vs N(1, 4).
    assert metrics.frechet_distance(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1)) == (
        pytest.approx(2.0))
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    assert metrics.frechet_distance(np.ones(5), cov, np.ones(5), cov) == pytest.approx(0, abs=1e-8)
    # Commuting (diagonal) covariances: Σ (√s1 − √s2)².
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    d = metrics.frechet_distance(np.zeros(3), np.diag(s1), np.zeros(3), np.diag(s2))
    assert d == pytest.approx(float(((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()))
    # Not symmetric in the formula's appearance, but symmetric in value.
    b = rng.normal(size=(5, 5))
    cov2 = b @ b.T
    assert metrics.frechet_distance(np.zeros(5), cov, np.ones(5), cov2) == pytest.approx(
        metrics.frechet_distance(np.ones(5), cov2, np.zeros(5), cov))


# ---------------------------------------------------------------------------------------------
# Digit quality
# ---------------------------------------------------------------------------------------------


def _blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    r = 2
    k = torch.tensor([math.exp(-(i * i) / (2 * sigma**2)) for i in range(-r, r + 1)])
    k = (k[:, None] * k[None, :]) / k.sum() ** 2
    return F.conv2d(F.pad(x, (r, r, r, r), mode="replicate"), k[None, None])


def test_digit_classifier_is_fitted_on_the_held_out_split_only() -> None:
    clf = metrics.default_digit_classifier()
    assert clf.holdout_accuracy > 0.9  # measured on the U-Net's split, never seen in fitting
    _, test_idx = data.digits_split_indices()
    assert clf.model.n_features_in_ == 64
    assert clf.model.t_ == len(test_idx) * clf.model.n_iter_  # samples seen per epoch


@pytest.mark.parametrize("size", [8, 16])
def test_digit_quality_ranks_calibration_references(size: int) -> None:
    real = data.load_digits_images(size, "train").images[:450]
    noise = torch.rand(450, 1, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    q_real = metrics.digit_quality(real)
    q_blur = metrics.digit_quality(_blur(real, 1.0))
    q_noise = metrics.digit_quality(noise)
    assert q_real["frechet_distance"] < q_blur["frechet_distance"] < q_noise["frechet_distance"]
    assert q_real["frechet_distance"] < 3 * q_real["frechet_floor"] + 0.5
    assert q_real["confidence"] > 0.85 > q_noise["confidence"]
    assert q_real["class_entropy"] > 2.2  # ≈ ln 10 = 2.303 for balanced classes
    assert sum(q_real["class_counts"]) == 450 == q_real["n_samples"]
    # Training images are their own nearest training image.
    assert q_real["near_copy_fraction"] > 0.99
    assert q_noise["near_copy_fraction"] == 0.0


def test_digit_quality_entropy_and_near_copies() -> None:
    train = data.load_digits_images(16, "train")
    zeros = train.images[train.labels == 0]
    assert metrics.digit_quality(zeros)["class_entropy"] < 0.2
    held_out = metrics.digit_quality(data.load_digits_images(16, "test").images)
    assert held_out["near_copy_fraction"] < 0.05  # unseen real digits are not copies
    with pytest.raises(ValueError, match="samples"):
        metrics.digit_quality(torch.zeros(4, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.digit_quality(torch.zeros(1, 1, 16, 16))


def test_digits_to_8x8() -> None:
    x8 = metrics.digits_to_8x8(torch.full((2, 1, 16, 16), 3.0))  # clamped to 1 → 16
    assert x8.shape == (2, 64) and np.all(x8 == 16.0)
    d8 = data.load_digits_images(8, "test").images[:5]
    raw = (d8.reshape(5, 64).double().numpy() + 1) * 8
    np.testing.assert_allclose(metrics.digits_to_8x8(d8), raw, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Gradient residual
# ---------------------------------------------------------------------------------------------


def test_gradient_residual_zero_for_gradients_large_for_noise() -> None:
    g = data.make_gradients(200, 16, seed=0)
    assert metrics.gradient_residual(g).max() < 1e-5
    diag = data.make_gradients(20, 16, seed=3, directions="diagonal")
    assert metrics.gradient_residual(diag).max() < 1e-5
    noise = torch.rand(20, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    r = metrics.gradient_residual(noise)
    assert r.shape == (20,) and r.min() > 0.4  # ≈ std of U(−1, 1) = 0.577
    # A smooth image that is not a two-colour gradient still misfits.
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    radial = (xx**2 + yy**2 - 0.7).expand(1, 3, 16, 16)
    assert metrics.gradient_residual(radial)[0] > 0.1
    # Slightly noisy gradients score about the noise level.
    noisy = g[:50] + 0.05 * torch.randn(50, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert 0.03 < float(metrics.gradient_residual(noisy).mean()) < 0.06


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------


def test_two_colour_residual_zero_for_shapes_about_the_noise_for_noisy_ones() -> None:
    x, _ = data.make_shapes(200, 16, seed=5)
    assert metrics.two_colour_residual(x).max() < 1e-5
    assert metrics.two_colour_residual(_blur(x.reshape(-1, 1, 16, 16), 1.0).reshape(x.shape)
                                       ).max() < 1e-5  # blur keeps the two-colour line
    g = torch.Generator().manual_seed(0)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    r = float(metrics.two_colour_residual(noisy).mean())
    assert 0.06 < r < 0.09  # ≈ 0.1 · √(2/3) = 0.082 (clamping shrinks it a little)
    # Three stripes of red, green, blue: no line through RGB passes near all three colours.
    three = -torch.ones(1, 3, 16, 15)
    for c in range(3):
        three[0, c, :, 5 * c:5 * c + 5] = 1.0
    assert float(metrics.two_colour_residual(three)[0]) > 0.3
    with pytest.raises(ValueError, match="images"):
        metrics.two_colour_residual(torch.zeros(2, 1, 16, 16))


def test_shape_masks_recover_the_coverage() -> None:
    x, _ = data.make_shapes(50, 16, seed=6)
    m, colours = metrics.shape_masks(x)
    assert m.shape == (50, 256) and colours.shape == (50, 6)
    # the fitted colours rebuild the image: pixel = bg · (1 − m) + fg · m
    fg, bg = colours[:, None, :3], colours[:, None, 3:]
    rebuilt = bg * (1 - m[:, :, None]) + fg * m[:, :, None]
    np.testing.assert_allclose(rebuilt, x.reshape(50, 3, 256).transpose(1, 2).numpy(),
                               atol=1e-4)
    assert (m.reshape(50, 16, 16)[:, 0, :].mean() < 0.5)  # the border is background


def test_shape_classifier_is_fitted_on_its_own_draw() -> None:
    clf = metrics.default_shape_classifier()
    assert clf.holdout_accuracy > 0.95
    assert clf.model.n_features_in_ == 256
    assert metrics.default_shape_classifier() is clf  # cached
    x, y = data.make_shapes(300, 16, seed=0)  # the U-Net's training draw: never fitted on
    assert (clf.predict_proba(x).argmax(1) == y.numpy()).mean() > 0.95


def test_shape_quality_ranks_calibration_references() -> None:
    g = torch.Generator().manual_seed(0)
    real, labels = data.make_shapes(300, 16, seed=50)
    blur = _blur(real.reshape(-1, 1, 16, 16), 1.0).reshape(real.shape)
    noisy = (real + 0.2 * torch.randn(real.shape, generator=g)).clamp(-1, 1)
    noise = torch.randn(real.shape, generator=g).clamp(-1, 1)
    q = {k: metrics.shape_quality(v) for k, v in
         {"real": real, "blur": blur, "noisy": noisy, "noise": noise,
          "single": real[labels == 2]}.items()}
    fd = {k: v["frechet_distance"] for k, v in q.items()}
    assert fd["real"] < fd["blur"] < fd["noise"]
    assert fd["real"] < fd["noisy"] < fd["noise"]
    assert fd["real"] < fd["single"]
    assert q["real"]["confidence"] > 0.9 > q["noise"]["confidence"]
    assert q["real"]["class_entropy"] > 1.3 > 0.3 > q["single"]["class_entropy"]  # ln 4 = 1.386
    res = {k: v["residual_mean"] for k, v in q.items()}
    assert res["real"] < 1e-4 < res["noisy"] < res["noise"]
    assert q["real"]["fit_fraction"] == 1.0 and q["noise"]["fit_fraction"] == 0.0
    assert q["real"]["edge_softness"] < q["blur"]["edge_softness"] < q["noise"]["edge_softness"]
    assert sum(q["real"]["class_counts"]) == 300 == q["real"]["n_samples"]
    with pytest.raises(ValueError, match="samples"):
        metrics.shape_quality(torch.zeros(4, 3, 16, 8))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.shape_quality(torch.zeros(1, 3, 16, 16))
