"""Synthetic RGB image sets with exact generative models: colour gradients and shapes.

Both give float32 images ``[n, 3, size, size]`` in [−1, 1], drawn from a ``torch.Generator``
seeded with ``seed``. Registry sets: ``"gradients"`` (3×16×16 two-colour gradients as in the
colour-gradient tutorial, :func:`make_gradients`) and ``"shapes"`` (3×16×16 anti-aliased
two-colour shapes, :func:`make_shapes`). Their judges, which fit exactly these models, live in
:mod:`diffusion_core.evaluation.gradients` and :mod:`diffusion_core.evaluation.shapes`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from ._checks import check_choice, check_int, check_seed
from .imageset import ImageDatasetSpec
from .toy2d import MAX_POINTS  # the same cap on n as the 2D sets

__all__ = [
    "GRADIENTS_SPEC",
    "GRADIENT_DIRECTIONS",
    "SHAPES_SPEC",
    "SHAPE_CLASSES",
    "SHAPE_MIN_CONTRAST",
    "gradient_weight_maps",
    "make_gradients",
    "make_shapes",
]

# ---------------------------------------------------------------------------------------------
# Colour gradients (the gradient tutorial)
# ---------------------------------------------------------------------------------------------

GRADIENTS_SPEC = ImageDatasetSpec("gradients", 3, 16,
                                  "random two-colour gradients (the colour-gradient tutorial)")

GRADIENT_DIRECTIONS: tuple[str, ...] = ("diagonal", "anti_diagonal", "horizontal", "vertical")
"""The weight maps of :func:`gradient_weight_maps`, in order."""


def gradient_weight_maps(height: int, width: int) -> torch.Tensor:
    """The blend weights ``w`` of the gradient model: float32 ``[4, height, width]`` in [0, 1].

    With row ``i`` and column ``j``, ``y = i / (H − 1)`` and ``x = j / (W − 1)``:

    * ``diagonal`` (the colour-gradient tutorial's layout): ``w = (W·x + H·y) / (W + H)``: 0 at
      the top-left corner, 1 at the bottom-right corner (``(x + y) / 2`` for square images);
    * ``anti_diagonal``: ``w = (W·(1 − x) + H·y) / (W + H)``: top-right → bottom-left;
    * ``horizontal``: ``w = x``; ``vertical``: ``w = y``.

    Opposite directions need no entry of their own: swapping the two colours reverses ``w``.
    """
    height = check_int("height", height, 2, 4096)
    width = check_int("width", width, 2, 4096)
    y = torch.linspace(0.0, 1.0, height, dtype=torch.float64).view(-1, 1).expand(height, width)
    x = torch.linspace(0.0, 1.0, width, dtype=torch.float64).view(1, -1).expand(height, width)
    maps = torch.stack(
        [
            (width * x + height * y) / (width + height),
            (width * (1 - x) + height * y) / (width + height),
            x,
            y,
        ]
    )
    return maps.float()


def make_gradients(
    n: int,
    size: int = 16,
    seed: int = 0,
    *,
    directions: Literal["all", "diagonal"] = "all",
) -> torch.Tensor:
    """Random two-colour gradient images: float32 ``[n, 3, size, size]``.

    The toy data of the colour-gradient tutorial.

    Exact generative model, per image: two colours ``c0, c1 ~ Uniform([−1, 1]³)``, a direction
    ``d`` uniform over :data:`GRADIENT_DIRECTIONS` (``directions="all"``) or always
    ``"diagonal"`` (the colour-gradient tutorial's layout), and
    ``pixel[:, i, j] = c0 · (1 − w_d[i, j]) + c1 · w_d[i, j]`` with ``w_d`` from
    :func:`gradient_weight_maps`. Values lie in [−1, 1]. Randomness comes from a
    ``torch.Generator`` seeded with ``seed``.
    ``evaluation.gradients.gradient_residual`` fits exactly this model.
    """
    n = check_int("n", n, 1, MAX_POINTS)
    size = check_int("size", size, 2, 256)
    seed = check_seed(seed)
    check_choice("directions", directions, ("all", "diagonal"))
    g = torch.Generator().manual_seed(seed)
    c0 = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
    c1 = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
    if directions == "all":
        d = torch.randint(0, len(GRADIENT_DIRECTIONS), (n,), generator=g)
    else:
        d = torch.zeros(n, dtype=torch.int64)
    w = gradient_weight_maps(size, size)[d].unsqueeze(1)  # [n, 1, H, W]
    return (c0 * (1 - w) + c1 * w).clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Coloured shapes
# ---------------------------------------------------------------------------------------------

SHAPES_SPEC = ImageDatasetSpec(
    "shapes", 3, 16, "random anti-aliased circles, squares, triangles, pluses (2 colours)"
)

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "plus")
"""The classes of :func:`make_shapes`, in label order."""

SHAPE_MIN_CONTRAST = 0.8
"""Smallest L2 distance between the two colours of a :func:`make_shapes` image (in [−1, 1]³)."""

_SHAPE_SUPERSAMPLE = 4


def _shape_masks(labels: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, r: torch.Tensor,
                 size: int) -> torch.Tensor:
    """Anti-aliased coverage masks float32 ``[n, 1, size, size]`` in [0, 1].

    Each pixel is the mean of a 4×4 grid of point tests at the sub-pixel centres (pixel ``(i, j)``
    covers ``[j, j + 1] × [i, i + 1]``; ``x`` is the column coordinate, ``y`` the row one).
    """
    k = _SHAPE_SUPERSAMPLE
    u = (torch.arange(size * k, dtype=torch.float64) + 0.5) / k  # sub-pixel centres
    x = u.view(1, 1, -1)
    y = u.view(1, -1, 1)
    dx = (x - cx.view(-1, 1, 1)).abs()
    dy = y - cy.view(-1, 1, 1)
    rr = r.view(-1, 1, 1)
    circle = dx**2 + dy**2 <= rr**2
    square = (dx <= rr) & (dy.abs() <= rr)
    triangle = (dy <= rr) & (dx <= (dy + rr) / 2)  # apex (cx, cy − r), base y = cy + r, width 2r
    arm = rr / 3
    plus = ((dx <= arm) & (dy.abs() <= rr)) | ((dx <= rr) & (dy.abs() <= arm))
    fine = torch.stack([circle, square, triangle, plus], 1)  # [n, 4, Hk, Wk]
    fine = fine[torch.arange(labels.shape[0]), labels].unsqueeze(1).float()
    return F.avg_pool2d(fine, k)


def make_shapes(n: int, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random filled shapes on a plain background: ``(images, labels)``.

    ``images`` is float32 ``[n, 3, size, size]`` in [−1, 1], ``labels`` int64 ``[n]`` indexing
    :data:`SHAPE_CLASSES` (circle 0, square 1, triangle 2, plus 3).

    Exact generative model, per image (pixel ``(i, j)`` covers ``[j, j + 1] × [i, i + 1]`` in
    continuous coordinates ``(x, y)``, the image spanning ``[0, size]²``):

    * class ``k ~ Uniform{0, 1, 2, 3}``;
    * colours ``fg, bg ~ Uniform([−1, 1]³)``, both redrawn until ``‖fg − bg‖₂ ≥ 0.8``
      (:data:`SHAPE_MIN_CONTRAST`);
    * half-extent ``r ~ Uniform[0.2·size, 0.4·size]``, centre ``cx, cy ~ Uniform[r, size − r]``
      (so every shape lies inside its box ``[cx − r, cx + r] × [cy − r, cy + r]`` inside the
      image);
    * shape, with ``dx = x − cx``, ``dy = y − cy``: circle ``dx² + dy² ≤ r²``; square
      ``|dx|, |dy| ≤ r``; triangle (apex up) ``dy ≤ r`` and ``|dx| ≤ (dy + r) / 2``; plus
      ``(|dx| ≤ r/3 and |dy| ≤ r) or (|dx| ≤ r and |dy| ≤ r/3)``;
    * coverage ``m[i, j]`` = the fraction of a 4×4 grid of sub-pixel centres inside the shape
      (4× supersampling, area-averaged), and ``pixel = bg · (1 − m) + fg · m``.

    Randomness comes from a ``torch.Generator`` seeded with ``seed``, drawn in this order:
    labels, colours (then redraws of the rejected pairs), r, cx, cy.
    ``evaluation.shapes.shape_quality``'s ``two_colour_residual`` fits the
    ``bg · (1 − m) + fg · m`` model.
    """
    n = check_int("n", n, 1, MAX_POINTS)
    size = check_int("size", size, 8, 256)
    seed = check_seed(seed)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(SHAPE_CLASSES), (n,), generator=g)
    fg = torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1
    bg = torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1
    bad = (fg - bg).norm(dim=1) < SHAPE_MIN_CONTRAST
    while bool(bad.any()):
        m = int(bad.sum())
        fg[bad] = torch.rand(m, 3, generator=g, dtype=torch.float64) * 2 - 1
        bg[bad] = torch.rand(m, 3, generator=g, dtype=torch.float64) * 2 - 1
        bad = (fg - bg).norm(dim=1) < SHAPE_MIN_CONTRAST
    r = (0.2 + 0.2 * torch.rand(n, generator=g, dtype=torch.float64)) * size
    cx = r + (size - 2 * r) * torch.rand(n, generator=g, dtype=torch.float64)
    cy = r + (size - 2 * r) * torch.rand(n, generator=g, dtype=torch.float64)
    masks = torch.cat([_shape_masks(labels[i:i + 1024], cx[i:i + 1024], cy[i:i + 1024],
                                    r[i:i + 1024], size) for i in range(0, n, 1024)])
    fg4 = fg.float().view(n, 3, 1, 1)
    bg4 = bg.float().view(n, 3, 1, 1)
    return (bg4 * (1 - masks) + fg4 * masks).clamp(-1.0, 1.0), labels
