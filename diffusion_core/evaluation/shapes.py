"""Shape quality: a shape classifier's confidence and class spread, Fréchet distance in its
features, the two-colour misfit and edge softness.

The shape classifier is fitted on its own seeded draw of
:func:`diffusion_core.data.synthetic.make_shapes` (seed + 1; the pretrained model trained on
seed 0), and sees only the colour-free coverage mask of each image (:func:`shape_masks`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..data._checks import check_int
from ..data.synthetic import SHAPE_CLASSES, make_shapes
from ._classes import class_scores
from .distances import frechet_distance_from_features
from .gradients import _check_rgb, _colour_line, two_colour_residual

__all__ = ["ShapeClassifier", "default_shape_classifier", "shape_masks", "shape_quality"]


def shape_masks(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Colour-free view of shape images: ``(m [N, H·W] in [0, 1], colours [N, 6])``.

    Per image (clamped to [−1, 1]): project the colours onto their principal line
    (:func:`two_colour_residual`), rescale the projections to [0, 1] between their 2nd and
    98th percentiles (clamped; robust to a few noisy pixels, and exact for real images, whose
    shape covers more than 2 % of the pixels) and orient them so the border pixels average
    below ½ (the background is 0, the shape 1).
    ``colours`` are the fitted ``fg`` then ``bg`` (the line's points at ``m = 1`` and ``0``).
    For a real image ``m`` is its coverage mask exactly.
    """
    x = _check_rgb(images).clamp(-1.0, 1.0)
    n, _, h, w = x.shape
    mean, axis, _ = _colour_line(x)
    s = ((x.reshape(n, 3, -1) - mean.unsqueeze(2)) * axis.unsqueeze(2)).sum(dim=1)  # [N, HW]
    lo = torch.quantile(s, 0.02, dim=1, keepdim=True)
    hi = torch.quantile(s, 0.98, dim=1, keepdim=True)
    m = ((s - lo) / (hi - lo).clamp_min(1e-12)).clamp(0.0, 1.0)
    border = torch.ones(h, w, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    flip = m[:, border.reshape(-1)].mean(dim=1) > 0.5
    m[flip] = 1.0 - m[flip]
    s_fg = torch.where(flip, lo[:, 0], hi[:, 0])
    s_bg = torch.where(flip, hi[:, 0], lo[:, 0])
    fg = mean + s_fg.unsqueeze(1) * axis
    bg = mean + s_bg.unsqueeze(1) * axis
    return m.numpy(), torch.cat([fg, bg], dim=1).numpy()


@dataclass(frozen=True, eq=False)
class ShapeClassifier:
    """An MLP shape classifier (one hidden ReLU layer) on the masks of :func:`shape_masks`.

    Fitted by :meth:`fit` on ``make_shapes(n_fit, 16, seed=seed + 1)`` (half of it with
    added pixel noise, σ ≤ 0.25), a draw separate
    from the training set (seed 0) and from the Fréchet reference (``seed + 2``);
    ``holdout_accuracy`` is its accuracy on a third draw (``seed + 3``, 2000 images).
    It sees only the colour-free mask (the colours carry no class), so :meth:`features` appends
    the fitted fg and bg colours to the hidden activations: the Fréchet distance then judges
    shape and colour statistics together.
    """

    model: object  # sklearn.neural_network.MLPClassifier
    seed: int
    size: int
    holdout_accuracy: float

    @classmethod
    def fit(cls, *, seed: int = 0, size: int = 16, n_fit: int = 4000,
            hidden: int = 64) -> ShapeClassifier:
        """Fit on ``make_shapes(n_fit, size, seed=seed + 1)`` (Adam, seeded)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        seed = check_int("seed", seed, 0, 2**31)
        hidden = check_int("hidden", hidden, 4, 1024)
        images, labels = make_shapes(n_fit, size, seed=seed + 1)
        # The second half gets N(0, σ²) pixel noise, σ ~ U[0, 0.25] per image, so that samples
        # with a little noise are still classified by their shape.
        g = torch.Generator().manual_seed(seed + 1)
        half = n_fit // 2
        sigma = 0.25 * torch.rand(n_fit - half, 1, 1, 1, generator=g)
        noise = torch.randn(images[half:].shape, generator=g) * sigma
        images = torch.cat([images[:half], (images[half:] + noise).clamp(-1.0, 1.0)])
        m, _ = shape_masks(images)
        model = MLPClassifier(hidden_layer_sizes=(hidden,), solver="adam", alpha=1e-3,
                              max_iter=300, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(m, labels.numpy())
        hx, hy = make_shapes(2000, size, seed=seed + 3)
        acc = float((model.predict(shape_masks(hx)[0]) == hy.numpy()).mean())
        return cls(model, seed, int(size), acc)

    def predict_proba(self, images: torch.Tensor) -> np.ndarray:
        """Class probabilities ``[N, 4]`` (``SHAPE_CLASSES`` order) of ``images [N, 3, H, W]``."""
        return self.model.predict_proba(shape_masks(images)[0])

    def features(self, images: torch.Tensor) -> np.ndarray:
        """Hidden activations ``relu(m · W1 + b1)`` then fg, bg: ``[N, hidden + 6]``."""
        m, colours = shape_masks(images)
        h = np.maximum(m @ self.model.coefs_[0] + self.model.intercepts_[0], 0.0)
        return np.concatenate([h, colours], axis=1)


@lru_cache(maxsize=4)
def default_shape_classifier(seed: int = 0, size: int = 16) -> ShapeClassifier:
    """The cached :class:`ShapeClassifier` (fitted once per process and seed)."""
    return ShapeClassifier.fit(seed=seed, size=size)


@lru_cache(maxsize=4)
def _shape_reference_features(seed: int, size: int, n: int) -> np.ndarray:
    clf = default_shape_classifier(seed, size)
    return clf.features(make_shapes(n, size, seed=seed + 2)[0])


def shape_quality(samples: torch.Tensor, *, seed: int = 0, n_reference: int = 2000,
                  fit_threshold: float = 0.05) -> dict[str, object]:
    """Score generated shape images ``samples [N, 3, H, H]`` in [−1, 1] (N ≥ 2, H ≥ 8).

    Returns a dict:

    * ``confidence``: mean top-class probability of the :class:`ShapeClassifier` (fitted on a
      separate seeded draw, never the U-Net's training draw);
    * ``class_entropy``: entropy (nats) of the predicted-class histogram (ln 4 ≈ 1.386 when the
      4 classes are equally frequent, 0 when every sample is the same class);
    * ``class_counts``: the histogram, 4 ints (order of ``SHAPE_CLASSES``);
    * ``frechet_distance``: Fréchet distance between Gaussians fitted to the classifier features
      (hidden activations + fitted colours) of the samples and of a fresh real draw
      (``make_shapes(n_reference, H, seed=seed + 2)``); biased upward at small N, so compare
      at equal N;
    * ``residual_mean``, ``residual_median``: of :func:`two_colour_residual`;
      ``fit_fraction``: share of samples with residual < ``fit_threshold``;
    * ``edge_softness``: share of pixels whose colour-free coverage (:func:`shape_masks`) is
      strictly between 0.1 and 0.9, i.e. neither background nor shape (lower = crisper edges;
      ≈ 0.10 for real anti-aliased shapes, ≈ 0.16 / 0.31 after a Gaussian blur of σ = 0.5 / 1
      pixel). The Fréchet distance barely sees a σ = 0.5 blur (the classifier's features do
      not depend on edge sharpness), this does;
    * ``n_samples``, ``classifier_holdout_accuracy``.
    """
    x = _check_rgb(samples, min_n=2)
    if x.shape[2] != x.shape[3] or x.shape[2] < 8:
        raise ValueError(f"samples must be square [N, 3, H, H] with H >= 8, got {tuple(x.shape)}")
    n_reference = check_int("n_reference", n_reference, 2, 100_000)
    if isinstance(fit_threshold, bool) or not 0.0 < float(fit_threshold) < 1.0:
        raise ValueError(f"fit_threshold must be in (0, 1), got {fit_threshold!r}")
    size = int(x.shape[2])
    clf = default_shape_classifier(seed, size)
    fd = frechet_distance_from_features(clf.features(x),
                                        _shape_reference_features(seed, size, n_reference))
    res = two_colour_residual(x).double()
    m, _ = shape_masks(x)
    return {
        "n_samples": int(x.shape[0]),
        **class_scores(clf.predict_proba(x), len(SHAPE_CLASSES)),
        "frechet_distance": fd,
        "residual_mean": float(res.mean()),
        "residual_median": float(res.median()),
        "fit_fraction": float((res < fit_threshold).double().mean()),
        "edge_softness": float(((m > 0.1) & (m < 0.9)).mean()),
        "classifier_holdout_accuracy": clf.holdout_accuracy,
    }
