"""Digit quality: a held-out classifier's confidence and class spread, Fréchet distance in its
features, and near copies of the training digits.

The digit classifier is fitted ONLY on the held-out ``"test"`` split of
:func:`diffusion_core.data.digits.digits_split_indices`, never on the ``"train"`` split a U-Net
learns from, so it judges samples with knowledge the generator never had. Samples and the real
digits they are compared with go through the same pipeline (:func:`digits_to_8x8`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..data._checks import check_int
from ..data.digits import _digits_raw, digits_split_indices, load_digits_images
from ._classes import class_scores
from .distances import _nn_distances, frechet_distance_from_features

__all__ = [
    "DigitClassifier",
    "DigitReference",
    "default_digit_classifier",
    "digit_quality",
    "digit_reference",
    "digits_to_8x8",
]


def digits_to_8x8(images: torch.Tensor) -> np.ndarray:
    """Images ``[N, 1, H, W]`` in [−1, 1] (H = W, a multiple of 8) → ``[N, 64]`` float64 in
    [0, 16], the scale of scikit-learn's digits.

    Values are clamped to [−1, 1] first (samples may overshoot); larger images are
    area-averaged down to 8×8 (``adaptive_avg_pool2d``: exact block means).
    """
    x = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3] or x.shape[2] % 8:
        raise ValueError(f"images must be [N, 1, H, H] with H a multiple of 8, got "
                         f"{tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError("images must hold at least one image")
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or infinite values")
    x = x.clamp(-1.0, 1.0)
    if x.shape[2] != 8:
        x = F.adaptive_avg_pool2d(x, 8)
    return ((x.reshape(x.shape[0], 64).double() + 1.0) * 8.0).numpy()


@dataclass(frozen=True, eq=False)
class DigitClassifier:
    """An MLP digit classifier (one hidden ReLU layer) on 8×8 digits in [0, 16].

    Fitted by :meth:`fit` on the held-out ``"test"`` split only. Inputs ``x8 [N, 64]`` in
    [0, 16] (see :func:`digits_to_8x8`) are divided by 16 inside.
    ``holdout_accuracy`` is its accuracy on the ``"train"`` split it never saw.
    """

    model: object  # sklearn.neural_network.MLPClassifier
    seed: int
    test_fraction: float
    holdout_accuracy: float

    @classmethod
    def fit(
        cls, *, seed: int = 0, test_fraction: float = 0.25, hidden: int = 64
    ) -> DigitClassifier:
        """Fit on ``digits_split_indices(seed, test_fraction)[1]`` only (Adam, seeded)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        hidden = check_int("hidden", hidden, 4, 1024)
        images, labels = _digits_raw()
        train_idx, test_idx = digits_split_indices(seed, test_fraction)
        flat = images.reshape(len(images), 64).astype(np.float64) / 16.0
        model = MLPClassifier(hidden_layer_sizes=(hidden,), solver="adam", alpha=1e-2,
                              max_iter=600, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(flat[test_idx], labels[test_idx])
        acc = float((model.predict(flat[train_idx]) == labels[train_idx]).mean())
        return cls(model, int(seed), float(test_fraction), acc)

    def predict_proba(self, x8: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, 10]`` for ``x8 [N, 64]`` in [0, 16]."""
        return self.model.predict_proba(np.asarray(x8, np.float64) / 16.0)

    def features(self, x8: np.ndarray) -> np.ndarray:
        """Hidden-layer activations ``relu(x/16 · W1 + b1)``: ``[N, hidden]``."""
        h = (np.asarray(x8, np.float64) / 16.0) @ self.model.coefs_[0] + self.model.intercepts_[0]
        return np.maximum(h, 0.0)


@lru_cache(maxsize=4)
def default_digit_classifier(seed: int = 0, test_fraction: float = 0.25) -> DigitClassifier:
    """The cached :class:`DigitClassifier` for a split (fitted once per process)."""
    return DigitClassifier.fit(seed=seed, test_fraction=test_fraction)


@dataclass(frozen=True, eq=False)
class DigitReference:
    """Real digits prepared exactly as samples of side ``size`` are (load at ``size``, then
    :func:`digits_to_8x8`), so resampling blur does not count against a model.

    ``train_x8 [N_train, 64]``: the U-Net's training digits (near-copy search);
    ``heldout_features [N_test, hidden]``: classifier features of the held-out digits (Fréchet
    reference); ``nn_median``: median leave-one-out nearest-neighbour L2 distance among the
    training digits (8×8, [0, 16] scale); ``frechet_floor``: Fréchet distance of the training
    digits' features to the held-out ones (what a perfect generator would score, at N_train).
    """

    size: int
    train_x8: np.ndarray
    heldout_features: np.ndarray
    nn_median: float
    frechet_floor: float


@lru_cache(maxsize=8)
def digit_reference(size: int = 16, seed: int = 0, test_fraction: float = 0.25) -> DigitReference:
    """The cached :class:`DigitReference` for samples of side ``size`` (8 or 16)."""
    clf = default_digit_classifier(seed, test_fraction)
    train = digits_to_8x8(load_digits_images(size, "train", seed=seed,
                                             test_fraction=test_fraction).images)
    test = digits_to_8x8(load_digits_images(size, "test", seed=seed,
                                            test_fraction=test_fraction).images)
    t = torch.from_numpy(train)
    dist = torch.cdist(t, t)
    dist.fill_diagonal_(math.inf)
    nn_median = float(dist.min(dim=1).values.median())
    feats = clf.features(test)
    floor = frechet_distance_from_features(clf.features(train), feats)
    return DigitReference(size, train, feats, nn_median, floor)


def digit_quality(
    samples: torch.Tensor,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    near_copy_factor: float = 0.5,
) -> dict[str, object]:
    """Score generated digits ``samples [N, 1, H, H]`` in [−1, 1] (H = 8 or 16; N ≥ 2).

    Samples are clamped and area-averaged to 8×8 in [0, 16] (:func:`digits_to_8x8`); the real
    digits they are compared with go through the same pipeline (:func:`digit_reference`).

    Returns a dict:

    * ``confidence``: mean top-class probability of the classifier (higher = more legible);
    * ``class_entropy``: entropy (nats) of the predicted-class histogram; ln 10 ≈ 2.303 when all
      classes are equally frequent, 0 when every sample is the same class (mode collapse);
    * ``class_counts``: the histogram, 10 ints;
    * ``frechet_distance``: Fréchet distance between Gaussians fitted to the classifier's hidden
      features of the samples and of the real held-out digits (lower is better; biased upward
      for small N, so compare runs at equal N);
    * ``frechet_floor``: the same for the real training digits (what a perfect model scores);
    * ``near_copy_fraction``: fraction of samples whose nearest training digit (L2 in the 8×8,
      [0, 16] space) is closer than ``near_copy_threshold = near_copy_factor × median
      leave-one-out nearest-neighbour distance among the training digits`` (memorisation);
    * ``near_copy_threshold``, ``n_samples``, ``classifier_holdout_accuracy``.
    """
    x = torch.as_tensor(samples)
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] not in (8, 16) or x.shape[2] != x.shape[3]:
        raise ValueError(f"samples must be [N, 1, H, H] with H in (8, 16), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"samples must hold at least 2 images, got {x.shape[0]}")
    if isinstance(near_copy_factor, bool) or not 0.0 < float(near_copy_factor) <= 2.0:
        raise ValueError(f"near_copy_factor must be in (0, 2], got {near_copy_factor!r}")
    x8 = digits_to_8x8(x)
    clf = default_digit_classifier(seed, test_fraction)
    ref = digit_reference(int(x.shape[2]), seed, test_fraction)

    fd = frechet_distance_from_features(clf.features(x8), ref.heldout_features)

    threshold = float(near_copy_factor) * ref.nn_median
    nn = _nn_distances(torch.from_numpy(x8), torch.from_numpy(ref.train_x8))
    return {
        "n_samples": int(x.shape[0]),
        **class_scores(clf.predict_proba(x8), 10),
        "frechet_distance": fd,
        "frechet_floor": ref.frechet_floor,
        "near_copy_fraction": float((nn < threshold).double().mean()),
        "near_copy_threshold": threshold,
        "classifier_holdout_accuracy": clf.holdout_accuracy,
    }
