"""Tests for diffusion_core.data.photos: scikit-learn's sample photos."""

from __future__ import annotations

import torch

from diffusion_core.data.photos import sample_photos


def test_sample_photos() -> None:
    photos = sample_photos(32)
    assert set(photos) == {"china", "flower"}
    for x in photos.values():
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1
