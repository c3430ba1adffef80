"""The user's own images for training: several files or a zip, mixed sizes and modes, resized to
one square size; non-images skipped with a message; empty, hostile or oversized zips refused."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core.data import ImageSet, UserImageSet, load_image_files, load_image_zip

RED, BLUE = (255, 0, 0), (0, 0, 255)
GREY16 = 16384  # a 16-bit value: 16384 / 65535 → 2 · 0.25 − 1 ≈ −0.5


def _images() -> dict[str, Image.Image]:
    """Four modes, four sizes (wide, small, tall, square)."""
    rgba = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # left half transparent → white
    rgba.paste((*RED, 255), (20, 0, 40, 20))  # right half opaque red
    grey = Image.new("L", (10, 10), 0)  # smaller than 16×16: enlarged
    sixteen = Image.fromarray(np.full((30, 24), GREY16, dtype=np.uint16))  # mode I;16
    palette = Image.new("RGB", (64, 64), BLUE).convert("P", palette=Image.Palette.ADAPTIVE)
    return {"a_rgba.png": rgba, "b_grey.png": grey, "c_16bit.png": sixteen,
            "d_palette.png": palette}


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def upload(tmp_path):
    """The four images as files, plus a text file and a broken PNG."""
    paths = []
    for name, img in _images().items():
        img.save(tmp_path / name)
        paths.append(tmp_path / name)
    assert Image.open(tmp_path / "c_16bit.png").mode == "I;16"
    assert Image.open(tmp_path / "d_palette.png").mode == "P"
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    return paths + [tmp_path / "notes.txt", tmp_path / "broken.png"]


def _check_values(x: torch.Tensor) -> None:
    """The known colours of :func:`_images` in a ``[4, 3, 16, 16]`` batch."""
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    # RGBA 40×20 → central 20×20 square: columns 10..19 transparent (white), 20..29 red.
    torch.testing.assert_close(x[0, :, 8, 2], torch.ones(3))
    torch.testing.assert_close(x[0, :, 8, 13], torch.tensor([1.0, -1.0, -1.0]))
    assert (x[1] == -1).all()  # black greyscale, replicated to three channels
    torch.testing.assert_close(x[2], torch.full_like(x[2], 2 * GREY16 / 65535 - 1))
    torch.testing.assert_close(x[3], torch.tensor([-1.0, -1.0, 1.0]).view(3, 1, 1).expand(3, 16,
                                                                                          16))


def test_files_of_mixed_sizes_and_modes(upload):
    s = load_image_files(upload, size=16, channels=3)
    assert isinstance(s, ImageSet) and isinstance(s, UserImageSet) and s.labels is None
    _check_values(s.images)
    assert s.sources == ("a_rgba.png", "b_grey.png", "c_16bit.png", "d_palette.png")
    assert s.skipped == (("notes.txt", "not an image file"),
                         ("broken.png", "could not be read as an image"))
    msg = s.message
    assert msg.startswith("Loaded 4 images as 3×16×16 (colour).")
    for words in ("1 image: transparent pixels composited on white",
                  "1 image: 16-bit greyscale scaled by 1/65535",
                  "2 images were not square: the central square was used",
                  "1 image was smaller than 16×16: enlarged",
                  "Skipped 2 files: notes.txt (not an image file), broken.png (could not"):
        assert words in msg, words
    grey = load_image_files(upload[:4], size=32, channels=1)
    assert grey.images.shape == (4, 1, 32, 32) and grey.skipped == ()
    red_luma = 2 * 0.299 - 1  # ITU-R 601-2 luma of pure red
    assert abs(float(grey.images[0, 0, 16, 28]) - red_luma) < 0.01
    assert float(grey.images[0, 0, 16, 2]) == pytest.approx(1.0, abs=1e-5)


def test_zip_with_folders_equals_the_files(upload, tmp_path):
    z = tmp_path / "mine.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("set/", b"")
        for i, p in enumerate(upload[:4]):
            zf.writestr(f"set/{'sub/' * i}{p.name}", p.read_bytes())  # nested folders
        zf.writestr("set/readme.md", "my digits")
        zf.writestr("__MACOSX/set/._a_rgba.png", b"\x00\x05\x16\x07junk")
        zf.writestr("set/.DS_Store", b"\x00\x00\x00\x01Bud1")
    seen = []
    s = load_image_zip(z, size=16, channels=3, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]  # image members only
    _check_values(s.images)
    assert s.sources[0] == "set/a_rgba.png" and s.sources[3] == "set/sub/sub/sub/d_palette.png"
    assert s.skipped == (("set/readme.md", "not an image file"),)  # metadata silently ignored
    torch.testing.assert_close(s.images, load_image_files(upload[:4], size=16, channels=3).images,
                               rtol=0, atol=0)


def test_empty_and_non_image_uploads_get_a_message(upload, tmp_path):
    with pytest.raises(ValueError, match="holds no files: choose a few image files"):
        load_image_files([], size=16, channels=3)
    with pytest.raises(ValueError, match=r"no image that can be read: notes\.txt \(not an image"
                                         r" file\), broken\.png \(could not be read"):
        load_image_files(upload[4:], size=16, channels=3)
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(ValueError, match="holds no files"):
        load_image_zip(empty, size=16, channels=3)
    texts = tmp_path / "texts.zip"
    with zipfile.ZipFile(texts, "w") as zf:
        zf.writestr("a.txt", "hello")
        zf.writestr("inner.zip", b"PK\x05\x06" + bytes(18))
    with pytest.raises(ValueError, match=r"texts\.zip holds no image that can be read: a\.txt"):
        load_image_zip(texts, size=16, channels=3)
    with pytest.raises(ValueError, match=r"notes\.txt is not a zip file"):
        load_image_zip(upload[4], size=16, channels=3)
    with pytest.raises(ValueError, match="size"):
        load_image_files(upload, size=1, channels=3)
    with pytest.raises(ValueError, match="channels"):
        load_image_files(upload, size=16, channels=4)
    with pytest.raises(ValueError, match="5 image files: more than the limit of 3"):
        load_image_files(upload, size=16, channels=3, max_images=3)
    big = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(big)
    s = load_image_files([big, upload[0]], size=16, channels=1, max_pixels=50_000)
    assert s.sources == ("a_rgba.png",) and s.skipped == (("big.png", "too many pixels"),)


def _zip_with(path, names: list[str], data: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        for n in names:
            zf.writestr(n, data)
    return path


def test_hostile_zips_are_refused(tmp_path):
    png = _png(Image.new("L", (8, 8), 255))
    for i, (name, match) in enumerate([("../escape.png", "outside the zip"),
                                       ("ok/../../escape.png", "outside the zip"),
                                       ("/abs/x.png", "absolute path")]):
        z = _zip_with(tmp_path / f"t{i}.zip", ["fine.png", name], png)
        with pytest.raises(ValueError, match=f"t{i}.zip: unsafe member name .*{match}"):
            load_image_zip(z, size=16, channels=1)
    z = _zip_with(tmp_path / "many.zip", [f"{i}.png" for i in range(12)], png)
    with pytest.raises(ValueError, match="holds 12 entries, more than the limit of 10"):
        load_image_zip(z, size=16, channels=1, max_members=10)
    assert len(load_image_zip(z, size=16, channels=1)) == 12
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fine.png", png)
        zf.writestr("huge.png", bytes(3 * 2**20))  # 3 MB of zeros deflate to ≈ 3 kB
    assert bomb.stat().st_size < 20_000
    with pytest.raises(ValueError, match=r"bomb\.zip: member 'huge\.png' unpacks to 3\.0 MB, "
                                         r"more than the limit of 2\.0 MB per file"):
        load_image_zip(bomb, size=16, channels=1, max_bytes=2 * 2**20)
    two = _zip_with(tmp_path / "two.zip", ["a.png", "b.png"], bytes(3 * 2**19))  # 2 × 1.5 MB
    with pytest.raises(ValueError, match=r"two\.zip unpacks to more than 2\.0 MB \(the limit "
                                         r"for the whole zip\)"):
        load_image_zip(two, size=16, channels=1, max_bytes=2 * 2**20)
    s = load_image_zip(bomb, size=16, channels=1)  # within the default cap: huge.png is junk
    assert s.sources == ("fine.png",) and s.skipped == (("huge.png",
                                                         "could not be read as an image"),)
