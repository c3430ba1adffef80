"""scikit-learn's 8×8 digits (1797 images, shipped with scikit-learn; nothing is downloaded).

Values 0..16 map to ``v / 8 − 1`` ∈ [−1, 1]. The train/test split is fixed, seeded and
stratified (:func:`digits_split_indices`): the U-Net trains on ``"train"``; the quality
classifier in :mod:`diffusion_core.evaluation.digits` is fitted on ``"test"`` only.
Registry sets: ``"digits"`` (1×16×16, bilinear ×2) and ``"digits8"`` (1×8×8, native).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import check_choice, check_int, check_seed
from ._sklearn_files import sklearn_datasets_dir
from .imageset import ImageDatasetSpec, ImageSet

__all__ = [
    "DIGIT_CLASSES",
    "DIGITS8_SPEC",
    "DIGITS_SPEC",
    "digit_image",
    "digits_split_indices",
    "load_digits_images",
]

DIGITS_SPEC = ImageDatasetSpec("digits", 1, 16,
                               "scikit-learn digits, train split, upsampled 8→16 (bilinear)")
DIGITS8_SPEC = ImageDatasetSpec("digits8", 1, 8, "scikit-learn digits, train split, native 8×8")
DIGIT_CLASSES: tuple[str, ...] = tuple(str(k) for k in range(10))
"""The digits' class names in label order: label k is the digit k."""


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: ``(images [1797, 8, 8] float32 in 0..16, labels [1797] int64)``,
    read-only."""
    # What sklearn.datasets.load_digits reads, read the same way without importing
    # scikit-learn (a worker process that trains on digits stays ≈ 110 MB leaner).
    with gzip.open(sklearn_datasets_dir() / "data" / "digits.csv.gz", "rt") as f:
        data = np.loadtxt(f, delimiter=",")  # [1797, 65]: 64 pixels, then the digit
    images = data[:, :-1].reshape(-1, 8, 8).astype(np.float32)  # [1797, 8, 8], values 0..16
    labels = data[:, -1].astype(np.int64)
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
    return _split_cached(check_seed(seed), _check_fraction(test_fraction))


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
    check_choice("size", size, (8, 16))
    check_choice("split", split, ("train", "test", "all"))
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
    index = check_int("index", index, 0, len(labels) - 1)
    size = check_int("size", size, 8, 512)
    x = torch.from_numpy(images[index] / 8.0 - 1.0).float().view(1, 1, 8, 8)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x[0].clamp(-1.0, 1.0)
