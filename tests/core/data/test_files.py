"""Tests for diffusion_core.data.files: the user's image files, folders, npz and IDX files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.data.files import (
    load_idx_images,
    load_image_file,
    load_image_folder,
    load_npz_images,
)


def test_load_png_rgb_exact(tmp_path) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    x, notes = load_image_file(tmp_path / "a.png")
    assert x.shape == (3, 10, 12) and notes == []
    torch.testing.assert_close(x, torch.from_numpy(arr / 127.5 - 1).float().permute(2, 0, 1))
    # PIL objects work too.
    y, _ = load_image_file(Image.fromarray(arr))
    assert torch.equal(x, y)


def test_load_png_rgba_composited_on_white(tmp_path) -> None:
    arr = np.zeros((4, 4, 4), dtype=np.uint8)
    arr[..., 0] = 255  # red
    arr[:2, :, 3] = 255  # top half opaque, bottom transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    x, notes = load_image_file(tmp_path / "a.png")
    assert x.shape == (3, 4, 4)
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    torch.testing.assert_close(x[:, 3, 0], torch.tensor([1.0, 1.0, 1.0]))
    assert any("white" in n for n in notes)


def test_load_greyscale_and_16_bit(tmp_path) -> None:
    grey = np.array([[0, 128], [255, 64]], dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    x, _ = load_image_file(tmp_path / "g.png", mode="L")
    assert x.shape == (1, 2, 2)
    torch.testing.assert_close(x[0], torch.from_numpy(grey / 127.5 - 1).float())
    rgb, _ = load_image_file(tmp_path / "g.png", mode="RGB")
    assert rgb.shape == (3, 2, 2) and torch.equal(rgb[0], rgb[2])

    deep = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    x, notes = load_image_file(tmp_path / "d.png", mode="L")
    torch.testing.assert_close(x[0], torch.from_numpy(deep / 65535.0 * 2 - 1).float())
    assert any("16-bit" in n for n in notes)


def test_large_image_is_downscaled_with_a_note(tmp_path) -> None:
    Image.new("RGB", (3000, 1000), (10, 200, 30)).save(tmp_path / "big.png")
    x, notes = load_image_file(tmp_path / "big.png", max_side=256)
    assert x.shape == (3, 85, 256)
    torch.testing.assert_close(x[:, 40, 100], torch.tensor([10, 200, 30]) / 127.5 - 1)
    assert any("downscaled" in n for n in notes)
    x, _ = load_image_file(tmp_path / "big.png", max_side=256, center_crop=True)
    assert x.shape == (3, 256, 256)
    with pytest.raises(ValueError, match="max_pixels"):
        load_image_file(tmp_path / "big.png", max_pixels=1_000_000)


def test_non_images_are_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello, not an image\n")
    with pytest.raises(ValueError, match="is not an image"):
        load_image_file(tmp_path / "notes.txt")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])
    with pytest.raises(ValueError):
        load_image_file(tmp_path / "cut.png")
    with pytest.raises(FileNotFoundError):
        load_image_file(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="mode"):
        load_image_file(tmp_path / "notes.txt", mode="CMYK")


def test_load_image_folder(tmp_path) -> None:
    Image.new("RGB", (20, 10), (255, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    Image.new("L", (8, 8), 0).save(tmp_path / "sub" / "b.jpg")
    (tmp_path / "readme.txt").write_text("skip me")
    x = load_image_folder(tmp_path, 8, 3)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x[0, :, 4, 4], torch.tensor([1.0, -1.0, -1.0]))
    assert load_image_folder(tmp_path, 4, 1).shape == (2, 1, 4, 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image"):
        load_image_folder(tmp_path / "empty", 8, 3)


def test_load_npz_uint8_and_float(tmp_path) -> None:
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)  # channels last
    np.savez(tmp_path / "u8.npz", other=np.zeros(3), images=u8)
    x = load_npz_images(tmp_path / "u8.npz")
    assert x.shape == (5, 3, 6, 6)
    torch.testing.assert_close(x, torch.from_numpy(u8 / 127.5 - 1).float().permute(0, 3, 1, 2))

    unit = rng.random((4, 1, 6, 6)).astype(np.float32)  # channels first, [0, 1]
    np.savez(tmp_path / "f.npz", unit)
    x = load_npz_images(tmp_path / "f.npz", size=3, channels=3)
    assert x.shape == (4, 3, 3, 3)
    x = load_npz_images(tmp_path / "f.npz")
    torch.testing.assert_close(x, torch.from_numpy(unit * 2 - 1))

    signed = unit * 2 - 1  # has negatives: kept as is
    np.savez(tmp_path / "s.npz", images=signed)
    torch.testing.assert_close(load_npz_images(tmp_path / "s.npz"), torch.from_numpy(signed))

    np.savez(tmp_path / "bad.npz", images=np.full((2, 4, 4), 7.5))
    with pytest.raises(ValueError, match="expected"):
        load_npz_images(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_npz_images(tmp_path / "obj.npz")


def _write_idx(path, images: np.ndarray, magic: int = 2051) -> None:
    n, h, w = images.shape
    payload = struct.pack(">iiii", magic, n, h, w) + images.astype(np.uint8).tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def test_load_idx_images(tmp_path) -> None:
    imgs = np.random.default_rng(2).integers(0, 256, (3, 5, 4), dtype=np.uint8)
    expected = torch.from_numpy(imgs / 127.5 - 1).float().unsqueeze(1)
    _write_idx(tmp_path / "t-images-idx3-ubyte", imgs)
    _write_idx(tmp_path / "t-images-idx3-ubyte.gz", imgs)
    torch.testing.assert_close(load_idx_images(tmp_path / "t-images-idx3-ubyte"), expected)
    torch.testing.assert_close(load_idx_images(tmp_path / "t-images-idx3-ubyte.gz"),
                               expected)
    assert load_idx_images(tmp_path / "t-images-idx3-ubyte", size=8).shape == (3, 1, 8, 8)
    assert len(load_idx_images(tmp_path / "t-images-idx3-ubyte", max_images=2)) == 2
    _write_idx(tmp_path / "labels", imgs, magic=2049)
    with pytest.raises(ValueError, match="2051"):
        load_idx_images(tmp_path / "labels")
    (tmp_path / "short").write_bytes((tmp_path / "t-images-idx3-ubyte").read_bytes()[:30])
    with pytest.raises(ValueError, match="truncated"):
        load_idx_images(tmp_path / "short")
