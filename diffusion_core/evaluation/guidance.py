"""Guidance's fidelity–diversity trade-off, measured the same way for 2D and digits.

Convention (:mod:`diffusion_core.sampling.guidance`): ε̃ = ε_u + s·(ε_c − ε_u); s = 0 the
unconditional model, s = 1 the conditional one, s > 1 guides harder.

* *fidelity* — ``accuracy``: how often a sample asked for class k is read as class k. For 2D,
  the class of the nearest point of the noise-free data set (:func:`nearest_class_2d`); for
  digits, the held-out digit classifier (:func:`digit_guidance_scores`). At s = 0 a good model
  scores chance, 1/K: it ignores the label.
* *diversity* — ``spread`` (:func:`spread_ratio`): the mean pairwise distance between the
  samples of one class divided by the same for real examples of that class, averaged over the
  classes. 1 = as varied as the data; → 0 as guidance pulls each class to a point.
* digits also get ``class_fd``: the Fréchet distance, in the classifier's features, between the
  samples of digit k and the held-out digits of class k (mean over k), beside the same for
  real training digits blurred with σ = 0.5 (``class_fd_blur_0.5``, the "as good as slightly
  blurred data" reference of the digits bar).

Used by tab 3 and tab 4 (through :mod:`diffusion_core.workflows`), ``bench/guidance.py`` and
the tests.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..data.digits import load_digits_images
from ..data.toy2d import make_2d
from .digits import default_digit_classifier, digits_to_8x8
from .distances import frechet_distance_from_features

__all__ = ["digit_guidance_scores", "gaussian_blur", "guided_samples", "mean_pairwise_distance",
           "nearest_class_2d", "spread_ratio"]


@lru_cache(maxsize=8)
def _noise_free(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    return make_2d(dataset, 20_000, noise=0.0, seed=12_345, return_labels=True)


def nearest_class_2d(points: torch.Tensor, dataset: str) -> torch.Tensor:
    """The class of the nearest point of the noise-free set (20,000 points): which moon, circle,
    arm, Gaussian or cell each of ``points [N, 2]`` (model coordinates) is closest to. ``[N]``
    long."""
    ref, ref_y = _noise_free(dataset)
    out = torch.empty(len(points), dtype=torch.long)
    for i in range(0, len(points), 1024):
        out[i:i + 1024] = ref_y[torch.cdist(points[i:i + 1024].float(), ref).argmin(1)]
    return out


def mean_pairwise_distance(x: torch.Tensor | np.ndarray) -> float:
    """Mean L2 distance between distinct rows of ``x [N, ...]`` (N ≥ 2)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64).flatten(1)
    n = len(x)
    if n < 2:
        raise ValueError(f"mean pairwise distance needs at least 2 rows, got {n}")
    return float(torch.cdist(x, x).sum() / (n * (n - 1)))


def spread_ratio(samples: torch.Tensor | np.ndarray, labels: torch.Tensor,
                 real: torch.Tensor | np.ndarray, real_labels: torch.Tensor) -> float:
    """Diversity: mean over classes k of (mean pairwise distance of the samples of class k) /
    (the same for the real examples of class k). 1 = as varied as the data.

    ``samples [N, ...]`` with ``labels [N]``; ``real [M, ...]`` with ``real_labels [M]``.
    Classes with fewer than 2 samples or 2 real examples are skipped (NaN if none is left).
    """
    samples, real = np.asarray(samples), np.asarray(real)
    labels, real_labels = torch.as_tensor(labels), torch.as_tensor(real_labels)
    ratios = []
    for k in torch.unique(labels).tolist():
        s, r = samples[(labels == k).numpy()], real[(real_labels == k).numpy()]
        if len(s) >= 2 and len(r) >= 2:
            ratios.append(mean_pairwise_distance(s) / mean_pairwise_distance(r))
    return float(np.mean(ratios)) if ratios else math.nan


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``x [N, C, H, W]`` (σ in pixels, radius ⌈3σ⌉, edge-replicated)."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@lru_cache(maxsize=4)
def _digit_class_refs(n_per_class: int, seed: int = 0) -> dict:
    """Held-out features per class, train digits (8×8 [0, 16]) per class, and the blur σ = 0.5
    class-wise Fréchet reference at ``n_per_class`` (per class)."""
    clf = default_digit_classifier()
    test = load_digits_images(8, "test")
    train = load_digits_images(8, "train")
    g = torch.Generator().manual_seed(seed)
    held, fd_blur = {}, []
    for k in range(10):
        held[k] = clf.features(digits_to_8x8(test.images[test.labels == k]))
        real_k = train.images[train.labels == k]
        pick = real_k[torch.randperm(len(real_k), generator=g)[:n_per_class]]
        fd_blur.append(frechet_distance_from_features(
            clf.features(digits_to_8x8(gaussian_blur(pick, 0.5))), held[k]))
    return {"heldout_features": held, "train_x8": digits_to_8x8(train.images),
            "train_labels": train.labels, "class_fd_blur": fd_blur}


def digit_guidance_scores(samples: torch.Tensor, requested: torch.Tensor, *,
                          frechet: bool = True) -> dict:
    """Accuracy, confidence, spread and (``frechet``) class-wise Fréchet distance of digit
    ``samples [N, 1, H, W]`` in [−1, 1] (8×8 or 16×16) that were asked to be ``requested [N]``.

    The Fréchet distance needs every digit 0–9 requested at least twice (equal counts are best:
    the blur reference is drawn at the smallest count); with fewer, ``class_fd`` is left out.
    """
    clf = default_digit_classifier()
    x8 = digits_to_8x8(samples)
    proba = clf.predict_proba(x8)
    req = torch.as_tensor(requested).long().numpy()
    counts = np.bincount(req, minlength=10)
    refs = _digit_class_refs(max(2, int(counts.min())))
    out = {
        "accuracy": round(float((proba.argmax(1) == req).mean()), 4),
        "accuracy_per_class": [round(float((proba.argmax(1)[req == k] == k).mean()), 3)
                               if counts[k] else None for k in range(10)],
        "requested_probability": round(float(proba[np.arange(len(req)), req].mean()), 4),
        "spread": round(spread_ratio(x8, torch.as_tensor(req), refs["train_x8"],
                                     refs["train_labels"]), 4),
    }
    if frechet and counts.min() >= 2:
        feats = clf.features(x8)
        fd = [frechet_distance_from_features(feats[req == k], refs["heldout_features"][k])
              for k in range(10)]
        out.update({
            "class_fd": round(float(np.mean(fd)), 3),
            "class_fd_per_class": [round(v, 2) for v in fd],
            "class_fd_blur_0.5": round(float(np.mean(refs["class_fd_blur"])), 3),
            "class_fd_blur_0.5_per_class": [round(v, 2) for v in refs["class_fd_blur"]],
        })
    return out


def guided_samples(model, schedule, labels: torch.Tensor, scale: float | torch.Tensor,
                   x_T: torch.Tensor, *, seed: int = 0, batch: int = 500,
                   **sampler) -> torch.Tensor:
    """Guided samples for ``labels [N]`` from ``x_T [N, ...]``, in batches of ``batch``
    (``scale``: one number or per-sample ``[N]``; ``sampler``: :func:`sample_final`'s keywords)."""
    from ..sampling import GuidedModel, sample_final

    out = []
    for i in range(0, len(x_T), batch):
        s = scale[i:i + batch] if isinstance(scale, torch.Tensor) else scale
        guided = GuidedModel(model, labels[i:i + batch], s)
        out.append(sample_final(guided, schedule, x_T[i:i + batch],
                                generator=torch.Generator().manual_seed(seed + i), **sampler))
    return torch.cat(out)
