"""A 2D data set drawn by the learner: strokes on a canvas → anchors → points, seeded.

A drawing is an RGBA image of strokes on a transparent canvas (what a sketchpad gives), or a
boolean mask. Every *drawn* pixel (alpha ≥ :data:`ALPHA_DRAWN`, or ``True``) becomes one
**anchor**, a point in model coordinates; the data set is the anchors resampled with
replacement plus isotropic Gaussian jitter of std ``noise`` (the tab's *Noise* slider, the
"spread" around the strokes). A thick stroke gives many anchors across its width, so the
brush size is part of the spread; a click gives a small round cluster.

**Pixels → model coordinates** (y up, isotropic, so a drawn circle stays a circle). A pixel at
column ``c`` and row ``r`` (row 0 at the top) of an ``H × W`` canvas, ``S = max(H, W)``:

    canvas = ((2(c + ½) − W) / S, (H − 2(r + ½)) / S)          ∈ (−1, 1)², centre (0, 0)

With ``fit=True`` (the tab's choice) the drawing is then moved into model coordinates the way
the built-in sets are (:mod:`.toy2d_spec`): ``model = (canvas − offset) · scale``, ``offset``
the centre of the drawn pixels' bounding box and ``scale = 2 / (its larger extent)``, so the
drawing spans [−1, 1] along its longer axis, centred, wherever it was drawn and however small.
``scale`` is capped at :data:`MAX_ZOOM`: a tiny scribble is not blown up into a few huge blobs.
The map uses every drawn pixel, before thinning.

**Thinning**: a canvas of strokes has tens of thousands of drawn pixels; at most
``max_anchors`` (:data:`MAX_ANCHORS`) of them are kept, a uniform random subset drawn with a
fixed seed (so the same drawing always gives the same anchors), which keeps the strokes'
density.

=================== ==========================================================================
name                what it is
=================== ==========================================================================
:data:`DRAWN`       the data set's name (``"drawn"``): CSV file names, titles, model cards
:class:`Drawing`    the anchors ``[m, 2]`` of one drawing and the map that placed them
:func:`anchors_from_image`  an RGBA image (or mask) → :class:`Drawing`; ``ValueError`` with a
                    learner-readable text for an empty canvas, too few pixels, a wrong image
:class:`DrawnSpec`  which points: ``n`` draws of the anchors + N(0, noise²), seeded, like
                    ``DataSpec`` (``name``, ``n``, ``noise``, ``seed``, ``draw()``) plus
                    ``fresh(n, seed)``: new draws of the same distribution for the scores
=================== ==========================================================================

No classes: a drawing has one component, so models cannot be trained with class labels on it
(:meth:`DrawnSpec.draw_labelled` says so). Importing this module imports no torch (the tab
lists "drawn" while it builds its UI); torch is imported to hand back the points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ._checks import check_int, check_seed

if TYPE_CHECKING:
    import torch

__all__ = ["ALPHA_DRAWN", "DEFAULT_SPREAD", "DRAWN", "MAX_ANCHORS", "MAX_CANVAS", "MAX_ZOOM",
           "MIN_ANCHORS", "Drawing", "DrawnSpec", "anchors_from_image"]

DRAWN = "drawn"
"""The name of a drawn data set (beside :data:`~.toy2d_spec.TOY_DATASETS`)."""

MAX_ANCHORS = 2000  # anchors kept from one drawing (a uniform random subset, fixed seed)
MIN_ANCHORS = 3  # fewer drawn pixels than this is not a data set
ALPHA_DRAWN = 128  # an RGBA pixel is drawn when its alpha is at least this (0..255)
MAX_ZOOM = 4.0  # largest ``scale`` of the fit: a scribble a quarter of the canvas wide is not
#                 magnified further
MAX_CANVAS = 4096  # largest image side accepted
DEFAULT_SPREAD = 0.02  # the tab's default noise around the strokes (model coordinates)
THIN_SEED = 0  # the thinning's fixed seed


@dataclass(frozen=True, eq=False)
class Drawing:
    """One drawing's anchors and the map that placed them.

    ``anchors [m, 2]`` float32 in model coordinates (``MIN_ANCHORS ≤ m ≤ max_anchors``),
    ``pixels`` the number of drawn pixels (``m`` after thinning), ``offset`` and ``scale`` the
    fit ``model = (canvas − offset) · scale`` (``(0, 0)`` and 1 without ``fit``).
    """

    anchors: np.ndarray
    pixels: int
    offset: tuple[float, float]
    scale: float


def _drawn_mask(image: object) -> np.ndarray:
    """The drawn pixels of an RGBA image ``[H, W, 4]`` (alpha ≥ ALPHA_DRAWN) or a boolean mask
    ``[H, W]``, as a boolean ``[H, W]``; ``ValueError`` for anything else."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"The drawing must be an image (a numpy array [H, W, 4] RGBA or a "
                         f"[H, W] mask); got {type(image).__name__}.")
    if image.ndim == 2 and image.dtype == np.bool_:
        mask = image
    elif image.ndim == 3 and image.shape[2] == 4 and image.dtype == np.uint8:
        mask = image[:, :, 3] >= ALPHA_DRAWN
    else:
        raise ValueError(f"The drawing must be an RGBA image [H, W, 4] of uint8 or a boolean "
                         f"mask [H, W]; got shape {tuple(image.shape)}, dtype {image.dtype}.")
    h, w = mask.shape
    if not (1 <= h <= MAX_CANVAS and 1 <= w <= MAX_CANVAS):
        raise ValueError(f"The drawing must be at most {MAX_CANVAS} × {MAX_CANVAS} pixels; got "
                         f"{w} × {h}.")
    return mask


def anchors_from_image(image: np.ndarray, *, max_anchors: int = MAX_ANCHORS,
                       fit: bool = True) -> Drawing:
    """The anchors of a drawing (see the module docstring for the map and the thinning).

    Args:
        image: RGBA uint8 ``[H, W, 4]`` (drawn: alpha ≥ :data:`ALPHA_DRAWN`) or bool ``[H, W]``.
        max_anchors: keep at most this many drawn pixels (``MIN_ANCHORS..MAX_ANCHORS``).
        fit: centre the drawing and scale its longer extent to [−1, 1] (``scale`` ≤
            :data:`MAX_ZOOM`); ``False`` keeps the canvas coordinates (the canvas spans
            (−1, 1) along its longer side).

    Returns:
        :class:`Drawing`; the same image always gives the same anchors. ``ValueError`` with a
        text for the learner when the canvas is empty or has fewer than
        :data:`MIN_ANCHORS` drawn pixels.
    """
    max_anchors = check_int("max_anchors", max_anchors, MIN_ANCHORS, MAX_ANCHORS)
    mask = _drawn_mask(image)
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise ValueError("The canvas is empty: draw a few strokes or click some points, then "
                         "press 'Use my drawing'.")
    if len(rows) < MIN_ANCHORS:
        raise ValueError(f"Only {len(rows)} pixel{'s' if len(rows) > 1 else ''} drawn: draw at "
                         f"least {MIN_ANCHORS} (a stroke or a few clicks).")
    h, w = mask.shape
    side = max(h, w)
    canvas = np.stack([(2.0 * (cols + 0.5) - w) / side, (h - 2.0 * (rows + 0.5)) / side],
                      axis=1)  # [pixels, 2] float64, y up
    offset, scale = np.zeros(2), 1.0
    if fit:
        lo, hi = canvas.min(axis=0), canvas.max(axis=0)
        offset = (lo + hi) / 2.0
        extent = float((hi - lo).max())
        scale = MAX_ZOOM if extent <= 2.0 / MAX_ZOOM else 2.0 / extent
    keep = np.arange(len(canvas))
    if len(canvas) > max_anchors:
        rng = np.random.default_rng(THIN_SEED)
        keep = np.sort(rng.choice(len(canvas), size=max_anchors, replace=False))
    anchors = ((canvas[keep] - offset) * scale).astype(np.float32)
    anchors.setflags(write=False)
    return Drawing(anchors=anchors, pixels=len(canvas),
                   offset=(float(offset[0]), float(offset[1])), scale=float(scale))


def _check_anchors(anchors: object) -> np.ndarray:
    a = np.asarray(anchors, dtype=np.float32) if not isinstance(anchors, np.ndarray) else anchors
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"anchors must have shape [m, 2]; got {tuple(a.shape)}")
    if not MIN_ANCHORS <= len(a) <= MAX_ANCHORS:
        raise ValueError(f"a drawing needs {MIN_ANCHORS}..{MAX_ANCHORS} anchors; got {len(a)}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ValueError("anchors contain NaN or inf")
    return a


@dataclass(frozen=True)
class DrawnSpec:
    """Which points of a drawing: ``n`` anchors drawn with replacement, each plus N(0, noise²·I).

    The same fields and methods as the built-in sets' ``DataSpec`` (``name``, ``n``, ``noise``,
    ``seed``, ``draw()``), so a session, the forward frames and the figures take either.
    ``anchor_bytes`` holds the anchors ``[m, 2]`` as float32 bytes (compact, hashable, compared
    by value: the same drawing and settings make an equal spec, and training continues);
    :meth:`from_anchors` builds one from an array, :attr:`anchors` gives them back.
    """

    name: ClassVar[str] = DRAWN
    anchor_bytes: bytes = field(repr=False)
    n: int
    noise: float
    seed: int

    def __post_init__(self) -> None:
        if not isinstance(self.anchor_bytes, bytes) or len(self.anchor_bytes) % 8:
            raise ValueError("anchor_bytes must be float32 [m, 2] bytes (use from_anchors)")
        _check_anchors(self.anchors)
        from .toy2d import MAX_POINTS  # (imports torch)

        check_int("n", self.n, 1, MAX_POINTS)
        check_seed(self.seed)
        noise = self.noise
        if isinstance(noise, bool) or not isinstance(noise, int | float) \
                or not math.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")

    @classmethod
    def from_anchors(cls, anchors: np.ndarray | torch.Tensor, n: int, noise: float,
                     seed: int) -> DrawnSpec:
        """The spec of ``anchors [m, 2]`` (model coordinates, ``MIN_ANCHORS ≤ m ≤
        MAX_ANCHORS``); ``ValueError`` for bad arguments."""
        if hasattr(anchors, "detach"):  # a torch tensor
            anchors = anchors.detach().cpu().numpy()
        return cls(_check_anchors(anchors).tobytes(), n, float(noise), seed)

    @property
    def anchors(self) -> np.ndarray:
        """The anchors, float32 ``[m, 2]`` (read-only)."""
        return np.frombuffer(self.anchor_bytes, dtype=np.float32).reshape(-1, 2)

    @property
    def num_anchors(self) -> int:
        return len(self.anchor_bytes) // 8

    def fresh(self, n: int, seed: int) -> torch.Tensor:
        """``n`` points of the drawing's distribution, float32 ``[n, 2]``: anchors drawn
        uniformly with replacement, plus N(0, noise²·I); the same (n, seed) gives the same
        points. :meth:`draw` is ``fresh(self.n, self.seed)``; other seeds are fresh draws
        (the quality score's reference sets)."""
        import torch

        from .toy2d import MAX_POINTS

        n = check_int("n", n, 1, MAX_POINTS)
        rng = np.random.default_rng(check_seed(seed))
        a = self.anchors
        pts = a[rng.integers(0, len(a), n)].astype(np.float64)
        if self.noise > 0:
            pts = pts + self.noise * rng.standard_normal(pts.shape)
        return torch.from_numpy(pts.astype(np.float32))

    def draw(self) -> torch.Tensor:
        """The training points, float32 ``[n, 2]`` (the same spec always gives the same)."""
        return self.fresh(self.n, self.seed)

    def draw_labelled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A drawing has no classes: always ``ValueError``."""
        raise ValueError("A drawn data set has no classes, so a model cannot be trained with "
                         "class labels on it (guidance needs classes).")
