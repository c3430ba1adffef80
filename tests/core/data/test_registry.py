"""Tests for diffusion_core.data.registry: the named image sets."""

from __future__ import annotations

import pytest
import torch

from diffusion_core.data.registry import IMAGE_DATASETS, is_image_dataset, load_image_dataset
from diffusion_core.data.synthetic import make_shapes


def test_image_dataset_registry() -> None:
    assert set(IMAGE_DATASETS) == {"digits", "digits8", "gradients", "shapes"}
    for name, spec in IMAGE_DATASETS.items():
        assert is_image_dataset(name)
        kw = {"n": 16} if name in ("gradients", "shapes") else {}
        s = load_image_dataset(name, **kw)
        assert s.shape == (spec.channels, spec.size, spec.size) and s.name == name
        assert s.images.min() >= -1 and s.images.max() <= 1
    shapes = load_image_dataset("shapes")
    assert len(shapes) == 2000 and shapes.labels is not None
    assert torch.equal(shapes.images, make_shapes(2000, 16, seed=0)[0])
    assert not is_image_dataset("moons")
    with pytest.raises(ValueError, match="digits"):
        load_image_dataset("mnist")
