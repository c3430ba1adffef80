"""Tests for diffusion_core.data.files: the user's image files, folders, npz and IDX files."""

from __future__ import annotations

import gzip
import struct
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image, ImageChops, ImageOps

from diffusion_core.data import files
from diffusion_core.data.files import (
    load_idx_images,
    load_image_file,
    load_image_folder,
    load_npz_images,
)
from diffusion_core.data.imageset import _resize


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


# --- Large uploads: reduced while decoding (JPEG draft, Image.reduce), never full-size float ---

def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """A smooth random colour field (features ~100 px) plus pixel-level noise (±12 levels)."""
    rng = np.random.default_rng(seed)
    smooth = rng.integers(30, 226, (max(2, h // 100), max(2, w // 100), 3), dtype=np.uint8)
    img = Image.fromarray(smooth).resize((w, h), Image.Resampling.BILINEAR)
    patch = rng.integers(116, 141, (251, 257, 3), dtype=np.uint8)  # tiled: cheap to make
    noise = np.tile(patch, (h // 251 + 1, w // 257 + 1, 1))[:h, :w]
    return ImageChops.add(img, Image.fromarray(noise), scale=1.0, offset=-128)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "photo.jpg"
    _photo(6000, 4000).save(path, quality=90)
    return path


def _reference(source, **kw) -> tuple[torch.Tensor, list[str]]:
    """The plain full-size path: decode everything, float, crop and resize in torch."""
    kw = {"max_side": 256, "mode": "RGB", "center_crop": False, "max_pixels": 10**9} | kw
    return files._load(source, early=False, **kw)


@pytest.fixture
def float_sizes(monkeypatch) -> list[tuple[str, tuple[int, int]]]:
    """Records (mode, size) of every PIL image that reaches the float conversion."""
    seen: list[tuple[str, tuple[int, int]]] = []
    real = files._to_unit

    def spy(img, *args, **kwargs):
        seen.append((img.mode, img.size))
        return real(img, *args, **kwargs)

    monkeypatch.setattr(files, "_to_unit", spy)
    return seen


def test_large_jpeg_is_reduced_while_decoding(big_jpeg, float_sizes) -> None:
    full_float_bytes = 6000 * 4000 * 3 * 4
    tracemalloc.start()
    try:
        x, notes = load_image_file(big_jpeg, max_side=256)
        new_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        ref, ref_notes = _reference(big_jpeg)
        ref_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == ref.shape == (3, 171, 256) and notes == ref_notes
    assert notes == ["downscaled from 6000×4000 to 256×171 (longest side ≤ 256)"]
    assert (x - ref).abs().mean() <= 0.01 and (x - ref).abs().max() <= 0.1
    # The JPEG decoder did the reduction (1/8 scale, no Image.reduce needed), and what became
    # float is still ≥ 2 × max_side: quality kept.
    (_, (w, h)), (_, (rw, rh)) = float_sizes
    assert (w, h) == (750, 500) and (rw, rh) == (6000, 4000)
    # tracemalloc sees numpy and Python buffers (not PIL's or torch's C allocations): the
    # full-size path's float32 copy shows up, the reduced path stays small. PIL's decode buffer
    # is 1/64 of the pixels (the size check above); torch only ever sees the reduced array.
    assert ref_peak >= full_float_bytes
    assert new_peak <= full_float_bytes / 25


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_rotated_large_jpeg_is_upright_and_centre_cropped(tmp_path, orientation) -> None:
    # Upright: 1200×800, red rises left → right, green rises top → bottom.
    xs = np.linspace(0, 255, 1200, dtype=np.float32)
    ys = np.linspace(0, 255, 800, dtype=np.float32)
    up = np.zeros((800, 1200, 3), dtype=np.uint8)
    up[..., 0] = xs[None, :].round().astype(np.uint8)
    up[..., 1] = ys[:, None].round().astype(np.uint8)
    upright = Image.fromarray(up)
    # Store it so that applying the EXIF orientation gives the upright image back.
    inverse = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
    stored = upright.transpose(files._ORIENTATION[inverse[orientation]]) if orientation > 1 \
        else upright
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    stored.save(tmp_path / "r.jpg", quality=95, exif=exif)
    assert ImageOps.exif_transpose(Image.open(tmp_path / "r.jpg")).size == (1200, 800)

    # Whole image: JPEG draft 1/8, then Image.reduce(2).
    x, notes = load_image_file(tmp_path / "r.jpg", max_side=32)
    ref, _ = _reference(tmp_path / "r.jpg", max_side=32)
    assert x.shape == ref.shape == (3, 21, 32)
    assert notes == ["downscaled from 1200×800 to 32×21 (longest side ≤ 32)"]
    assert (x - ref).abs().mean() <= 0.01
    expect = _resize(torch.from_numpy(up / 127.5 - 1).float().permute(2, 0, 1)[None], 21, 32)
    assert (x - expect[0]).abs().mean() <= 0.02

    # Central square: JPEG draft 1/8, cropped (no Image.reduce needed).
    x, notes = load_image_file(tmp_path / "r.jpg", max_side=32, center_crop=True)
    ref, _ = _reference(tmp_path / "r.jpg", max_side=32, center_crop=True)
    assert x.shape == ref.shape == (3, 32, 32)
    assert notes[0] == "centre-cropped from 1200×800 to 800×800"
    assert (x - ref).abs().mean() <= 0.01
    # The central square: red spans x = 200..1000 of 1200, i.e. 1/6 .. 5/6 of full scale.
    red = (x[0].mean(0) + 1) / 2
    assert abs(float(red[0]) - 1 / 6) < 0.02 and abs(float(red[-1]) - 5 / 6) < 0.02
    assert torch.all(red[1:] > red[:-1]) and torch.all(x[1].mean(1)[1:] > x[1].mean(1)[:-1])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_crop_box_mapping_is_exact_without_reduction(tmp_path, orientation) -> None:
    """Small image, no reduction: the early crop (in the file's stored orientation) gives
    exactly the pixels of transposing first and cropping after."""
    arr = np.random.default_rng(orientation).integers(0, 256, (9, 14, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    Image.fromarray(arr).save(tmp_path / "o.png", exif=exif)
    x, _ = load_image_file(tmp_path / "o.png", max_side=None, center_crop=True)
    upright = ImageOps.exif_transpose(Image.open(tmp_path / "o.png"))
    y, _ = load_image_file(upright, max_side=None, center_crop=True)
    ref, _ = _reference(tmp_path / "o.png", max_side=None, center_crop=True)
    assert x.shape == (3, 9, 9) and torch.equal(x, y) and torch.equal(x, ref)


def test_large_png_is_reduced_without_draft(tmp_path, float_sizes) -> None:
    _photo(2400, 1600, seed=1).save(tmp_path / "p.png", compress_level=1)
    x, notes = load_image_file(tmp_path / "p.png", max_side=96)
    ref, ref_notes = _reference(tmp_path / "p.png", max_side=96)
    assert x.shape == (3, 64, 96) and notes == ref_notes
    assert (x - ref).abs().mean() <= 0.01
    assert float_sizes[0] == ("RGB", (200, 134))  # Image.reduce(12): ≥ 2 × 96 kept


def test_large_rgba_png_composited_on_white(tmp_path, float_sizes) -> None:
    arr = np.zeros((2000, 3000, 4), dtype=np.uint8)
    arr[..., 0] = 255  # red
    arr[..., 2] = np.linspace(0, 255, 3000).round().astype(np.uint8)[None, :]  # blue rises
    arr[..., 3] = np.linspace(0, 255, 3000).round().astype(np.uint8)[None, :]  # alpha rises
    arr[:1000, :, 3] = 255  # top half opaque
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png", compress_level=1)
    x, notes = load_image_file(tmp_path / "t.png", max_side=128)
    ref, ref_notes = _reference(tmp_path / "t.png", max_side=128)
    assert x.shape == (3, 85, 128) and notes == ref_notes
    assert "transparent pixels composited on white" in notes
    assert (x - ref).abs().max() <= 0.02
    assert float_sizes[0][0] == "RGBA" and max(float_sizes[0][1]) < 300
    # Bottom half: red on white with alpha a → (1, 1 − a·(1 − b), 1 − a + a·b) where b = a.
    a = (torch.arange(128) + 0.5) / 128
    torch.testing.assert_close(x[0, 60:], torch.ones(25, 128))
    torch.testing.assert_close(x[1, 70], 2 * (1 - a) - 1, atol=0.03, rtol=0)
    torch.testing.assert_close(x[2, 70], 2 * (1 - a + a * a) - 1, atol=0.03, rtol=0)


def test_large_16_bit_png_still_scaled(tmp_path, float_sizes) -> None:
    deep = np.linspace(0, 65535, 3000).round().astype(np.uint16)[None, :].repeat(2000, 0)
    Image.fromarray(deep).save(tmp_path / "d.png", compress_level=1)
    x, notes = load_image_file(tmp_path / "d.png", max_side=128, mode="L")
    ref, ref_notes = _reference(tmp_path / "d.png", max_side=128, mode="L")
    assert x.shape == (1, 85, 128) and notes == ref_notes
    assert "16-bit greyscale scaled by 1/65535" in notes
    assert (x - ref).abs().max() <= 0.01
    assert float_sizes[0] == ("I", (273, 182))  # reduced as 32-bit I (reduce lacks I;16)
    expect = 2 * (torch.arange(128) + 0.5) / 128 - 1
    torch.testing.assert_close(x[0, 40], expect, atol=0.01, rtol=0)


def test_centre_crop_of_large_image_is_the_central_square(tmp_path, float_sizes) -> None:
    arr = np.zeros((2000, 6000, 3), dtype=np.uint8)
    arr[..., 0] = 255  # red outside the central square ...
    arr[:, 2000:4000] = (0, 255, 0)  # ... green inside
    Image.fromarray(arr).save(tmp_path / "w.png", compress_level=1)
    x, notes = load_image_file(tmp_path / "w.png", max_side=100, center_crop=True)
    assert x.shape == (3, 100, 100)
    assert notes == ["centre-cropped from 6000×2000 to 2000×2000",
                     "downscaled from 2000×2000 to 100×100 (longest side ≤ 100)"]
    green = torch.tensor([-1.0, 1.0, -1.0])[:, None, None].expand(3, 100, 100)
    torch.testing.assert_close(x, green)
    assert float_sizes[0] == ("RGB", (200, 200))  # only the square was reduced (factor 10)


def test_whole_image_statistics_survive_reduction(tmp_path) -> None:
    # 32-bit I: one pixel above 255 outside the central square → still read as 16-bit.
    ints = np.full((1000, 3000), 200, dtype=np.int32)
    ints[0, 0] = 300
    Image.fromarray(ints, "I").save(tmp_path / "i.tif")
    _, notes = load_image_file(tmp_path / "i.tif", max_side=64, center_crop=True)
    _, ref_notes = _reference(tmp_path / "i.tif", max_side=64, center_crop=True)
    assert notes == ref_notes and any("treated as 16-bit" in n for n in notes)
    # Float F: NaN outside the crop is still refused, naming the file.
    fl = np.full((1000, 3000), 0.5, dtype=np.float32)
    fl[999, 2999] = np.nan
    Image.fromarray(fl, "F").save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match=r"f\.tif.*NaN"):
        load_image_file(tmp_path / "f.tif", max_side=64, center_crop=True)
    # Float F with a range near float32's limit: rescaled, not overflowed to NaN.
    fl = np.full((1000, 3000), 3e38, dtype=np.float32)
    fl[:, :1400] = -3e38
    Image.fromarray(fl, "F").save(tmp_path / "huge.tif")
    x, notes = load_image_file(tmp_path / "huge.tif", max_side=64, mode="L")
    assert torch.isfinite(x).all() and x[0, 0, 0] == -1 and x[0, 0, -1] == 1
    assert any("rescaled" in n for n in notes)


def test_load_image_folder_reduces_large_photos(tmp_path, float_sizes) -> None:
    _photo(2400, 1600, seed=2).save(tmp_path / "a.jpg", quality=95)
    x = load_image_folder(tmp_path, 32, 3)
    ref, _ = _reference(tmp_path / "a.jpg", max_side=32, center_crop=True)
    assert x.shape == (1, 3, 32, 32) and (x[0] - ref).abs().mean() <= 0.01
    assert max(float_sizes[0][1]) <= 200  # 1/8 JPEG draft of the 1600 × 1600 square


@pytest.mark.parametrize("orientation", range(1, 9))
def test_box_mappings_follow_the_exif_transposes(orientation) -> None:
    """_file_box (upright → stored) and its use with _INVERSE (stored → upright) agree with
    PIL's transposes on an off-centre box."""
    stored = np.zeros((7, 11), dtype=np.uint8)
    stored[1:3, 2:7] = 255  # box (2, 1, 7, 3) in stored coordinates
    img = Image.fromarray(stored)
    upright = img.transpose(files._ORIENTATION[orientation]) if orientation > 1 else img
    ys, xs = np.nonzero(np.asarray(upright))
    up_box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert files._file_box(up_box, orientation, 11, 7) == (2, 1, 7, 3)
    uw, uh = upright.size
    assert files._file_box((2, 1, 7, 3), files._INVERSE[orientation], uw, uh) == up_box


def test_resize_box_is_the_torch_resize_of_the_cropped_region() -> None:
    x = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(files._resize_box(x, (0, 0, 60, 40), 9, 13), _resize(x, 9, 13))
    torch.testing.assert_close(files._resize_box(x, (10, 5, 50, 35), 7, 9),
                               _resize(x[..., 5:35, 10:50], 7, 9))
    # A fractional box is placed exactly: moving it by ¼ pixel along a ramp adds ¼.
    ramp = torch.arange(60, dtype=torch.float32).expand(1, 1, 40, 60)
    shift = (files._resize_box(ramp, (10.25, 0, 50.25, 40), 4, 4)
             - files._resize_box(ramp, (10, 0, 50, 40), 4, 4))
    torch.testing.assert_close(shift, torch.full_like(shift, 0.25), atol=0.005, rtol=0)
