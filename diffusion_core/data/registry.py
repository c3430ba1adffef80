"""The named image sets (for ``--dataset NAME``) and one loader for all of them.

==========  ========  ==========================================================================
name        shape     source
==========  ========  ==========================================================================
digits      1×16×16   scikit-learn digits, train split, bilinear ×2 (:mod:`.digits`)
digits8     1×8×8     scikit-learn digits, train split, native (:mod:`.digits`)
gradients   3×16×16   two-colour gradients (:func:`.synthetic.make_gradients`)
shapes      3×16×16   anti-aliased two-colour shapes (:func:`.synthetic.make_shapes`)
==========  ========  ==========================================================================

Each set's :class:`~.imageset.ImageDatasetSpec` sits beside its generator; this module only
collects them, and the class names of the sets with labels (:data:`IMAGE_CLASSES`, for
class-conditional models). User files have their own loaders (:mod:`.files`).
"""

from __future__ import annotations

from collections.abc import Callable

from .digits import DIGIT_CLASSES, DIGITS8_SPEC, DIGITS_SPEC, load_digits_images
from .imageset import ImageDatasetSpec, ImageSet
from .synthetic import GRADIENTS_SPEC, SHAPE_CLASSES, SHAPES_SPEC, make_gradients, make_shapes

__all__ = ["IMAGE_CLASSES", "IMAGE_DATASETS", "ImageDatasetSpec", "is_image_dataset",
           "load_image_dataset"]

IMAGE_DATASETS: dict[str, ImageDatasetSpec] = {
    s.name: s for s in (DIGITS_SPEC, DIGITS8_SPEC, GRADIENTS_SPEC, SHAPES_SPEC)
}

IMAGE_CLASSES: dict[str, tuple[str, ...]] = {
    "digits": DIGIT_CLASSES, "digits8": DIGIT_CLASSES, "shapes": SHAPE_CLASSES,
}
"""Class names in label order of the registry sets whose ``ImageSet.labels`` are classes."""


def is_image_dataset(name: str) -> bool:
    """Whether ``name`` is in :data:`IMAGE_DATASETS`."""
    return name in IMAGE_DATASETS


def load_image_dataset(name: str, **kw: object) -> ImageSet:
    """Load registry set ``name`` as an :class:`~.imageset.ImageSet`.

    Keywords: ``digits`` / ``digits8`` take ``split`` (default ``"train"``), ``seed``,
    ``test_fraction`` (see :func:`~.digits.load_digits_images`); ``gradients`` takes ``n``
    (default 2000), ``seed``, ``directions`` (see :func:`~.synthetic.make_gradients`; labels are
    ``None``); ``shapes`` takes ``n`` (default 2000) and ``seed`` (see
    :func:`~.synthetic.make_shapes`; labels are the shape classes).
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image data set {name!r}; valid names: "
                         f"{', '.join(IMAGE_DATASETS)}")
    loaders: dict[str, Callable[..., ImageSet]] = {
        "digits": lambda **k: load_digits_images(16, **k),
        "digits8": lambda **k: load_digits_images(8, **k),
        "gradients": lambda n=2000, **k: ImageSet(make_gradients(n, 16, **k), None, "gradients"),
        "shapes": lambda n=2000, **k: ImageSet(*make_shapes(n, 16, **k), "shapes"),
    }
    return loaders[name](**kw)
