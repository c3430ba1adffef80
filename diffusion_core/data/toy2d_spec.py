"""The 2D toy sets' specs: names, fixed affine maps to model coordinates, default noise.

Torch-free (standard library only): the app lists the sets and their default noise while it
builds its UI, before torch is imported. The points themselves come from
:func:`diffusion_core.data.toy2d.make_2d`.

Each set is moved into model coordinates by a FIXED affine map, ``model = (original − offset) ·
scale`` (one isotropic ``scale``, so shapes are not distorted). ``offset`` is the centre of the
set's nominal (noise-free) support and ``scale = 2 / (largest extent of that support)``, so the
noise-free set spans [−1, 1] along its longer axis whatever ``n`` or ``seed`` is drawn.

============ =================================================== =================== =========
name         original coordinates                                offset              scale
============ =================================================== =================== =========
moons        make_moons' half circles: x ∈ [−1, 2], y ∈ [−½, 1]   (0.5, 0.25)         2/3
circles      make_circles' circles (factor 0.5): radii 1 and 0.5  (0, 0)              1
swiss_roll   ``make_swiss_roll`` columns (x, z), t ∈ [1.5π, 4.5π]  (1.5643, 1.5482)    2/25.178
spirals      two arms r = θ, θ = 3π√u, arm k rotated by kπ         (0, 0)              1/(3π)
s_curve      ``make_s_curve`` columns (x, z): x ∈ [−1,1], z ∈ [−2,2] (0, 0)            1/2
gaussians8   8 Gaussians centred on a ring of radius 2             (0, 0)              1/2
checkerboard 8 filled 2×2 cells of a 4×4 board on [−4, 4]²         (0, 0)              1/4
============ =================================================== =================== =========

Classes (``ToySpec.classes``, in label order; ``make_2d(..., return_labels=True)``) for the
class-conditional models of classifier-free guidance. Each label is the component a point was
drawn from, so the labelled draw has exactly the unlabelled draw's points:

============ ==========================================================================
moons        0 upper moon, 1 lower moon (make_moons' labels)
circles      0 outer circle (r = 1), 1 inner circle (r = ½) (make_circles' labels)
spirals      0 arm 0, 1 arm 1 (rotated by π)
gaussians8   k = 0..7: the Gaussian at angle k·45° (0 = the rightmost, counter-clockwise)
checkerboard k = 0..7: the dark cell (i, j) of the 4×4 board, i, j ∈ 0..3 counted from the
             bottom-left, i + j even, numbered in order of (i, j): (0,0), (0,2), (1,1), (1,3),
             (2,0), (2,2), (3,1), (3,3). Eight cells rather than two colours: the data cover
             only the dark cells, and eight classes make a harder guidance task than two.
swiss_roll   no classes (one curve)
s_curve      no classes (one curve)
============ ==========================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CHECKER_CELLS", "LABELLED_TOY_DATASETS", "TOY_DATASETS", "TOY_SPECS", "ToySpec"]


@dataclass(frozen=True)
class ToySpec:
    """One 2D toy set: its fixed affine map to model coordinates and its default noise.

    ``model = (original − offset) · scale``; ``default_noise`` is a Gaussian std in model
    coordinates. ``classes`` names the classes in label order (empty: the set has none).
    """

    name: str
    description: str
    offset: tuple[float, float]
    scale: float
    default_noise: float
    classes: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """Number of classes (0 when the set has no labels)."""
        return len(self.classes)


# Swiss roll support (t ∈ [1.5π, 4.5π], columns x = t·cos t, z = t·sin t), from a dense grid of t:
# x ∈ [−9.4773, 12.6059], z ∈ [−11.0407, 14.1372]; z is the larger extent (25.1779).
_SWISS_X = (-9.4773, 12.6059)
_SWISS_Z = (-11.0407, 14.1372)

# The dark cells (i, j) of the checkerboard, i + j even, in label order (see the table above).
CHECKER_CELLS: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0)
_CHECKER_CLASSES = tuple(f"cell ({i}, {j})" for i, j in CHECKER_CELLS)

TOY_SPECS: dict[str, ToySpec] = {
    s.name: s
    for s in (
        ToySpec("moons", "two interleaving half circles (make_moons' curves, random angles)",
                (0.5, 0.25), 2.0 / 3.0, 0.05, ("upper moon", "lower moon")),
        ToySpec("circles", "two concentric circles, radii 1 and 0.5, random angles",
                (0.0, 0.0), 1.0, 0.03, ("outer circle", "inner circle")),
        ToySpec("swiss_roll", "swiss roll seen from the side (make_swiss_roll, columns x, z)",
                ((_SWISS_X[0] + _SWISS_X[1]) / 2, (_SWISS_Z[0] + _SWISS_Z[1]) / 2),
                2.0 / (_SWISS_Z[1] - _SWISS_Z[0]), 0.03),
        ToySpec("spirals", "two intertwined Archimedean spirals, 1.5 turns each",
                (0.0, 0.0), 1.0 / (3.0 * math.pi), 0.02, ("arm 0", "arm 1")),
        ToySpec("s_curve", "S-shaped curve (make_s_curve, columns x, z)",
                (0.0, 0.0), 0.5, 0.03),
        ToySpec("gaussians8", "mixture of 8 equal Gaussians on a ring (noise = component std)",
                (0.0, 0.0), 0.5, 0.08, tuple(f"{45 * k}°" for k in range(8))),
        ToySpec("checkerboard", "uniform on the 8 dark cells of a 4×4 checkerboard",
                (0.0, 0.0), 0.25, 0.0, _CHECKER_CLASSES),
    )
}

TOY_DATASETS: tuple[str, ...] = tuple(TOY_SPECS)
"""Names accepted by :func:`~diffusion_core.data.toy2d.make_2d`."""

LABELLED_TOY_DATASETS: tuple[str, ...] = tuple(n for n, s in TOY_SPECS.items() if s.classes)
"""The sets with classes (``make_2d(..., return_labels=True)``)."""
