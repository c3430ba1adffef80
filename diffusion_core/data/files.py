"""Loaders for the user's own images: one file, a folder, an upload (several files or a zip),
a ``.npz``/``.npy`` array, an IDX file.

All return float32 in [−1, 1] (8-bit ``v / 127.5 − 1``, 16-bit by 1/65535 or ``v / 32767.5 − 1``;
see each loader for how it detects the value range). Nothing is ever downloaded, and every
refusal is a ``ValueError`` (or ``FileNotFoundError``) naming the file.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import torch
from PIL import ExifTags, Image, UnidentifiedImageError

from ._checks import check_choice, check_int
from .imageset import ImageSet, _center_crop, _resize, _to_channels

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "MAX_UPLOAD_IMAGES",
    "UPLOAD_ZIP_MAX_BYTES",
    "UPLOAD_ZIP_MAX_MEMBERS",
    "UserImageSet",
    "load_idx_images",
    "load_image_file",
    "load_image_files",
    "load_image_folder",
    "load_image_zip",
    "load_npz_images",
]

MAX_IMAGE_PIXELS = 40_000_000
"""Default pixel-count limit (width × height) of :func:`load_image_file` (decompression bombs)."""

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
"""File endings :func:`load_image_folder` reads (case-insensitive)."""


# How much larger than the final image the cheap reductions (JPEG draft, Image.reduce) leave it:
# the last step is always the antialiased bilinear (triangle) filter of imageset._resize, and
# keeping ≥ 2× the final side means that filter still spans ≥ 2 reduced pixels each way, so the
# box pre-filter (≤ half its width) changes little. Reducing straight to the final size would
# leave a box filter alone: blockier, more aliasing on textured photos. Measured against the
# full-size path (mean |Δ| in [−1, 1] units): 6000×4000 photo with noise → 256 px: 0.001;
# a harsh case, detail at 2 output pixels (2400×1600 → 32 px): 0.004 (JPEG), 0.006 (PNG). Keeping
# 3× gives 0.002 there (the gap between PIL's and torch's own bilinear filters) but can cost a
# JPEG draft step (6000×4000 → 256: 1/4 instead of 1/8, 4× the decoded pixels); keeping 1× gives
# 0.013. The costs of 2×: bench/upload_decode.py.
_KEEP = 2

# EXIF orientation → the transpose that makes the image upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}  # orientation undoing each one


def _file_box(
    box: tuple[float, float, float, float], orientation: int, w0: float, h0: float
) -> tuple[float, float, float, float]:
    """A box ``(left, top, right, bottom)`` in upright coordinates → the same pixels in the
    file's stored ``w0 × h0`` coordinates (before the EXIF transpose)."""
    l, t, r, b = box
    return {
        1: (l, t, r, b),
        2: (w0 - r, t, w0 - l, b),
        3: (w0 - r, h0 - b, w0 - l, h0 - t),
        4: (l, h0 - b, r, h0 - t),
        5: (t, l, b, r),
        6: (t, h0 - r, b, h0 - l),
        7: (w0 - b, h0 - r, w0 - t, h0 - l),
        8: (w0 - b, l, w0 - t, r),
    }[orientation]


def _normalise_mode(img: Image.Image) -> Image.Image:
    """Convert to one of the modes :func:`_to_unit` reads: L, LA, RGB, RGBA, I;16*, I, F."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F", "L", "LA", "RGB", "RGBA"):
        return img
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode == "1":
        return img.convert("L")
    if mode in ("La", "PA"):
        return img.convert("LA")
    return img.convert("RGBA" if mode == "RGBa" else "RGB")


def _to_unit(
    img: Image.Image, kind: str, extrema: tuple[float, float], transparent: bool,
    label: str, notes: list[str],
) -> np.ndarray:
    """PIL image (mode from :func:`_normalise_mode`, possibly reduced) → float32 ``[H, W, C]``
    (C ∈ {1, 3}) in [0, 1]; alpha composited on white.

    ``kind`` is the mode before any reduction (an ``I;16`` image is reduced as ``I``);
    ``extrema`` (I and F) and ``transparent`` (LA, RGBA) were measured on the whole decoded
    image, so the value-range rules and notes do not depend on how far it was reduced.
    """
    if kind.startswith("I;16"):
        notes.append("16-bit greyscale scaled by 1/65535")
        return (np.asarray(img).astype(np.float32) / 65535.0)[..., None]
    if kind == "I":
        lo, hi = extrema
        a = np.asarray(img).astype(np.int64)
        if lo >= 0 and hi <= 255:
            notes.append("32-bit integer image with values 0..255 scaled by 1/255")
            return (a.astype(np.float32) / 255.0)[..., None]
        if lo < 0 or hi > 65535:
            notes.append("32-bit integer values outside 0..65535 clipped")
        notes.append("32-bit integer image treated as 16-bit (scaled by 1/65535)")
        return (np.clip(a, 0, 65535).astype(np.float32) / 65535.0)[..., None]
    if kind == "F":
        lo, hi = extrema
        a = np.asarray(img).astype(np.float32)
        if lo < 0.0 or hi > 1.0:
            notes.append(f"floating-point values in [{lo:.3g}, {hi:.3g}] rescaled to [0, 1]")
            a = ((a - np.float64(lo)) / (hi - lo)).astype(np.float32) if hi > lo \
                else np.zeros_like(a)  # (float64: hi − lo may overflow float32)
        return a[..., None]
    a = np.asarray(img).astype(np.float32) / 255.0
    if a.ndim == 2:
        a = a[..., None]
    if img.mode in ("LA", "RGBA"):
        if transparent:
            notes.append("transparent pixels composited on white")
        color, alpha = a[..., :-1], a[..., -1:]
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
      Notes and output size always refer to the original image.

    Cost: a large image is reduced before it becomes float. A JPEG is decoded at 1/2, 1/4 or 1/8
    scale (``Image.draft``), then ``Image.reduce`` (a box filter, integer factor) shrinks it
    further in 8 bits, both stopping while the region kept is still ≥ 2 × ``max_side`` on its
    longest side; the antialiased bilinear resize does the last step, with the region placed
    exactly (to a fraction of a pixel). A 36-megapixel JPEG read at ``max_side=256`` is never
    decoded at full size; other formats are decoded at full size in 8 bits but never become
    full-size float. Results differ from a full-size decode only by the extra box pre-filter
    (mean |Δ| ≈ 0.001–0.006). The pixel-count check runs on the original size, before anything
    is decoded.

    Raises:
        FileNotFoundError: ``source`` names no file.
        ValueError: the file is not an image PIL can read, cannot be decoded, or has more than
            ``max_pixels`` pixels (decompression-bomb guard); or a bad argument.
    """
    check_choice("mode", mode, ("RGB", "L"))
    if max_side is not None:
        max_side = check_int("max_side", max_side, 1, 65536)
    max_pixels = check_int("max_pixels", max_pixels, 1, 2**40)
    return _load(source, max_side=max_side, mode=mode, center_crop=center_crop,
                 max_pixels=max_pixels, early=True)


def _load(
    source: str | os.PathLike | Image.Image,
    *,
    max_side: int | None,
    mode: str,
    center_crop: bool,
    max_pixels: int,
    early: bool,
    label: str | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """:func:`load_image_file` without the argument checks. ``early=False`` is the plain
    full-size path (decode everything, float, crop and resize in torch): the reference the
    tests and ``bench/upload_decode.py`` compare the reduced path with. ``source`` may also be
    a binary file object (a zip member's bytes), named ``label`` in messages."""
    notes: list[str] = []
    keep_side = _KEEP * max_side if early and max_side is not None else None
    crop_early = center_crop and early
    if isinstance(source, Image.Image):
        # Never draft a caller's image object: that would change it under them.
        arr, (w, h), exact = _read_pil(source, "the image", max_pixels, notes,
                                       keep_side=keep_side, center_crop=crop_early)
    else:
        if hasattr(source, "read"):  # a binary file object
            opened, name = source, label or "the image"
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"{path} is not a file")
            opened, name = path, label or path.name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(opened) as img:
                    arr, (w, h), exact = _read_pil(img, name, max_pixels, notes,
                                                   keep_side=keep_side, center_crop=crop_early,
                                                   draft=early)
        except UnidentifiedImageError as e:
            raise ValueError(f"{name} is not an image PIL can read ({e})") from e
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError(f"{name} has too many pixels to load safely ({e})") from e
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    x = _to_channels(x, 3 if mode == "RGB" else 1)
    # (w, h) is the upright original size. x is the whole image, or already the central square
    # (exact integer crop), or reduced with the region used at the fractional box ``exact``.
    if center_crop:
        if exact is None:
            x = _center_crop(x)  # (a no-op when cropped while decoding)
        if w != h:
            s = min(w, h)
            notes.append(f"centre-cropped from {w}×{h} to {s}×{s}")
            w = h = s
    nh, nw = h, w
    if max_side is not None and max(h, w) > max_side:
        f = max_side / max(h, w)
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        notes.append(f"downscaled from {w}×{h} to {nw}×{nh} (longest side ≤ {max_side})")
    x = _resize(x, nh, nw) if exact is None else _resize_box(x, exact, nh, nw)
    return (x[0] * 2.0 - 1.0).clamp(-1.0, 1.0).float().contiguous(), notes


def _read_pil(
    img: Image.Image,
    label: str,
    max_pixels: int,
    notes: list[str],
    *,
    keep_side: int | None = None,
    center_crop: bool = False,
    draft: bool = False,
) -> tuple[np.ndarray, tuple[int, int], tuple[float, float, float, float] | None]:
    """Decode ``img`` → (float32 ``[H, W, C]`` in [0, 1], upright original size ``(w, h)``,
    where the region lies in the array when it was reduced, else ``None``).

    With ``keep_side`` the image is reduced by the largest integer factor that keeps the region
    used (the central square when ``center_crop``, else the whole image) at least
    ``keep_side`` pixels on its longest side: first by the JPEG decoder (``draft``; 1/2, 1/4,
    1/8), then by ``Image.reduce``. With ``center_crop`` only the central square of the upright
    original (whole reduced pixels around it when reduced) is returned. Orientation is read from
    EXIF first and applied last, to the small image: the crop box is mapped into the file's
    stored orientation, and reduction factors are the same along both axes, so the order does
    not change the result. Value-range statistics (I, F) and the transparency note come from the
    whole decoded image, as without reduction.
    """
    w0, h0 = img.size
    if w0 * h0 > max_pixels:
        raise ValueError(
            f"{label} has {w0}×{h0} = {w0 * h0} pixels, more than max_pixels = {max_pixels}"
        )
    if w0 < 1 or h0 < 1:
        raise ValueError(f"{label} is empty ({w0}×{h0})")
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        notes.append(f"used the first of {frames} frames")
        img.seek(0)
    used_side = min(w0, h0) if center_crop else max(w0, h0)  # longest side of the region used
    k_max = max(1, used_side // keep_side) if keep_side else 1  # total reduction allowed
    try:
        d = 1  # the decoder's own scale (JPEG draft), applied before load
        if draft and k_max >= 2:
            got = img.draft(img.mode, (-(-w0 // k_max), -(-h0 // k_max)))
            if got is not None:
                d = round(w0 / got[1][2])
        img.load()
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation not in _ORIENTATION:
            orientation = 1
        w, h = (h0, w0) if orientation in (5, 6, 7, 8) else (w0, h0)
        img = _normalise_mode(img)
        kind = img.mode
        extrema: tuple[float, float] = (0.0, 1.0)
        transparent, finite = False, True
        if kind == "I":
            extrema = img.getextrema()
        elif kind == "F":
            finite, extrema = _float_stats(img)
        if kind in ("LA", "RGBA"):
            transparent = img.getextrema()[-1][0] < 255
        # The region used (whole image, or the central square of the upright image), in the
        # file's stored pixel coordinates.
        region: tuple[float, float, float, float] = (0, 0, w0, h0)
        if center_crop and w != h:
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            region = _file_box((left, top, left + s, top + s), orientation, w0, h0)
        k = k_max // d
        if kind == "F" and max(abs(extrema[0]), abs(extrema[1])) > 1e30:
            k = 1  # Image.reduce sums in float32: it would overflow; torch resizes instead
        if k >= 2 and kind.startswith("I;16"):
            try:  # Image.reduce does not take I;16; 32-bit I does, values unchanged
                img = img.convert("I")
            except ValueError:
                k = 1  # (a byte order convert() lacks) the torch resize does it all
        exact = None
        if d == 1 and k < 2:  # not reduced: crop exactly (integer box)
            if region != (0, 0, w0, h0):
                img = img.crop(region)
        else:
            img, exact = _reduce(img, region, d, max(k, 1))
        if orientation != 1:
            if exact is not None:
                uw, uh = (img.height, img.width) if orientation in (5, 6, 7, 8) else img.size
                exact = _file_box(exact, _INVERSE[orientation], uw, uh)
            img = img.transpose(_ORIENTATION[orientation])
    except (OSError, SyntaxError, ValueError, TypeError) as e:
        raise ValueError(f"{label} could not be decoded as an image ({e})") from e
    if not finite:
        raise ValueError(f"{label}: floating-point image contains NaN or infinite values")
    return _to_unit(img, kind, extrema, transparent, label, notes), (w, h), exact


def _reduce(
    img: Image.Image, region: tuple[float, float, float, float], d: int, k: int
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Crop ``img`` (already decoded at 1/``d`` scale) to whole ``k``-blocks around ``region``
    (stored original pixels) and box-filter it by ``k``. Returns the image and exactly where
    ``region`` lies in it, in its pixels (fractions: the blocks need not align with it).

    Stored pixel j covers original pixels [j·d, (j+1)·d) (JPEG scaled decoding averages 8×8,
    4×4, 2×2 blocks) and reduced pixel i covers stored [x0 + i·k, x0 + (i+1)·k); only at the
    image's own edge can a block be partial.
    """
    sw, sh = img.size
    rl, rt, rr, rb = (v / d for v in region)
    x0, y0 = min(math.floor(rl), sw - 1), min(math.floor(rt), sh - 1)
    x1, y1 = max(math.ceil(rr), x0 + 1), max(math.ceil(rb), y0 + 1)
    x1 = min(x0 + -(-(x1 - x0) // k) * k, sw)  # whole blocks where the image allows
    y1 = min(y0 + -(-(y1 - y0) // k) * k, sh)
    box = (x0, y0, x1, y1)
    img = img.reduce(k, box=box) if k >= 2 else img.crop(box)
    return img, ((rl - x0) / k, (rt - y0) / k, (rr - x0) / k, (rb - y0) / k)


def _resize_box(
    x: torch.Tensor, box: tuple[float, float, float, float], height: int, width: int
) -> torch.Tensor:
    """Resize the region ``box = (left, top, right, bottom)`` of ``x [N, C, H, W]`` (pixel
    units, fractions allowed) to ``height × width``: the antialiased bilinear (triangle) filter
    of :func:`imageset._resize` — the same weights when the box is the whole of ``x`` — with the
    region placed exactly instead of rounded to whole pixels."""
    wy = _triangle_weights(x.shape[-2], box[1], box[3], height).to(x.dtype)
    wx = _triangle_weights(x.shape[-1], box[0], box[2], width).to(x.dtype)
    return wy @ x @ wx.T


def _triangle_weights(n_in: int, start: float, stop: float, n_out: int) -> torch.Tensor:
    """``[n_out, n_in]`` weights: output pixel i averages the input around
    ``start + (i + ½)·scale`` (``scale = (stop − start) / n_out``) with a triangle of half-width
    ``max(scale, 1)``. Each input pixel [j, j + 1) counts by the part of it inside
    [start, stop) — as if the region had been cropped out first — and each row is
    renormalised (as torch and PIL do at an image's edge)."""
    scale = (stop - start) / n_out
    centre = start + (torch.arange(n_out, dtype=torch.float64) + 0.5) * scale
    j = torch.arange(n_in, dtype=torch.float64)
    inside = (torch.minimum(j + 1, torch.tensor(stop)) - torch.clamp(j, min=start)).clamp(0, 1)
    w = (1 - (j[None, :] + 0.5 - centre[:, None]).abs() / max(scale, 1.0)).clamp(min=0)
    w = w * inside[None, :]
    return w / w.sum(1, keepdim=True).clamp(min=1e-12)


def _float_stats(img: Image.Image, rows: int = 256) -> tuple[bool, tuple[float, float]]:
    """(all values finite, (min, max)) of an ``F`` image, read in bands of ``rows`` rows so
    that no full-size copy is made (getextrema alone would miss a NaN)."""
    lo, hi = np.inf, -np.inf
    for top in range(0, img.height, rows):
        band = np.asarray(img.crop((0, top, img.width, min(top + rows, img.height))))
        if not np.isfinite(band).all():
            return False, (0.0, 1.0)
        lo, hi = min(lo, float(band.min())), max(hi, float(band.max()))
    return True, (lo, hi)


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
    out = [_load_square(f, size, channels, MAX_IMAGE_PIXELS)[0] for f in files]
    return torch.cat(out).contiguous()


def _load_square(
    source: str | os.PathLike | BinaryIO, size: int, channels: int, max_pixels: int,
    label: str | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """One image, centre-cropped to a square and resized to ``size × size``:
    ``([1, channels, size, size] in [−1, 1], notes)``. ``max_side=size``: :func:`_load` crops
    and reduces while decoding (a large photo is never read full-size) and the last resize
    upscales a smaller image."""
    x, notes = _load(source, max_side=size, mode="RGB" if channels == 3 else "L",
                     center_crop=True, max_pixels=max_pixels, early=True, label=label)
    if x.shape[-1] < size:
        notes.append(f"enlarged from {x.shape[-1]}×{x.shape[-2]} to {size}×{size}")
    return _resize(x.unsqueeze(0), size, size), notes


# ---------------------------------------------------------------------------------------------
# Uploads: several image files, or one zip of them
# ---------------------------------------------------------------------------------------------

MAX_UPLOAD_IMAGES = 5000
"""Default most images :func:`load_image_files` / :func:`load_image_zip` read."""
UPLOAD_ZIP_MAX_BYTES = 256 * 2**20
"""Default most bytes an image zip may unpack to, all members together (zip bombs)."""
UPLOAD_ZIP_MAX_MEMBERS = 20_000
"""Default most entries (files, folders, metadata) an image zip may hold."""
_ZIP_MEMBER_MAX_BYTES = 64 * 2**20  # one image file inside a zip


@dataclass(frozen=True, eq=False)
class UserImageSet(ImageSet):
    """An :class:`~.imageset.ImageSet` of the user's own images (``labels`` is ``None``) and
    what happened on the way: ``sources`` (each image's file or member name, in order),
    ``skipped`` (``(name, reason)`` of each file left out) and ``notes`` (conversions, each
    with its count). :attr:`message` says it in plain words (the UI shows it)."""

    sources: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """E.g. "Loaded 12 images as 3×16×16 (colour). 4 were not square: …. Skipped 1 file:
        notes.txt (not an image file)."."""
        c, h, w = self.shape
        n = len(self)
        parts = [f"Loaded {n} image{'s' * (n != 1)} as {c}×{h}×{w} "
                 f"({'colour' if c == 3 else 'greyscale'})."]
        parts += [note + "." for note in self.notes]
        if self.skipped:
            k = len(self.skipped)
            shown = ", ".join(f"{name} ({why})" for name, why in self.skipped[:5])
            parts.append(f"Skipped {k} file{'s' * (k != 1)}: {shown}"
                         f"{f' and {k - 5} more' if k > 5 else ''}.")
        return " ".join(parts)


def _count_notes(per_image: list[list[str]], size: int) -> tuple[str, ...]:
    """Per-image notes → one line per kind with its count. Downscaling is what every large
    image needs and goes unsaid; cropping to a square and enlarging are counted."""
    counts: dict[str, int] = {}
    for notes in per_image:
        kinds = set()
        for note in notes:
            if note.startswith("downscaled"):
                continue
            if note.startswith("centre-cropped"):
                note = " {was} not square: the central square was used"
            elif note.startswith("enlarged"):
                note = f" {{was}} smaller than {size}×{size}: enlarged (blurry)"
            else:
                note = ": " + note.replace("{", "(").replace("}", ")")
            kinds.add(note)
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    return tuple(f"{k} image{'s' * (k != 1)}" + note.format(was="was" if k == 1 else "were")
                 for note, k in counts.items())


def _skip_reason(error: ValueError) -> str:
    text = str(error)
    if "too many pixels" in text or "more than max_pixels" in text:
        return "too many pixels"
    return "could not be read as an image"


def _image_set(
    images: list[torch.Tensor], sources: list[str], notes: list[list[str]],
    skipped: list[tuple[str, str]], size: int, name: str, what: str,
) -> UserImageSet:
    """The result, or a ``ValueError`` in plain words when no image was read."""
    if not images:
        if not skipped:
            raise ValueError(f"{what} holds no files: choose a few image files (endings "
                             f"{', '.join(sorted(IMAGE_EXTENSIONS))}) or a zip of them")
        shown = ", ".join(f"{n} ({why})" for n, why in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise ValueError(f"{what} holds no image that can be read: {shown}{more}. Image "
                         f"endings read: {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return UserImageSet(torch.cat(images).contiguous(), None, name, tuple(sources),
                        tuple(skipped), _count_notes(notes, size))


def _check_upload_args(size: int, channels: int, max_images: int, max_pixels: int
                       ) -> tuple[int, int, int]:
    size = check_int("size", size, 2, 1024)
    check_choice("channels", channels, (1, 3))
    return (size, check_int("max_images", max_images, 1, 10**7),
            check_int("max_pixels", max_pixels, 1, 2**40))


def load_image_files(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    size: int,
    channels: int,
    max_images: int = MAX_UPLOAD_IMAGES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    name: str = "upload",
    progress: Callable[[int, int], None] | None = None,
) -> UserImageSet:
    """Several image files (an upload) as a :class:`UserImageSet`, images
    ``[N, channels, size, size]`` float32 in [−1, 1], in the order given.

    Each file is read as :func:`load_image_folder` reads one (any mode: RGBA and LA composited
    on white, greyscale, 16-bit ``I;16`` scaled by 1/65535, palette; EXIF orientation; first
    frame), centre-cropped to a square and resized to ``size × size`` (the app offers 16 and
    32; smaller images are enlarged). Files whose ending is not in :data:`IMAGE_EXTENSIONS`,
    or that cannot be decoded or have more than ``max_pixels`` pixels, are skipped and listed in
    ``skipped``; hidden files (``.DS_Store``) are ignored. ``progress(done, total)`` is called
    after each image file (a UI can show it, or raise to stop).

    Raises ``ValueError`` in plain words (the UI shows it): no files; no file that is an image;
    more than ``max_images`` image files (checked before anything is decoded); a bad argument.
    ``FileNotFoundError`` for a path that is not a file.
    """
    size, max_images, max_pixels = _check_upload_args(size, channels, max_images, max_pixels)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = [Path(p) for p in paths]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f} is not a file")
    files = [f for f in files if not f.name.startswith(".")]
    skipped = [(f.name, "not an image file") for f in files
               if f.suffix.lower() not in IMAGE_EXTENSIONS]
    wanted = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
    if len(wanted) > max_images:
        raise ValueError(f"{len(wanted)} image files: more than the limit of {max_images}")
    images, sources, notes = [], [], []
    for i, f in enumerate(wanted):
        try:
            x, note = _load_square(f, size, channels, max_pixels, label=f.name)
        except ValueError as e:
            skipped.append((f.name, _skip_reason(e)))
        else:
            images.append(x)
            sources.append(f.name)
            notes.append(note)
        if progress is not None:
            progress(i + 1, len(wanted))
    return _image_set(images, sources, notes, skipped, size, name, "the upload")


def load_image_zip(
    path: str | os.PathLike,
    *,
    size: int,
    channels: int,
    max_images: int = MAX_UPLOAD_IMAGES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_bytes: int = UPLOAD_ZIP_MAX_BYTES,
    max_members: int = UPLOAD_ZIP_MAX_MEMBERS,
    name: str = "upload",
    progress: Callable[[int, int], None] | None = None,
) -> UserImageSet:
    """The images in a zip (folders inside it are fine) as a :class:`UserImageSet`, images
    ``[N, channels, size, size]`` float32 in [−1, 1], in the order of the member names.

    Each member is read as in :func:`load_image_files` (skipped with a reason when not an
    image file or not decodable); ``__MACOSX/`` and hidden files are ignored. Nothing is
    written to disk: each member is read into memory (at most 64 MB) and decoded there.
    ``progress(done, total)`` is called after each image member.

    The zip is checked before anything is decompressed (:mod:`diffusion_core.safezip`): a
    ``../`` or absolute member name, a symlink, an encrypted or duplicate member, more than
    ``max_members`` entries or more than ``max_bytes`` unpacked refuse the whole zip. Raises
    ``ValueError`` in plain words: not a zip; unsafe; empty; no image member; more than
    ``max_images`` image members.
    """
    from ..safezip import ZipLimits, checked_members, open_zip, read_member

    size, max_images, max_pixels = _check_upload_args(size, channels, max_images, max_pixels)
    max_bytes = check_int("max_bytes", max_bytes, 1, 2**40)
    max_members = check_int("max_members", max_members, 1, 10**7)
    p = Path(path)
    limits = ZipLimits(max_members, max_bytes, min(max_bytes, _ZIP_MEMBER_MAX_BYTES))
    try:
        zf = open_zip(p, limits)
    except ValueError as e:
        if "not a zip" in str(e):
            raise ValueError(f"{p.name} is not a zip file: upload image files, or a zip of "
                             "them") from None
        raise
    images, sources, notes, skipped = [], [], [], []
    with zf:
        members, _ = checked_members(zf, limits, label=p.name)
        members.sort(key=lambda m: m[1])
        wanted = []
        for info, parts in members:
            member = "/".join(parts)
            if Path(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS:
                wanted.append((info, member))
            else:
                skipped.append((member, "not an image file"))
        if len(wanted) > max_images:
            raise ValueError(f"{p.name} holds {len(wanted)} images: more than the limit of "
                             f"{max_images}")
        for i, (info, member) in enumerate(wanted):
            try:
                data = read_member(zf, info, limits.max_member_bytes, label=p.name)
                x, note = _load_square(io.BytesIO(data), size, channels, max_pixels,
                                       label=member)
            except ValueError as e:
                skipped.append((member, _skip_reason(e)))
            else:
                images.append(x)
                sources.append(member)
                notes.append(note)
            if progress is not None:
                progress(i + 1, len(wanted))
    return _image_set(images, sources, notes, skipped, size, name, p.name)


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
