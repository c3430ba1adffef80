"""Loaders for the user's own images: one file, a folder, a ``.npz``/``.npy`` array, an IDX file.

All return float32 in [−1, 1] (8-bit ``v / 127.5 − 1``, 16-bit by 1/65535 or ``v / 32767.5 − 1``;
see each loader for how it detects the value range). Nothing is ever downloaded, and every
refusal is a ``ValueError`` (or ``FileNotFoundError``) naming the file.
"""

from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ._checks import check_choice, check_int
from .imageset import _center_crop, _resize, _to_channels

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "load_idx_images",
    "load_image_file",
    "load_image_folder",
    "load_npz_images",
]

MAX_IMAGE_PIXELS = 40_000_000
"""Default pixel-count limit (width × height) of :func:`load_image_file` (decompression bombs)."""

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
"""File endings :func:`load_image_folder` reads (case-insensitive)."""


def _pil_to_unit(img: Image.Image, notes: list[str]) -> np.ndarray:
    """PIL image → float32 ``[H, W, C]`` (C ∈ {1, 3}) in [0, 1]; alpha composited on white."""
    mode = img.mode
    if mode.startswith("I;16"):
        notes.append("16-bit greyscale scaled by 1/65535")
        return (np.asarray(img).astype(np.float32) / 65535.0)[..., None]
    if mode == "I":
        a = np.asarray(img).astype(np.int64)
        if a.min() >= 0 and a.max() <= 255:
            notes.append("32-bit integer image with values 0..255 scaled by 1/255")
            return (a.astype(np.float32) / 255.0)[..., None]
        if a.min() < 0 or a.max() > 65535:
            notes.append("32-bit integer values outside 0..65535 clipped")
        notes.append("32-bit integer image treated as 16-bit (scaled by 1/65535)")
        return (np.clip(a, 0, 65535).astype(np.float32) / 65535.0)[..., None]
    if mode == "F":
        a = np.asarray(img).astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError("floating-point image contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            notes.append(f"floating-point values in [{lo:.3g}, {hi:.3g}] rescaled to [0, 1]")
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        return a[..., None]
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("LA", "La", "PA"):
        img = img.convert("LA")
    elif mode in ("RGBa", "RGBX"):
        img = img.convert("RGBA" if mode == "RGBa" else "RGB")
    elif mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGB")
    a = np.asarray(img).astype(np.float32) / 255.0
    if a.ndim == 2:
        a = a[..., None]
    if img.mode in ("LA", "RGBA"):
        color, alpha = a[..., :-1], a[..., -1:]
        if (alpha < 1.0).any():
            notes.append("transparent pixels composited on white")
        a = color * alpha + (1.0 - alpha)
    return a


def load_image_file(
    source: str | os.PathLike | Image.Image,
    *,
    max_side: int | None = 256,
    mode: Literal["RGB", "L"] = "RGB",
    center_crop: bool = False,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> tuple[torch.Tensor, list[str]]:
    """Read one image (any format PIL reads) as ``([C, H, W] float32 in [−1, 1], notes)``.

    * ``mode="RGB"`` gives C = 3, ``"L"`` gives C = 1 (ITU-R 601-2 luma).
    * Transparency (RGBA, LA, palette with transparency) is composited on white.
    * 16-bit greyscale (``I;16*``) is scaled by 1/65535 before mapping to [−1, 1]; 32-bit
      ``I`` images are read as 8-bit if all values are in 0..255, else as 16-bit (0..65535,
      clipped); float ``F`` images outside [0, 1] are min–max rescaled. Each such step adds a note.
    * EXIF orientation is applied; animated/multi-page files use their first frame (noted).
    * ``center_crop=True`` crops to the central square first. If the longest side exceeds
      ``max_side`` (``None``: no limit) the image is downscaled, aspect kept, with a note.

    Raises:
        FileNotFoundError: ``source`` names no file.
        ValueError: the file is not an image PIL can read, cannot be decoded, or has more than
            ``max_pixels`` pixels (decompression-bomb guard); or a bad argument.
    """
    check_choice("mode", mode, ("RGB", "L"))
    if max_side is not None:
        max_side = check_int("max_side", max_side, 1, 65536)
    max_pixels = check_int("max_pixels", max_pixels, 1, 2**40)
    notes: list[str] = []
    if isinstance(source, Image.Image):
        arr = _read_pil(source, "the image", max_pixels, notes)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is not a file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    arr = _read_pil(img, path.name, max_pixels, notes)
        except UnidentifiedImageError as e:
            raise ValueError(f"{path.name} is not an image PIL can read ({e})") from e
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError(f"{path.name} has too many pixels to load safely ({e})") from e
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    x = _to_channels(x, 3 if mode == "RGB" else 1)
    if center_crop and x.shape[-1] != x.shape[-2]:
        h, w = x.shape[-2:]
        x = _center_crop(x)
        notes.append(f"centre-cropped from {w}×{h} to {x.shape[-1]}×{x.shape[-2]}")
    h, w = x.shape[-2:]
    if max_side is not None and max(h, w) > max_side:
        f = max_side / max(h, w)
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        x = _resize(x, nh, nw)
        notes.append(f"downscaled from {w}×{h} to {nw}×{nh} (longest side ≤ {max_side})")
    return (x[0] * 2.0 - 1.0).clamp(-1.0, 1.0).float().contiguous(), notes


def _read_pil(img: Image.Image, label: str, max_pixels: int, notes: list[str]) -> np.ndarray:
    w, h = img.size
    if w * h > max_pixels:
        raise ValueError(
            f"{label} has {w}×{h} = {w * h} pixels, more than max_pixels = {max_pixels}"
        )
    if w < 1 or h < 1:
        raise ValueError(f"{label} is empty ({w}×{h})")
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        notes.append(f"used the first of {frames} frames")
        img.seek(0)
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
    except (OSError, SyntaxError, ValueError, TypeError) as e:
        raise ValueError(f"{label} could not be decoded as an image ({e})") from e
    return _pil_to_unit(img, notes)


def load_image_folder(
    path: str | os.PathLike,
    size: int,
    channels: int = 3,
    *,
    max_images: int = 10_000,
) -> torch.Tensor:
    """Every image file under folder ``path`` (recursive, sorted by relative path) as
    ``[N, channels, size, size]`` float32 in [−1, 1].

    Files whose ending is in :data:`IMAGE_EXTENSIONS` are read (hidden files skipped), each with
    :func:`load_image_file`, centre-cropped to a square and resized to ``size × size``. A file
    that cannot be read raises ``ValueError`` naming it; so does a folder with no images.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    size = check_int("size", size, 2, 1024)
    check_choice("channels", channels, (1, 3))
    max_images = check_int("max_images", max_images, 1, 10**7)
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise ValueError(f"{folder} holds no image files (endings: {sorted(IMAGE_EXTENSIONS)})")
    if len(files) > max_images:
        raise ValueError(f"{folder} holds {len(files)} images, more than max_images={max_images}")
    out = []
    for f in files:
        x, _ = load_image_file(f, max_side=None, mode="RGB" if channels == 3 else "L",
                               center_crop=True)
        out.append(_resize(x.unsqueeze(0), size, size))
    return torch.cat(out).contiguous()


def _array_to_unit(a: np.ndarray, label: str) -> np.ndarray:
    """Numeric array → float32 in [−1, 1], detecting its value range (see load_npz_images)."""
    if a.dtype == np.bool_:
        return a.astype(np.float32) * 2 - 1
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if a.dtype == np.uint8 or (lo >= 0 and hi <= 255):
            return a.astype(np.float32) / 127.5 - 1
        if lo >= 0 and hi <= 65535:
            return a.astype(np.float32) / 32767.5 - 1
        raise ValueError(f"{label}: integer values in {lo}..{hi}; expected 0..255 or 0..65535")
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError(f"{label}: contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            return a * 2 - 1
        if lo >= -1.0 and hi <= 1.0:
            return a
        raise ValueError(
            f"{label}: float values in [{lo:.3g}, {hi:.3g}]; expected [0, 1] or [-1, 1]"
        )
    raise ValueError(f"{label}: unsupported dtype {a.dtype}")


def _finish_images(
    x: torch.Tensor, size: int | None, channels: int | None
) -> torch.Tensor:
    """``x [N, C, H, W]`` in [−1, 1] (C ∈ {1, 3}) → requested channels and square size."""
    if channels is not None:
        x = _to_channels(x, channels)
    if size is not None:
        if x.shape[-1] != x.shape[-2]:
            x = _center_crop(x)
        x = _resize(x, size, size)
    return x.clamp(-1.0, 1.0).float().contiguous()


def load_npz_images(
    path: str | os.PathLike,
    size: int | None = None,
    channels: int | None = None,
    *,
    key: str | None = None,
) -> torch.Tensor:
    """Images from a ``.npz`` (or ``.npy``) file as ``[N, C, H, W]`` float32 in [−1, 1].

    The array is ``key``, else ``"images"``, else the file's first array
    (``allow_pickle=False``). Layouts: ``[N, H, W]`` (grey), ``[N, C, H, W]`` when
    ``shape[1] ∈ {1, 3, 4}`` and ``shape[-1] ∉ {1, 3, 4}``, otherwise ``[N, H, W, C]`` with
    ``C ∈ {1, 3, 4}``; 4 channels are RGBA, composited on white.

    Value range is detected: ``uint8`` (or integers within 0..255) → ``v / 127.5 − 1``; other
    integers within 0..65535 → ``v / 32767.5 − 1``; bool → {−1, 1}; floats all in [0, 1] →
    ``2v − 1``; floats in [−1, 1] with a negative value → unchanged; anything else raises
    ``ValueError``. (A [−1, 1] float set with no negative value would be read as [0, 1].)

    ``channels`` ∈ {1, 3} converts (luma / replication), ``None`` keeps 1 or 3; ``size`` centre-
    crops to a square and resizes, ``None`` keeps the size.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} is not a file")
    if size is not None:
        size = check_int("size", size, 2, 1024)
    if channels is not None:
        check_choice("channels", channels, (1, 3))
    try:
        loaded = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{p.name} is not a readable .npz/.npy file ({e})") from e
    if isinstance(loaded, np.ndarray):
        a = loaded
    else:
        with loaded:
            names = list(loaded.files)
            if not names:
                raise ValueError(f"{p.name} holds no arrays")
            if key is not None and key not in names:
                raise ValueError(f"key {key!r} not in {p.name}; arrays: {names}")
            name = key if key is not None else ("images" if "images" in names else names[0])
            try:
                a = loaded[name]
            except ValueError as e:  # object arrays need pickle, which we refuse
                raise ValueError(f"{p.name}[{name!r}] cannot be read without pickle") from e
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4:
        small = (1, 3, 4)
        if not (a.shape[1] in small and a.shape[-1] not in small):
            if a.shape[-1] not in small:
                raise ValueError(f"{p.name}: cannot find a channel axis in shape {a.shape}")
            a = np.moveaxis(a, -1, 1)
    else:
        raise ValueError(f"{p.name}: images must be [N, H, W] or 4-D, got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[2] < 1 or a.shape[3] < 1:
        raise ValueError(f"{p.name}: empty image array {a.shape}")
    x = torch.from_numpy(np.ascontiguousarray(_array_to_unit(a, p.name)))
    if x.shape[1] == 4:
        alpha = (x[:, 3:] + 1) / 2
        x = x[:, :3] * alpha + (1 - alpha)
    return _finish_images(x, size, channels)


def load_idx_images(
    path: str | os.PathLike,
    size: int | None = None,
    *,
    max_images: int | None = None,
) -> torch.Tensor:
    """An MNIST / Fashion-MNIST IDX image file (optionally ``.gz``) as ``[N, 1, H, W]`` in [−1, 1].

    Format: big-endian int32 magic 2051 (``0x00000803``: unsigned bytes, 3 dimensions), then
    N, rows, cols as big-endian int32, then N·rows·cols uint8 pixels (``v / 127.5 − 1``).
    Gzip is detected from its magic bytes. ``size`` resizes (bilinear); ``max_images`` keeps the
    first images only.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} is not a file")
    if size is not None:
        size = check_int("size", size, 2, 1024)
    if max_images is not None:
        max_images = check_int("max_images", max_images, 1, 10**7)
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{p.name} is not a valid gzip file ({e})") from e
    if len(raw) < 16:
        raise ValueError(f"{p.name} is too short to be an IDX image file")
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
    if magic != 2051:
        raise ValueError(f"{p.name}: IDX magic {magic}, expected 2051 (uint8 images, 3 dims)")
    if n < 1 or rows < 1 or cols < 1:
        raise ValueError(f"{p.name}: bad IDX dimensions {n}×{rows}×{cols}")
    need = 16 + int(n) * int(rows) * int(cols)
    if len(raw) < need:
        raise ValueError(f"{p.name}: truncated ({len(raw)} bytes, need {need})")
    count = int(n) if max_images is None else min(int(n), max_images)
    pix = np.frombuffer(raw, dtype=np.uint8, count=count * int(rows) * int(cols), offset=16)
    x = torch.from_numpy(pix.reshape(count, 1, int(rows), int(cols)).astype(np.float32))
    x = x / 127.5 - 1.0
    if size is not None:
        x = _resize(x, size, size)
    return x.clamp(-1.0, 1.0).contiguous()
