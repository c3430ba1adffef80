"""Sample-quality metrics: distances for 2D point clouds, digit quality, gradient fit.

=========================== ======================================================================
function                    what it measures
=========================== ======================================================================
``sliced_wasserstein``      SW1 between point clouds ``[N, D]`` / ``[M, D]`` (exact per direction)
``sw1_floor``               SW1 between two fresh draws of a data set (what "as good as data" is)
``nearest_neighbour_ratio`` mean NN distance of samples to the data ÷ the same for a fresh draw
``digit_quality``           classifier confidence, class entropy, Fréchet distance, near copies
``gradient_residual``       per-image RMS misfit of the two-colour gradient model (data.py)
``shape_quality``           shape classifier confidence, class entropy, Fréchet distance, misfit
``two_colour_residual``     per-image RMS misfit of the two-colour shape model (data.py)
=========================== ======================================================================

The digit classifier is fitted ONLY on the held-out ``"test"`` split of
:func:`diffusion_core.data.digits_split_indices`, never on the ``"train"`` split a U-Net learns
from, so it judges samples with knowledge the generator never had. Likewise the shape classifier
is fitted on its own seeded draw of :func:`diffusion_core.data.make_shapes` (seed + 1; the
pretrained model trained on seed 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from . import data

__all__ = [
    "DigitClassifier",
    "DigitReference",
    "default_digit_classifier",
    "digit_quality",
    "digit_reference",
    "digits_to_8x8",
    "frechet_distance",
    "frechet_distance_from_features",
    "gradient_residual",
    "mean_nn_distance",
    "nearest_neighbour_ratio",
    "sliced_wasserstein",
    "ShapeClassifier",
    "default_shape_classifier",
    "shape_masks",
    "shape_quality",
    "sw1_floor",
    "two_colour_residual",
]


# ---------------------------------------------------------------------------------------------
# Point-cloud distances
# ---------------------------------------------------------------------------------------------


def _as_cloud(name: str, x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``x [N, ...]`` → float64 CPU tensor ``[N, D]`` (flattened), validated."""
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.ndim < 2 or t.shape[0] < 1:
        raise ValueError(f"{name} must have shape [N, D] (or [N, ...]) with N >= 1, "
                         f"got {tuple(t.shape)}")
    t = t.reshape(t.shape[0], -1)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _w1_sorted(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact W1 between 1-D empirical distributions, column by column.

    ``a [N, P]`` and ``b [M, P]`` are sorted along dim 0. W1 = ∫₀¹ |F⁻¹(u) − G⁻¹(u)| du; both
    quantile functions are constant between the breakpoints {i/N} ∪ {j/M}, so evaluating them at
    the midpoints of that common grid gives the integral exactly (also for N ≠ M).
    Returns ``[P]``.
    """
    n, m = a.shape[0], b.shape[0]
    u = torch.cat([torch.arange(1, n + 1, dtype=torch.float64) / n,
                   torch.arange(1, m + 1, dtype=torch.float64) / m])
    u = torch.cat([torch.zeros(1, dtype=torch.float64), torch.sort(u).values])
    du = u[1:] - u[:-1]
    mid = u[:-1] + du / 2
    ia = torch.clamp((mid * n).floor().long(), max=n - 1)
    ib = torch.clamp((mid * m).floor().long(), max=m - 1)
    return ((a[ia] - b[ib]).abs() * du[:, None]).sum(dim=0)


def sliced_wasserstein(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    *,
    n_projections: int = 256,
    seed: int = 0,
) -> float:
    """Sliced Wasserstein-1 distance between point clouds ``x [N, D]`` and ``y [M, D]``.

    ``n_projections`` unit directions θ are drawn uniformly on the sphere (normalised Gaussians
    from a ``torch.Generator`` seeded with ``seed``); for each, the exact W1 between the 1-D
    empirical distributions of ``x·θ`` and ``y·θ`` is computed (on the common quantile grid, so
    N ≠ M is fine); the result is their mean. Computed in float64 on CPU; 0 for identical
    clouds; symmetric; a pure shift by v gives |v|·E|cos| (2|v|/π in 2D).
    """
    xs, ys = _as_cloud("x", x), _as_cloud("y", y)
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {xs.shape[1]} and "
                         f"{ys.shape[1]}")
    n_projections = data._check_int("n_projections", n_projections, 1, 100_000)
    seed = data._check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n_projections, xs.shape[1], generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-300)
    chunk = max(1, 4_000_000 // (xs.shape[0] + ys.shape[0]))
    total = 0.0
    for i in range(0, n_projections, chunk):
        d = dirs[i : i + chunk].T  # [D, P]
        total += float(_w1_sorted(torch.sort(xs @ d, dim=0).values,
                                  torch.sort(ys @ d, dim=0).values).sum())
    return total / n_projections


def sw1_floor(
    dataset: str | Callable[[int, int], torch.Tensor],
    n: int = 2000,
    *,
    seed: int = 0,
    n_projections: int = 256,
    pairs: int = 8,
) -> float:
    """SW1 between two fresh draws of a data set: what a perfect model scores on average.

    ``dataset`` is a :data:`diffusion_core.data.TOY_DATASETS` name (drawn with
    ``make_2d(name, n, seed=…)`` at its default noise) or a callable ``(n, seed) -> [n, D]``.
    The value is the mean over ``pairs`` independent pairs of draws, with seeds
    ``seed + 1000 + 2k`` and ``seed + 1001 + 2k`` (away from the usual training seed 0): one
    pair alone varies by ±20–30 % (n = 2000), which would make "≤ 1.5 × floor" partly a matter of
    luck. ``n`` should match the sample count being judged, since SW1 between finite samples
    shrinks roughly like 1/√n.
    """
    n = data._check_int("n", n, 1, data.MAX_POINTS)
    pairs = data._check_int("pairs", pairs, 1, 1000)
    seed = data._check_int("seed", seed, 0, 2**32 - 1001 - 2 * pairs)
    if isinstance(dataset, str):
        name = dataset

        def draw(k: int, s: int) -> torch.Tensor:
            return data.make_2d(name, k, seed=s)
    elif callable(dataset):
        draw = dataset
    else:
        raise ValueError(f"dataset must be a 2D data set name or a callable, got {dataset!r}")
    total = 0.0
    for k in range(pairs):
        total += sliced_wasserstein(draw(n, seed + 1000 + 2 * k), draw(n, seed + 1001 + 2 * k),
                                    n_projections=n_projections, seed=seed)
    return total / pairs


def mean_nn_distance(
    queries: torch.Tensor | np.ndarray,
    points: torch.Tensor | np.ndarray,
    *,
    chunk_size: int = 2048,
) -> float:
    """Mean over ``queries [N, D]`` of the Euclidean distance to the nearest of ``points [M, D]``.

    Uses ``torch.cdist`` over chunks of ``chunk_size`` queries (float64).
    """
    return float(_nn_distances(_as_cloud("queries", queries), _as_cloud("points", points),
                               chunk_size).mean())


def _nn_distances(q: torch.Tensor, p: torch.Tensor, chunk_size: int = 2048) -> torch.Tensor:
    if q.shape[1] != p.shape[1]:
        raise ValueError(f"dimension mismatch: {q.shape[1]} vs {p.shape[1]}")
    chunk_size = data._check_int("chunk_size", chunk_size, 1, 1_000_000)
    out = [torch.cdist(q[i : i + chunk_size], p).min(dim=1).values
           for i in range(0, q.shape[0], chunk_size)]
    return torch.cat(out)


def nearest_neighbour_ratio(
    samples: torch.Tensor | np.ndarray,
    data_points: torch.Tensor | np.ndarray,
    reference: torch.Tensor | np.ndarray,
    *,
    chunk_size: int = 2048,
) -> float:
    """Mean NN distance from ``samples [N, D]`` to ``data_points [M, D]``, divided by the mean NN
    distance from ``reference [K, D]`` (a FRESH draw of the data, not ``data_points`` itself) to
    ``data_points``.

    1.0 means samples sit as close to the data as real data does; larger is worse; well below 1
    means samples cluster on the data points (possible memorisation). Use ``N ≈ K``.
    """
    d_ref = mean_nn_distance(reference, data_points, chunk_size=chunk_size)
    if d_ref <= 0.0:
        raise ValueError("reference has zero mean nearest-neighbour distance to the data: pass a "
                         "fresh draw of the data set, not the data points themselves")
    return mean_nn_distance(samples, data_points, chunk_size=chunk_size) / d_ref


# ---------------------------------------------------------------------------------------------
# Fréchet distance
# ---------------------------------------------------------------------------------------------


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray
) -> float:
    """Fréchet distance between Gaussians N(mu1, cov1) and N(mu2, cov2) (``[D]``, ``[D, D]``).

    ``‖mu1 − mu2‖² + tr(cov1) + tr(cov2) − 2 tr((cov1^½ cov2 cov1^½)^½)``; the last trace equals
    ``tr((cov1 cov2)^½)`` and is computed from eigenvalues of the symmetric PSD product, so no
    general (scipy) ``sqrtm`` is needed. Clipped at 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    c1, c2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or c1.shape != c2.shape or c1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, cov {c1.shape}/{c2.shape}")
    r1 = _sqrt_psd(c1)
    m = r1 @ c2 @ r1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum())
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt)
    return max(d, 0.0)


def frechet_distance_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features ``f1 [N, D]`` and ``f2 [M, D]``."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be [N, D] and [M, D], got {f1.shape} and {f2.shape}")
    if f1.shape[0] < 2 or f2.shape[0] < 2:
        raise ValueError("need at least 2 feature rows on each side")
    return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False),
                            f2.mean(0), np.cov(f2, rowvar=False))


# ---------------------------------------------------------------------------------------------
# Digit quality
# ---------------------------------------------------------------------------------------------


def _class_scores(proba: np.ndarray, n_classes: int) -> dict[str, object]:
    """``confidence`` (mean top-class probability), ``class_entropy`` (nats, of the
    predicted-class histogram) and ``class_counts`` from class probabilities ``[N, n_classes]``."""
    counts = np.bincount(proba.argmax(axis=1), minlength=n_classes)
    p = counts[counts > 0] / counts.sum()
    return {
        "confidence": float(proba.max(axis=1).mean()),
        "class_entropy": max(0.0, float(-(p * np.log(p)).sum())),
        "class_counts": [int(c) for c in counts],
    }


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
        """Fit on ``data.digits_split_indices(seed, test_fraction)[1]`` only (Adam, seeded)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        hidden = data._check_int("hidden", hidden, 4, 1024)
        images, labels = data._digits_raw()
        train_idx, test_idx = data.digits_split_indices(seed, test_fraction)
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
    train = digits_to_8x8(data.load_digits_images(size, "train", seed=seed,
                                                  test_fraction=test_fraction).images)
    test = digits_to_8x8(data.load_digits_images(size, "test", seed=seed,
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
        **_class_scores(clf.predict_proba(x8), 10),
        "frechet_distance": fd,
        "frechet_floor": ref.frechet_floor,
        "near_copy_fraction": float((nn < threshold).double().mean()),
        "near_copy_threshold": threshold,
        "classifier_holdout_accuracy": clf.holdout_accuracy,
    }


# ---------------------------------------------------------------------------------------------
# Gradient images
# ---------------------------------------------------------------------------------------------


def gradient_residual(images: torch.Tensor) -> torch.Tensor:
    """Per-image RMS residual ``[N]`` of the best fit of the two-colour gradient model.

    The model of :func:`diffusion_core.data.make_gradients`: ``x[c] = c0[c]·(1 − w_d) +
    c1[c]·w_d``, i.e. per channel an affine function ``a_c + b_c·w_d`` of one weight map ``w_d``
    shared by all channels. For each direction d the least-squares fit is the projection of every
    channel onto span{1, w_d}; the residual RMS is taken over all C·H·W values, and the smallest
    over the directions is returned. 0 for a true gradient (float rounding aside); ≈ the noise
    std for noise. ``images [N, C, H, W]`` (C usually 3, H, W ≥ 2); float32 result on CPU.
    """
    x = torch.as_tensor(images).detach().to("cpu", torch.float64)
    if x.ndim != 4 or x.shape[0] < 1 or x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"images must be [N, C, H, W] with H, W >= 2, got {tuple(x.shape)}")
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    centred = flat - flat.mean(dim=2, keepdim=True)  # removes the span{1} component
    maps = data.gradient_weight_maps(h, w).double().reshape(-1, h * w)
    e = maps - maps.mean(dim=1, keepdim=True)
    e = e / e.norm(dim=1, keepdim=True)  # [K, HW], orthogonal to 1
    best = None
    for k in range(e.shape[0]):
        coef = (centred * e[k]).sum(dim=2, keepdim=True)
        rms = (centred - coef * e[k]).pow(2).mean(dim=(1, 2)).sqrt()
        best = rms if best is None else torch.minimum(best, rms)
    return best.float()


# ---------------------------------------------------------------------------------------------
# Shape images
# ---------------------------------------------------------------------------------------------


def _check_rgb(images: torch.Tensor, *, min_n: int = 1) -> torch.Tensor:
    """``images [N, 3, H, W]`` (H, W ≥ 2, finite) as float64 on the CPU, or a ValueError."""
    x = torch.as_tensor(images).detach().to("cpu", torch.float64)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"images must be [N, 3, H, W] with H, W >= 2, got {tuple(x.shape)}")
    if x.shape[0] < min_n:
        raise ValueError(f"images must hold at least {min_n} image(s), got {x.shape[0]}")
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or infinite values")
    return x


def _colour_line(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image least-squares line through the pixel colours of ``x [N, 3, H, W]`` (float64).

    Returns ``(mean [N, 3], axis [N, 3], eigenvalues [N, 3] ascending)`` of the colours'
    3×3 scatter matrix (divided by H·W); ``axis`` is the principal direction.
    """
    n = x.shape[0]
    pix = x.reshape(n, 3, -1).transpose(1, 2)  # [N, HW, 3]
    mean = pix.mean(dim=1)
    c = pix - mean.unsqueeze(1)
    scatter = c.transpose(1, 2) @ c / pix.shape[1]
    evals, evecs = torch.linalg.eigh(scatter)
    return mean, evecs[:, :, 2], evals.clamp_min(0.0)


def two_colour_residual(images: torch.Tensor) -> torch.Tensor:
    """Per-image RMS misfit ``[N]`` (float32) of the best fit ``bg · (1 − m) + fg · m``.

    The model of :func:`diffusion_core.data.make_shapes`: every pixel's colour lies on the
    segment between two colours ``bg, fg`` (``m ∈ [0, 1]`` its coverage). With ``fg`` and
    ``bg`` free, the best such fit is the least-squares line through the ``H·W`` colours in
    RGB (its end points are the extreme projections, so ``m`` stays in [0, 1]); the residual
    is the RMS distance to that line over all ``3·H·W`` values, ``sqrt((λ₁ + λ₂) / 3)`` with
    ``λ₁ ≤ λ₂`` the two smallest eigenvalues of the colours' scatter matrix. 0 for a real
    (anti-aliased, or blurred) two-colour image; ≈ σ·√(2/3) for added N(0, σ²) noise.
    ``images [N, 3, H, W]`` in [−1, 1] (values are clamped first, as a sample is shown).
    """
    x = _check_rgb(images).clamp(-1.0, 1.0)
    _, _, evals = _colour_line(x)
    return ((evals[:, 0] + evals[:, 1]) / 3.0).sqrt().float()


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

    Fitted by :meth:`fit` on ``data.make_shapes(n_fit, 16, seed=seed + 1)`` (half of it with
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

        seed = data._check_int("seed", seed, 0, 2**31)
        hidden = data._check_int("hidden", hidden, 4, 1024)
        images, labels = data.make_shapes(n_fit, size, seed=seed + 1)
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
        hx, hy = data.make_shapes(2000, size, seed=seed + 3)
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
    return clf.features(data.make_shapes(n, size, seed=seed + 2)[0])


def shape_quality(samples: torch.Tensor, *, seed: int = 0, n_reference: int = 2000,
                  fit_threshold: float = 0.05) -> dict[str, object]:
    """Score generated shape images ``samples [N, 3, H, H]`` in [−1, 1] (N ≥ 2, H ≥ 8).

    Returns a dict:

    * ``confidence``: mean top-class probability of the :class:`ShapeClassifier` (fitted on a
      separate seeded draw, never the U-Net's training draw);
    * ``class_entropy``: entropy (nats) of the predicted-class histogram (ln 4 ≈ 1.386 when the
      4 classes are equally frequent, 0 when every sample is the same class);
    * ``class_counts``: the histogram, 4 ints (order of ``data.SHAPE_CLASSES``);
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
    n_reference = data._check_int("n_reference", n_reference, 2, 100_000)
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
        **_class_scores(clf.predict_proba(x), len(data.SHAPE_CLASSES)),
        "frechet_distance": fd,
        "residual_mean": float(res.mean()),
        "residual_median": float(res.median()),
        "fit_fraction": float((res < fit_threshold).double().mean()),
        "edge_softness": float(((m > 0.1) & (m < 0.9)).mean()),
        "classifier_holdout_accuracy": clf.holdout_accuracy,
    }
