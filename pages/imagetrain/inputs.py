"""The image-training tab's choices and defaults, and its inputs checked (bad input → message).

Torch-free: the layout reads these while the app is built; the workflow
(:mod:`diffusion_core.workflows.image_train`) is imported by the first event that needs it.
Its names (data sets, model kinds, recipes, image sizes) are repeated here as plain strings
because importing it loads torch; ``tests/pages/test_imagetrain.py`` checks both lists agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from diffusion_core import presets
from diffusion_core.schedule.config import BUILTIN_KINDS, ScheduleConfig
from pages import common

if TYPE_CHECKING:
    from diffusion_core.workflows.image_train import ImageTrainSession

workflow = common.LazyModule("diffusion_core.workflows.image_train")

UPLOAD = "upload"
# (label, value): the registry sets the train CLI knows, then the learner's own images.
DATA_CHOICES: tuple[tuple[str, str], ...] = (
    ("digits 8×8 (scikit-learn, 1,347 images)", "digits8"),
    ("digits 16×16 (the same digits, enlarged)", "digits"),
    ("colour gradients 16×16", "gradients"),
    ("coloured shapes 16×16", "shapes"),
    ("my own images (upload below)", UPLOAD),
)
DEFAULT_DATA = "digits8"
MODEL_CHOICES: tuple[tuple[str, str], ...] = (
    ("pixel MLP (the colour-gradient tutorial's)", "pixel_mlp"),
    ("U-Net small (0.5 M parameters)", "unet_small"),
    ("U-Net medium (1.1 M, the shipped models' layout)", "unet_medium"),
)
MODEL_NAMES = {"pixel_mlp": "pixel MLP", "unet_small": "U-Net small",
               "unet_medium": "U-Net medium"}
DEFAULT_MODEL = "unet_small"
RECIPE_CHOICES: tuple[tuple[str, str], ...] = (
    ("quick (the fast default)", "quick"),
    ("default (the recipe of the shipped models: slower)", "default"),
)
DEFAULT_RECIPE = "quick"


def recipe_steps(dataset, recipe) -> int:
    """The training steps of ``recipe`` for ``dataset`` (what the Steps box shows; presets are
    torch-free). Unknown values get the default recipe's count for digits."""
    known = {v for _, v in DATA_CHOICES}, {v for _, v in RECIPE_CHOICES}
    dataset = dataset if dataset in known[0] else DEFAULT_DATA
    recipe = recipe if recipe in known[1] else DEFAULT_RECIPE
    return presets.preset_for(dataset, image=True, recipe=recipe).train.steps


def recipe_defaults(dataset, recipe) -> tuple[str, str, int]:
    """``(model kind, schedule kind, T)`` of ``recipe``'s preset for ``dataset``, what the
    Model, Schedule and T controls take when the data or the recipe changes: the pixel MLP
    where the preset is one (quick colour gradients), else U-Net small (quick) or medium
    (default, the shipped models' layout). Unknown values: the defaults for digits."""
    known = {v for _, v in DATA_CHOICES}, {v for _, v in RECIPE_CHOICES}
    dataset = dataset if dataset in known[0] else DEFAULT_DATA
    recipe = recipe if recipe in known[1] else DEFAULT_RECIPE
    preset = presets.preset_for(dataset, image=True, recipe=recipe)
    if type(preset.model).__name__ == "PixelMLPConfig":
        model = "pixel_mlp"
    else:
        model = "unet_small" if recipe == "quick" else "unet_medium"
    kind = preset.schedule.kind
    kind = kind if kind in SCHEDULE_CHOICES else DEFAULT_SCHEDULE
    return model, kind, min(max(preset.schedule.T, T_MIN), T_MAX)


SIZE_CHOICES: tuple[tuple[str, int], ...] = (("16×16", 16), ("32×32", 32))
CHANNEL_CHOICES: tuple[tuple[str, int], ...] = (("grey (1 channel)", 1), ("colour (3)", 3))
SCHEDULE_CHOICES: tuple[str, ...] = BUILTIN_KINDS
DEFAULT_SCHEDULE, DEFAULT_T = "cosine", 1000
T_MIN, T_MAX = 50, 2000


def is_session(state) -> bool:
    """Whether ``state`` holds a model (imports the workflow only if it might)."""
    return state is not None and isinstance(state, workflow.ImageTrainSession)


def choice(name: str, value, choices) -> object:
    """``value`` if it is one of the ``(label, value)`` choices, else a :class:`UserError`."""
    values = [v for _, v in choices]
    if value not in values:
        raise common.UserError(f"{name}: {common.short(value)} is not one of the choices "
                               f"({', '.join(map(str, values))}).")
    return value


def schedule_config(kind, T) -> ScheduleConfig:
    """The schedule from its two controls. Non-cosine kinds scale their β range by 1000/T
    (``scale_to_T``), so the chain ends near pure noise whatever T is."""
    if kind not in SCHEDULE_CHOICES:
        raise common.UserError(f"Schedule: {common.short(kind)} is not one of "
                               f"{', '.join(SCHEDULE_CHOICES)}.")
    T = common.number("T (number of noise levels)", T, T_MIN, T_MAX, integer=True,
                      default=DEFAULT_T)
    try:
        return ScheduleConfig(kind=kind, T=T, scale_to_T=kind != "cosine")
    except ValueError as e:
        raise common.UserError(str(e)) from None


def uploaded_paths(files) -> list[str]:
    """The file paths a ``gr.File`` (one or several files) gave: ``[]`` for none."""
    if files is None:
        return []
    items = files if isinstance(files, (list, tuple)) else [files]
    paths = []
    for f in items:
        path = getattr(f, "path", None) or getattr(f, "name", None) or f
        if not isinstance(path, str):
            raise common.UserError("The upload could not be read: upload image files or a "
                                   ".zip of images again.")
        paths.append(path)
    return paths


def need_model(state) -> ImageTrainSession:
    """The session, or a message asking to train first."""
    if not is_session(state):
        raise common.UserError("Train a model first: press ▶ Train.")
    return state
