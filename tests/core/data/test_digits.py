"""Tests for diffusion_core.data.digits: scikit-learn digits and their fixed split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_core.data.digits import (
    _digits_raw,
    digit_image,
    digits_split_indices,
    load_digits_images,
)


def test_digits_split_is_disjoint_stratified_and_deterministic() -> None:
    train, test = digits_split_indices(seed=0, test_fraction=0.25)
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1797))
    _, labels = _digits_raw()
    for c in range(10):
        n_c = int((labels == c).sum())
        assert abs(int((labels[test] == c).sum()) - 0.25 * n_c) <= 1
    again = digits_split_indices(seed=0, test_fraction=0.25)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    other = digits_split_indices(seed=1, test_fraction=0.25)
    assert not np.array_equal(other[1], test)
    with pytest.raises(ValueError, match="test_fraction"):
        digits_split_indices(test_fraction=1.0)


def test_load_digits_images_ranges_shapes_and_labels() -> None:
    train8 = load_digits_images(8, "train")
    raw, labels = _digits_raw()
    train_idx, _ = digits_split_indices()
    assert train8.images.shape == (len(train_idx), 1, 8, 8) and train8.name == "digits8"
    torch.testing.assert_close(train8.images[:, 0],
                               torch.from_numpy(raw[train_idx] / 8.0 - 1.0).float())
    assert torch.equal(train8.labels, torch.from_numpy(labels[train_idx]))
    test16 = load_digits_images(16, "test")
    assert test16.images.shape[1:] == (1, 16, 16) and test16.name == "digits"
    assert test16.images.dtype == torch.float32
    assert test16.images.min() >= -1.0 and test16.images.max() <= 1.0
    assert float(test16.images.min()) == -1.0  # background reaches -1
    assert len(load_digits_images(8, "all")) == 1797
    with pytest.raises(ValueError, match="size"):
        load_digits_images(12)
    with pytest.raises(ValueError, match="split"):
        load_digits_images(16, "val")


def test_digit_image_for_display() -> None:
    x = digit_image(5, 64)
    assert x.shape == (1, 64, 64) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(ValueError, match="index"):
        digit_image(1797)


def test_digits_are_scikit_learns() -> None:
    """Read from scikit-learn's file without importing it: the same images and labels as
    ``sklearn.datasets.load_digits``."""
    from sklearn.datasets import load_digits

    from diffusion_core.data.digits import _digits_raw

    images, labels = _digits_raw()
    d = load_digits()
    np.testing.assert_array_equal(images, d.images.astype(np.float32))
    np.testing.assert_array_equal(labels, d.target)
    assert images.dtype == np.float32 and labels.dtype == np.int64
