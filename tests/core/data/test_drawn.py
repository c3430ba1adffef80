"""Tests for diffusion_core.data.drawn: a drawing → anchors → seeded points."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from diffusion_core.data.drawn import (
    ALPHA_DRAWN,
    MAX_ANCHORS,
    MAX_ZOOM,
    DrawnSpec,
    anchors_from_image,
)


def _canvas(h: int = 100, w: int = 100) -> np.ndarray:
    return np.zeros((h, w, 4), dtype=np.uint8)  # transparent: nothing drawn


def _dot(img: np.ndarray, row: int, col: int, alpha: int = 255) -> None:
    img[row, col] = (0, 114, 178, alpha)


def test_a_dot_at_a_known_pixel_lands_at_its_canvas_coordinate() -> None:
    img = _canvas(100, 100)
    for r, c in ((0, 0), (99, 99), (24, 74)):  # top-left, bottom-right, one more
        _dot(img, r, c)
    d = anchors_from_image(img, fit=False)
    got = {tuple(np.round(p, 6)) for p in d.anchors.tolist()}
    # x = (2(c + ½) − W)/S, y = (H − 2(r + ½))/S: y points up, row 0 is the top
    assert got == {(-0.99, 0.99), (0.99, -0.99), (0.49, 0.51)}
    assert d.pixels == 3 and d.scale == 1.0 and d.offset == (0.0, 0.0)
    # A wide canvas keeps shapes: one scale for both axes (the longer side spans (−1, 1)).
    wide = _canvas(50, 100)
    for r, c in ((0, 0), (49, 99), (25, 50)):
        _dot(wide, r, c)
    got = {tuple(np.round(p, 6)) for p in anchors_from_image(wide, fit=False).anchors.tolist()}
    assert got == {(-0.99, 0.49), (0.99, -0.49), (0.01, -0.01)}


def test_fit_centres_the_drawing_and_spans_minus_one_to_one_along_its_longer_axis() -> None:
    img = _canvas(200, 200)
    img[10:20, 120:180, 3] = 255  # a bar in the top-right corner: 60 wide, 10 high
    img[15, 150, 3] = ALPHA_DRAWN - 1  # under the threshold: not drawn
    d = anchors_from_image(img)
    a = d.anchors.astype(np.float64)
    lo, hi = a.min(axis=0), a.max(axis=0)
    np.testing.assert_allclose(hi[0] - lo[0], 2.0, atol=1e-6)  # the longer axis spans 2
    np.testing.assert_allclose((hi + lo) / 2, 0.0, atol=1e-6)  # centred
    np.testing.assert_allclose(hi[1] - lo[1], 2.0 * 9 / 59, atol=1e-6)  # aspect kept
    assert d.pixels == 600 - 1 and len(a) == 599
    np.testing.assert_allclose(d.scale, 2.0 / (2 * 59 / 200), rtol=1e-9)
    # A tiny scribble is magnified at most MAX_ZOOM times.
    tiny = _canvas(200, 200)
    tiny[100:103, 100:104, 3] = 255
    t = anchors_from_image(tiny)
    assert t.scale == MAX_ZOOM
    assert np.ptp(t.anchors[:, 0]) == pytest.approx(MAX_ZOOM * 2 * 3 / 200, rel=1e-5)


def test_thinning_keeps_at_most_max_anchors_deterministically_and_evenly() -> None:
    img = _canvas(300, 300)
    img[:, :150, 3] = 255  # 45,000 drawn pixels: the left half
    d1, d2 = anchors_from_image(img), anchors_from_image(img)
    assert len(d1.anchors) == MAX_ANCHORS and d1.pixels == 45_000
    assert np.array_equal(d1.anchors, d2.anchors)
    assert len({tuple(p) for p in d1.anchors.tolist()}) == MAX_ANCHORS  # no repeats
    # a uniform subset: the four quadrants of the fitted square hold ~500 each
    a = d1.anchors
    right, top = a[:, 0] > 0, a[:, 1] > 0
    counts = [int(((right == sx) & (top == sy)).sum()) for sx in (0, 1) for sy in (0, 1)]
    assert all(420 < c < 580 for c in counts), counts
    assert len(anchors_from_image(img, max_anchors=10).anchors) == 10


def test_a_boolean_mask_works_like_an_rgba_image() -> None:
    img = _canvas(64, 64)
    img[10:30, 5:9, 3] = 255
    a = anchors_from_image(img).anchors
    assert np.array_equal(anchors_from_image(img[:, :, 3] > 0).anchors, a)


@pytest.mark.parametrize(("image", "words"), [
    (_canvas(), "canvas is empty"),
    (np.where(np.arange(4) == 3, 255, 0).astype(np.uint8)[None, None].repeat(2, 1), "Only 2"),
    (np.zeros((10, 10, 3), np.uint8), "RGBA"),
    (np.zeros((10, 10, 4), np.float32), "RGBA"),
    ([[1, 2]], "image"),
    (None, "image"),
])
def test_bad_drawings_get_readable_errors(image, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        anchors_from_image(image)


def _spec(noise: float = 0.1, n: int = 30_000, seed: int = 7) -> DrawnSpec:
    anchors = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    return DrawnSpec.from_anchors(anchors, n, noise, seed)


def test_same_spec_same_points_and_another_seed_other_points() -> None:
    s = _spec(n=500)
    x = s.draw()
    assert x.shape == (500, 2) and x.dtype == torch.float32
    assert torch.equal(x, _spec(n=500).draw())
    assert _spec(n=500) == s and hash(_spec(n=500)) == hash(s)  # compared by value
    assert not torch.allclose(x, _spec(n=500, seed=8).draw())
    assert torch.equal(s.fresh(500, 7), x) and not torch.allclose(s.fresh(500, 1007), x)
    assert s.name == "drawn" and s.num_anchors == 3
    assert pickle.loads(pickle.dumps(s)) == s  # (sessions travel to worker processes)
    assert "anchor_bytes" not in repr(s)


def test_spread_statistics_match_the_noise_and_anchors_are_drawn_evenly() -> None:
    s = _spec(noise=0.1)
    x = s.draw().double()
    anchors = torch.tensor(s.anchors, dtype=torch.float64)
    nearest = torch.cdist(x, anchors).argmin(dim=1)  # anchors are ≥ 1.4 apart: no mix-ups
    resid = x - anchors[nearest]
    # per-axis std of the jitter: 0.1 (n = 30,000: its standard error is 0.04 %)
    np.testing.assert_allclose(resid.std(dim=0).numpy(), [0.1, 0.1], rtol=0.02)
    np.testing.assert_allclose(resid.mean(dim=0).numpy(), [0.0, 0.0], atol=0.003)
    share = torch.bincount(nearest, minlength=3).double() / len(x)
    np.testing.assert_allclose(share.numpy(), [1 / 3] * 3, atol=0.012)
    # noise 0: exactly the anchors
    assert set(map(tuple, _spec(noise=0.0, n=200).draw().tolist())) <= set(
        map(tuple, s.anchors.tolist()))


def test_bad_specs_are_refused() -> None:
    good = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="3..2000 anchors"):
        DrawnSpec.from_anchors(good[:2], 10, 0.1, 0)
    with pytest.raises(ValueError, match=r"\[m, 2\]"):
        DrawnSpec.from_anchors(np.zeros((5, 3)), 10, 0.1, 0)
    with pytest.raises(ValueError, match="NaN"):
        DrawnSpec.from_anchors(np.full((5, 2), np.nan), 10, 0.1, 0)
    with pytest.raises(ValueError, match="noise"):
        DrawnSpec.from_anchors(good, 10, -0.1, 0)
    with pytest.raises(ValueError, match="n must"):
        DrawnSpec.from_anchors(good, 0, 0.1, 0)
    with pytest.raises(ValueError, match="classes"):
        DrawnSpec.from_anchors(good, 10, 0.1, 0).draw_labelled()
