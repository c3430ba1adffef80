"""Tests for diffusion_core.data.synthetic: colour gradients and shapes."""

from __future__ import annotations

import pytest
import torch

from diffusion_core.data.synthetic import (
    SHAPE_CLASSES,
    SHAPE_MIN_CONTRAST,
    gradient_weight_maps,
    make_gradients,
    make_shapes,
)


def test_make_gradients_follows_its_definition() -> None:
    g = make_gradients(64, 16, seed=0)
    assert g.shape == (64, 3, 16, 16) and g.dtype == torch.float32
    assert g.min() >= -1 and g.max() <= 1
    assert torch.equal(g, make_gradients(64, 16, seed=0))
    assert not torch.equal(g, make_gradients(64, 16, seed=1))
    # Diagonal layout (the colour-gradient tutorial's): c0 at the top-left corner, c1 at the
    # bottom-right, and the centre-symmetric pixel pairs average to (c0 + c1) / 2.
    d = make_gradients(8, 16, seed=0, directions="diagonal")
    mid = (d[..., 0, 0] + d[..., -1, -1]) / 2
    torch.testing.assert_close(d[..., 0, -1], mid)
    torch.testing.assert_close((d[..., 3, 5] + d[..., 12, 10]) / 2, mid)
    maps = gradient_weight_maps(16, 16)
    assert maps.shape == (4, 16, 16) and maps.min() == 0 and maps.max() == 1


def test_make_shapes_follows_its_definition() -> None:
    x, y = make_shapes(400, 16, seed=0)
    assert x.shape == (400, 3, 16, 16) and x.dtype == torch.float32
    assert y.shape == (400,) and y.dtype == torch.int64
    assert x.min() >= -1 and x.max() <= 1
    counts = torch.bincount(y, minlength=4)
    assert len(counts) == len(SHAPE_CLASSES) == 4
    assert counts.min() >= 70  # uniform classes: 100 ± 3 standard deviations
    x2, y2 = make_shapes(400, 16, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, make_shapes(400, 16, seed=1)[0])
    # Two colours per image: the background, shared by at least 3 of the 4 corners (the shape's
    # box lies inside the image and spans at most 80 % of its side, so it reaches at most one
    # corner), and the pixel colour farthest from it; every pixel is a mix of the two, some
    # strictly in between (anti-aliased edges), and they differ by ≥ SHAPE_MIN_CONTRAST.
    pix = x.reshape(400, 3, -1)
    strictly_between = 0
    for i in range(400):
        corners = pix[i][:, [0, 15, 240, 255]]
        # the background is the colour shared by most corners
        d = (corners[:, :, None] - corners[:, None, :]).norm(dim=0)
        bg = corners[:, int((d < 1e-6).sum(1).argmax())]
        far = (pix[i] - bg[:, None]).norm(dim=0)
        fg = pix[i][:, int(far.argmax())]
        assert (fg - bg).norm() >= SHAPE_MIN_CONTRAST - 1e-5
        m = ((pix[i] - bg[:, None]) * (fg - bg)[:, None]).sum(0) / (fg - bg).pow(2).sum()
        fit = bg[:, None] + m[None] * (fg - bg)[:, None]
        assert (pix[i] - fit).abs().max() < 1e-4 and m.min() > -1e-4 and m.max() < 1 + 1e-4
        strictly_between += int(((m > 0.05) & (m < 0.95)).sum())
    assert strictly_between > 400 * 4  # anti-aliased edge pixels, several per shape


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n": 0}, "n"), ({"n": 2.5}, "n"), ({"n": 4, "size": 4}, "size"),
     ({"n": 4, "size": True}, "size"), ({"n": 4, "seed": -1}, "seed")],
)
def test_make_shapes_rejects_bad_arguments(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        make_shapes(**kwargs)
