"""Tests for diffusion_core.evaluation.digits: the held-out digit classifier and digit quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_core.data.digits import digits_split_indices, load_digits_images
from diffusion_core.evaluation.digits import default_digit_classifier, digit_quality, digits_to_8x8

from ._images import gaussian_blur


def test_digit_classifier_is_fitted_on_the_held_out_split_only() -> None:
    clf = default_digit_classifier()
    assert clf.holdout_accuracy > 0.9  # measured on the U-Net's split, never seen in fitting
    _, test_idx = digits_split_indices()
    assert clf.model.n_features_in_ == 64
    assert clf.model.t_ == len(test_idx) * clf.model.n_iter_  # samples seen per epoch


@pytest.mark.parametrize("size", [8, 16])
def test_digit_quality_ranks_calibration_references(size: int) -> None:
    real = load_digits_images(size, "train").images[:450]
    noise = torch.rand(450, 1, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    q_real = digit_quality(real)
    q_blur = digit_quality(gaussian_blur(real, 1.0))
    q_noise = digit_quality(noise)
    assert q_real["frechet_distance"] < q_blur["frechet_distance"] < q_noise["frechet_distance"]
    assert q_real["frechet_distance"] < 3 * q_real["frechet_floor"] + 0.5
    assert q_real["confidence"] > 0.85 > q_noise["confidence"]
    assert q_real["class_entropy"] > 2.2  # ≈ ln 10 = 2.303 for balanced classes
    assert sum(q_real["class_counts"]) == 450 == q_real["n_samples"]
    # Training images are their own nearest training image.
    assert q_real["near_copy_fraction"] > 0.99
    assert q_noise["near_copy_fraction"] == 0.0


def test_digit_quality_entropy_and_near_copies() -> None:
    train = load_digits_images(16, "train")
    zeros = train.images[train.labels == 0]
    assert digit_quality(zeros)["class_entropy"] < 0.2
    held_out = digit_quality(load_digits_images(16, "test").images)
    assert held_out["near_copy_fraction"] < 0.05  # unseen real digits are not copies
    with pytest.raises(ValueError, match="samples"):
        digit_quality(torch.zeros(4, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 2"):
        digit_quality(torch.zeros(1, 1, 16, 16))


def test_digits_to_8x8() -> None:
    x8 = digits_to_8x8(torch.full((2, 1, 16, 16), 3.0))  # clamped to 1 → 16
    assert x8.shape == (2, 64) and np.all(x8 == 16.0)
    d8 = load_digits_images(8, "test").images[:5]
    raw = (d8.reshape(5, 64).double().numpy() + 1) * 8
    np.testing.assert_allclose(digits_to_8x8(d8), raw, atol=1e-5)
