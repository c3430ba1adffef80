"""Tests for diffusion_core.evaluation.shapes: shape masks, the shape classifier, shape quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_core.data.synthetic import make_shapes
from diffusion_core.evaluation.shapes import default_shape_classifier, shape_masks, shape_quality

from ._images import gaussian_blur


def test_shape_masks_recover_the_coverage() -> None:
    x, _ = make_shapes(50, 16, seed=6)
    m, colours = shape_masks(x)
    assert m.shape == (50, 256) and colours.shape == (50, 6)
    # the fitted colours rebuild the image: pixel = bg · (1 − m) + fg · m
    fg, bg = colours[:, None, :3], colours[:, None, 3:]
    rebuilt = bg * (1 - m[:, :, None]) + fg * m[:, :, None]
    np.testing.assert_allclose(rebuilt, x.reshape(50, 3, 256).transpose(1, 2).numpy(),
                               atol=1e-4)
    assert (m.reshape(50, 16, 16)[:, 0, :].mean() < 0.5)  # the border is background


def test_shape_classifier_is_fitted_on_its_own_draw() -> None:
    clf = default_shape_classifier()
    assert clf.holdout_accuracy > 0.95
    assert clf.model.n_features_in_ == 256
    assert default_shape_classifier() is clf  # cached
    x, y = make_shapes(300, 16, seed=0)  # the U-Net's training draw: never fitted on
    assert (clf.predict_proba(x).argmax(1) == y.numpy()).mean() > 0.95


def test_shape_quality_ranks_calibration_references() -> None:
    g = torch.Generator().manual_seed(0)
    real, labels = make_shapes(300, 16, seed=50)
    blur = gaussian_blur(real.reshape(-1, 1, 16, 16), 1.0).reshape(real.shape)
    noisy = (real + 0.2 * torch.randn(real.shape, generator=g)).clamp(-1, 1)
    noise = torch.randn(real.shape, generator=g).clamp(-1, 1)
    q = {k: shape_quality(v) for k, v in
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
        shape_quality(torch.zeros(4, 3, 16, 8))
    with pytest.raises(ValueError, match="at least 2"):
        shape_quality(torch.zeros(1, 3, 16, 16))
