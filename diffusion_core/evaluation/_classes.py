"""Classifier-based scores shared by the image judges (digits, shapes)."""

from __future__ import annotations

import numpy as np


def class_scores(proba: np.ndarray, n_classes: int) -> dict[str, object]:
    """``confidence`` (mean top-class probability), ``class_entropy`` (nats, of the
    predicted-class histogram) and ``class_counts`` from class probabilities ``[N, n_classes]``."""
    counts = np.bincount(proba.argmax(axis=1), minlength=n_classes)
    p = counts[counts > 0] / counts.sum()
    return {
        "confidence": float(proba.max(axis=1).mean()),
        "class_entropy": max(0.0, float(-(p * np.log(p)).sum())),
        "class_counts": [int(c) for c in counts],
    }
