"""Tests for diffusion_core.data: 2D toy sets, image sets and user-file loaders."""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core import data

# ---------------------------------------------------------------------------------------------
# 2D toy sets
# ---------------------------------------------------------------------------------------------


def test_toy_names_cover_the_required_sets() -> None:
    required = {"moons", "circles", "swiss_roll", "spirals", "s_curve", "gaussians8",
                "checkerboard"}
    assert required <= set(data.TOY_DATASETS)


@pytest.mark.parametrize("name", data.TOY_DATASETS)
def test_make_2d_shape_determinism_and_extent(name: str) -> None:
    x = data.make_2d(name, 1500, seed=3)
    assert x.shape == (1500, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, data.make_2d(name, 1500, seed=3))
    assert not torch.allclose(x, data.make_2d(name, 1500, seed=4))
    assert x.abs().max() <= 1.5


@pytest.mark.parametrize("name", data.TOY_DATASETS)
def test_noise_free_set_spans_unit_box_along_its_longer_axis(name: str) -> None:
    # The fixed map puts the nominal support into [-1, 1] along the longer axis, centred.
    x = data.make_2d(name, 20_000, noise=0.0, seed=1)
    lo, hi = x.min(dim=0).values, x.max(dim=0).values
    assert x.abs().max() <= 1.0 + 1e-5
    assert 1.9 <= float((hi - lo).max()) <= 2.0 + 1e-5
    assert float((hi + lo).abs().max()) < 0.1  # centred
    # The map does not depend on the draw: a small draw sits inside the same box.
    assert data.make_2d(name, 7, noise=0.0, seed=9).abs().max() <= 1.0 + 1e-5


@pytest.mark.parametrize("name", data.TOY_DATASETS)
def test_data_coords_round_trip(name: str) -> None:
    x = data.make_2d(name, 500, seed=0)
    back = data.from_data_coords(data.to_data_coords(x, name), name)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-5)
    offset, scale = data.toy_scale(name)
    torch.testing.assert_close(data.to_data_coords(x, name),
                               x / scale + torch.tensor(offset, dtype=torch.float32))


def test_original_coordinates_match_the_generators() -> None:
    moons = data.to_data_coords(data.make_2d("moons", 5000, noise=0.0), "moons")
    torch.testing.assert_close(moons.min(0).values, torch.tensor([-1.0, -0.5]), atol=1e-3, rtol=0)
    torch.testing.assert_close(moons.max(0).values, torch.tensor([2.0, 1.0]), atol=1e-3, rtol=0)
    # Swiss roll columns (x, z) = t·(cos t, sin t): the radius is t ∈ [1.5π, 4.5π].
    roll = data.to_data_coords(data.make_2d("swiss_roll", 5000, noise=0.0), "swiss_roll")
    r = roll.norm(dim=1)
    assert r.min() >= 1.5 * math.pi - 1e-3 and r.max() <= 4.5 * math.pi + 1e-3
    ring = data.to_data_coords(data.make_2d("gaussians8", 200, noise=0.0), "gaussians8")
    torch.testing.assert_close(ring.norm(dim=1), torch.full((200,), 2.0))
    assert len(torch.unique(ring.round(decimals=4), dim=0)) == 8
    board = data.to_data_coords(data.make_2d("checkerboard", 2000), "checkerboard")
    cells = torch.floor((board + 4) / 2).long()
    assert board.abs().max() <= 4.0 + 1e-5 and ((cells.sum(1) % 2) == 0).all()


def test_noise_is_in_model_coordinates() -> None:
    clean = data.make_2d("gaussians8", 20_000, noise=0.0, seed=2)
    noisy = data.make_2d("gaussians8", 20_000, noise=0.1, seed=2)
    # Same centres (same draw), jitter std 0.1 per axis.
    assert abs(float((noisy - clean).std()) - 0.1) < 0.005


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_moons_and_circles_are_iid_samples_not_a_fixed_grid(name: str) -> None:
    # scikit-learn's make_moons / make_circles put points at evenly spaced angles, so two
    # noise-free draws of the same size are the same point set; ours must differ, and each
    # component must get a random (not exactly equal) share of the points.
    a = data.make_2d(name, 2000, noise=0.0, seed=1)
    b = data.make_2d(name, 2000, noise=0.0, seed=2)
    assert not torch.allclose(a.sort(dim=0).values, b.sort(dim=0).values, atol=1e-3)
    raw = data.to_data_coords(data.make_2d(name, 4000, noise=0.0, seed=3), name).double()
    if name == "moons":
        first = ((raw[:, 0] ** 2 + raw[:, 1] ** 2 - 1).abs() < 1e-4) & (raw[:, 1] >= -1e-6)
    else:
        first = (raw.norm(dim=1) - 1).abs() < 1e-4
    share = first.float().mean().item()
    assert share != 0.5 and abs(share - 0.5) < 0.05, share  # Binomial(4000, ½): sd 0.008


def test_make_2d_validation() -> None:
    with pytest.raises(ValueError, match="moons"):  # lists the valid names
        data.make_2d("nope")
    for n in (0, -5, 200_001, 2.5, True):
        with pytest.raises(ValueError, match="n must"):
            data.make_2d("moons", n)
    for noise in (-0.1, math.nan, math.inf, "0.1"):
        with pytest.raises(ValueError, match="noise"):
            data.make_2d("moons", 10, noise=noise)
    with pytest.raises(ValueError, match="seed"):
        data.make_2d("moons", 10, seed=-1)
    assert data.make_2d("circles", 1).shape == (1, 2)
    assert data.make_2d("moons", data.MAX_POINTS, seed=0).shape == (data.MAX_POINTS, 2)
    with pytest.raises(ValueError, match="points"):
        data.to_data_coords(torch.zeros(3, 3), "moons")


# ---------------------------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------------------------


def test_digits_split_is_disjoint_stratified_and_deterministic() -> None:
    train, test = data.digits_split_indices(seed=0, test_fraction=0.25)
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1797))
    _, labels = data._digits_raw()
    for c in range(10):
        n_c = int((labels == c).sum())
        assert abs(int((labels[test] == c).sum()) - 0.25 * n_c) <= 1
    again = data.digits_split_indices(seed=0, test_fraction=0.25)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    other = data.digits_split_indices(seed=1, test_fraction=0.25)
    assert not np.array_equal(other[1], test)
    with pytest.raises(ValueError, match="test_fraction"):
        data.digits_split_indices(test_fraction=1.0)


def test_load_digits_images_ranges_shapes_and_labels() -> None:
    train8 = data.load_digits_images(8, "train")
    raw, labels = data._digits_raw()
    train_idx, _ = data.digits_split_indices()
    assert train8.images.shape == (len(train_idx), 1, 8, 8) and train8.name == "digits8"
    torch.testing.assert_close(train8.images[:, 0],
                               torch.from_numpy(raw[train_idx] / 8.0 - 1.0).float())
    assert torch.equal(train8.labels, torch.from_numpy(labels[train_idx]))
    test16 = data.load_digits_images(16, "test")
    assert test16.images.shape[1:] == (1, 16, 16) and test16.name == "digits"
    assert test16.images.dtype == torch.float32
    assert test16.images.min() >= -1.0 and test16.images.max() <= 1.0
    assert float(test16.images.min()) == -1.0  # background reaches -1
    assert len(data.load_digits_images(8, "all")) == 1797
    with pytest.raises(ValueError, match="size"):
        data.load_digits_images(12)
    with pytest.raises(ValueError, match="split"):
        data.load_digits_images(16, "val")


def test_digit_image_for_display() -> None:
    x = data.digit_image(5, 64)
    assert x.shape == (1, 64, 64) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(ValueError, match="index"):
        data.digit_image(1797)


# ---------------------------------------------------------------------------------------------
# Gradients and photos
# ---------------------------------------------------------------------------------------------


def test_make_gradients_follows_its_definition() -> None:
    g = data.make_gradients(64, 16, seed=0)
    assert g.shape == (64, 3, 16, 16) and g.dtype == torch.float32
    assert g.min() >= -1 and g.max() <= 1
    assert torch.equal(g, data.make_gradients(64, 16, seed=0))
    assert not torch.equal(g, data.make_gradients(64, 16, seed=1))
    # Diagonal layout (seed 001): c0 at the top-left corner, c1 at the bottom-right, and the
    # centre-symmetric pixel pairs average to (c0 + c1) / 2.
    d = data.make_gradients(8, 16, seed=0, directions="diagonal")
    mid = (d[..., 0, 0] + d[..., -1, -1]) / 2
    torch.testing.assert_close(d[..., 0, -1], mid)
    torch.testing.assert_close((d[..., 3, 5] + d[..., 12, 10]) / 2, mid)
    maps = data.gradient_weight_maps(16, 16)
    assert maps.shape == (4, 16, 16) and maps.min() == 0 and maps.max() == 1


def test_make_shapes_follows_its_definition() -> None:
    x, y = data.make_shapes(400, 16, seed=0)
    assert x.shape == (400, 3, 16, 16) and x.dtype == torch.float32
    assert y.shape == (400,) and y.dtype == torch.int64
    assert x.min() >= -1 and x.max() <= 1
    counts = torch.bincount(y, minlength=4)
    assert len(counts) == len(data.SHAPE_CLASSES) == 4
    assert counts.min() >= 70  # uniform classes: 100 ± 3 standard deviations
    x2, y2 = data.make_shapes(400, 16, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, data.make_shapes(400, 16, seed=1)[0])
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
        assert (fg - bg).norm() >= data.SHAPE_MIN_CONTRAST - 1e-5
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
        data.make_shapes(**kwargs)


def test_sample_photos() -> None:
    photos = data.sample_photos(32)
    assert set(photos) == {"china", "flower"}
    for x in photos.values():
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1


# ---------------------------------------------------------------------------------------------
# User files
# ---------------------------------------------------------------------------------------------


def test_load_png_rgb_exact(tmp_path) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    x, notes = data.load_image_file(tmp_path / "a.png")
    assert x.shape == (3, 10, 12) and notes == []
    torch.testing.assert_close(x, torch.from_numpy(arr / 127.5 - 1).float().permute(2, 0, 1))
    # PIL objects work too.
    y, _ = data.load_image_file(Image.fromarray(arr))
    assert torch.equal(x, y)


def test_load_png_rgba_composited_on_white(tmp_path) -> None:
    arr = np.zeros((4, 4, 4), dtype=np.uint8)
    arr[..., 0] = 255  # red
    arr[:2, :, 3] = 255  # top half opaque, bottom transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    x, notes = data.load_image_file(tmp_path / "a.png")
    assert x.shape == (3, 4, 4)
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    torch.testing.assert_close(x[:, 3, 0], torch.tensor([1.0, 1.0, 1.0]))
    assert any("white" in n for n in notes)


def test_load_greyscale_and_16_bit(tmp_path) -> None:
    grey = np.array([[0, 128], [255, 64]], dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    x, _ = data.load_image_file(tmp_path / "g.png", mode="L")
    assert x.shape == (1, 2, 2)
    torch.testing.assert_close(x[0], torch.from_numpy(grey / 127.5 - 1).float())
    rgb, _ = data.load_image_file(tmp_path / "g.png", mode="RGB")
    assert rgb.shape == (3, 2, 2) and torch.equal(rgb[0], rgb[2])

    deep = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    x, notes = data.load_image_file(tmp_path / "d.png", mode="L")
    torch.testing.assert_close(x[0], torch.from_numpy(deep / 65535.0 * 2 - 1).float())
    assert any("16-bit" in n for n in notes)


def test_large_image_is_downscaled_with_a_note(tmp_path) -> None:
    Image.new("RGB", (3000, 1000), (10, 200, 30)).save(tmp_path / "big.png")
    x, notes = data.load_image_file(tmp_path / "big.png", max_side=256)
    assert x.shape == (3, 85, 256)
    torch.testing.assert_close(x[:, 40, 100], torch.tensor([10, 200, 30]) / 127.5 - 1)
    assert any("downscaled" in n for n in notes)
    x, _ = data.load_image_file(tmp_path / "big.png", max_side=256, center_crop=True)
    assert x.shape == (3, 256, 256)
    with pytest.raises(ValueError, match="max_pixels"):
        data.load_image_file(tmp_path / "big.png", max_pixels=1_000_000)


def test_non_images_are_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello, not an image\n")
    with pytest.raises(ValueError, match="is not an image"):
        data.load_image_file(tmp_path / "notes.txt")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])
    with pytest.raises(ValueError):
        data.load_image_file(tmp_path / "cut.png")
    with pytest.raises(FileNotFoundError):
        data.load_image_file(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="mode"):
        data.load_image_file(tmp_path / "notes.txt", mode="CMYK")


def test_load_image_folder(tmp_path) -> None:
    Image.new("RGB", (20, 10), (255, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    Image.new("L", (8, 8), 0).save(tmp_path / "sub" / "b.jpg")
    (tmp_path / "readme.txt").write_text("skip me")
    x = data.load_image_folder(tmp_path, 8, 3)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x[0, :, 4, 4], torch.tensor([1.0, -1.0, -1.0]))
    assert data.load_image_folder(tmp_path, 4, 1).shape == (2, 1, 4, 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image"):
        data.load_image_folder(tmp_path / "empty", 8, 3)


def test_load_npz_uint8_and_float(tmp_path) -> None:
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)  # channels last
    np.savez(tmp_path / "u8.npz", other=np.zeros(3), images=u8)
    x = data.load_npz_images(tmp_path / "u8.npz")
    assert x.shape == (5, 3, 6, 6)
    torch.testing.assert_close(x, torch.from_numpy(u8 / 127.5 - 1).float().permute(0, 3, 1, 2))

    unit = rng.random((4, 1, 6, 6)).astype(np.float32)  # channels first, [0, 1]
    np.savez(tmp_path / "f.npz", unit)
    x = data.load_npz_images(tmp_path / "f.npz", size=3, channels=3)
    assert x.shape == (4, 3, 3, 3)
    x = data.load_npz_images(tmp_path / "f.npz")
    torch.testing.assert_close(x, torch.from_numpy(unit * 2 - 1))

    signed = unit * 2 - 1  # has negatives: kept as is
    np.savez(tmp_path / "s.npz", images=signed)
    torch.testing.assert_close(data.load_npz_images(tmp_path / "s.npz"), torch.from_numpy(signed))

    np.savez(tmp_path / "bad.npz", images=np.full((2, 4, 4), 7.5))
    with pytest.raises(ValueError, match="expected"):
        data.load_npz_images(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        data.load_npz_images(tmp_path / "obj.npz")


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
    torch.testing.assert_close(data.load_idx_images(tmp_path / "t-images-idx3-ubyte"), expected)
    torch.testing.assert_close(data.load_idx_images(tmp_path / "t-images-idx3-ubyte.gz"),
                               expected)
    assert data.load_idx_images(tmp_path / "t-images-idx3-ubyte", size=8).shape == (3, 1, 8, 8)
    assert len(data.load_idx_images(tmp_path / "t-images-idx3-ubyte", max_images=2)) == 2
    _write_idx(tmp_path / "labels", imgs, magic=2049)
    with pytest.raises(ValueError, match="2051"):
        data.load_idx_images(tmp_path / "labels")
    (tmp_path / "short").write_bytes((tmp_path / "t-images-idx3-ubyte").read_bytes()[:30])
    with pytest.raises(ValueError, match="truncated"):
        data.load_idx_images(tmp_path / "short")


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_image_dataset_registry() -> None:
    assert set(data.IMAGE_DATASETS) == {"digits", "digits8", "gradients", "shapes"}
    for name, spec in data.IMAGE_DATASETS.items():
        assert data.is_image_dataset(name)
        kw = {"n": 16} if name in ("gradients", "shapes") else {}
        s = data.load_image_dataset(name, **kw)
        assert s.shape == (spec.channels, spec.size, spec.size) and s.name == name
        assert s.images.min() >= -1 and s.images.max() <= 1
    shapes = data.load_image_dataset("shapes")
    assert len(shapes) == 2000 and shapes.labels is not None
    assert torch.equal(shapes.images, data.make_shapes(2000, 16, seed=0)[0])
    assert not data.is_image_dataset("moons")
    with pytest.raises(ValueError, match="digits"):
        data.load_image_dataset("mnist")
