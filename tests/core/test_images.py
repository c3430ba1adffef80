"""Image helpers: [−1, 1] ↔ uint8, grids, lossless PNG, GIF with a held last frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.images import make_grid, save_gif, save_png, to_uint8


def test_to_uint8_maps_the_range_and_clips():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255]  # 127.5 rounds to even: 128


def test_grid_layout_padding_and_scale():
    imgs = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 1.0, -1.0)])  # 3 grey tiles
    g = make_grid(imgs, pad=1, scale=2, pad_value=1.0)
    # ⌈√3⌉ = 2 columns, 2 rows; each tile 2·2 px plus 1 px of padding on each side
    assert g.shape == (2 * (4 + 2), 2 * (4 + 2), 3) and g.dtype == np.uint8
    assert (g[1:5, 1:5] == 0).all()  # first tile black
    assert (g[1:5, 7:11] == 255).all()  # second tile white
    assert (g[7:11, 7:11] == 255).all()  # the missing fourth tile is padding
    assert (g[0] == 255).all()  # padding row


def test_grid_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        make_grid(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        make_grid(torch.zeros(1, 2, 4, 4))


def test_png_is_lossless_and_gif_holds_the_last_frame(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    png = save_png(a, tmp_path / "a.png")
    assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), a)
    frames = [np.full((6, 6, 3), v, np.uint8) for v in (0, 120, 255)]
    gif = save_gif(frames, tmp_path / "a.gif", duration_ms=50, hold_last_ms=900)
    with Image.open(gif) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations == [50, 50, 900]
    with pytest.raises(ValueError, match="at least one frame"):
        save_gif([], tmp_path / "b.gif")
