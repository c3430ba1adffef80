"""Tab 3's limits and defaults, and its inputs checked into configs (bad input → ``gr.Error``).

Torch-free: the layout reads these while the app is built; the workflow
(:mod:`diffusion_core.workflows.toy2d`) is imported by the first event that needs it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import gradio as gr

from diffusion_core import presets
from diffusion_core.data.drawn import DEFAULT_SPREAD, DRAWN
from diffusion_core.data.toy2d_spec import TOY_DATASETS, TOY_SPECS
from diffusion_core.models.mlp_config import ACTIVATIONS, TIME_EMBEDDINGS, MLPConfig
from diffusion_core.schedule.config import ScheduleConfig
from diffusion_core.training.config import PREDICTIONS, TrainConfig
from pages import common, limits

if TYPE_CHECKING:
    from diffusion_core.data.drawn import DrawnSpec
    from diffusion_core.workflows.toy2d import DataSpec, Toy2DSession

workflow = common.LazyModule("diffusion_core.workflows.toy2d")
drawn = common.LazyModule("diffusion_core.data.drawn")

PRESET = presets.TOY  # the app and CLI default 2D recipe (see diffusion_core/presets.py)
DATASETS: tuple[str, ...] = TOY_DATASETS  # the built-in sets (a link or lesson may name them)
# The Data set list: the built-in sets, then the learner's drawing (pages.toy2d.draw).
DRAW_LABEL = "Draw your own"
DATA_CHOICES: tuple[tuple[str, str], ...] = (*((n, n) for n in DATASETS), (DRAW_LABEL, DRAWN))
DEFAULT_DATASET = "moons"
DEFAULT_POINTS = 2000
MAX_NOISE = 0.5
MAX_SEED = common.MAX_SEED
WIDTHS = (32, 64, 128, 256, 512)
MAX_DEPTH = 6
MAX_BATCH = 4096
LR_MIN, LR_MAX = 1e-6, 1.0
# Training steps per press: the server's cap (pages.limits; DIFFUSION_LAB_TRAIN_STEPS).
MAX_SAMPLES = 5000

SOURCE_PRESET, SOURCE_SHARED, SOURCE_CUSTOM = "preset", "shared", "custom"

# What the network predicts (TrainConfig.prediction): (label, value) for the Prediction control.
PREDICTION_CHOICES: tuple[tuple[str, str], ...] = (
    ("ε (the noise)", "eps"), ("x0 (the clean point)", "x0"), ("v (velocity)", "v"))
PREDICTION_NAMES = {"eps": "ε", "x0": "x0", "v": "v"}  # short names for legends and texts
assert tuple(v for _, v in PREDICTION_CHOICES) == PREDICTIONS == tuple(PREDICTION_NAMES)
# The vector field's arrows: the network's, the ideal denoiser's, or both overlaid.
FIELD_CHOICES: tuple[tuple[str, str], ...] = (
    ("Learned −ε̂_θ", "learned"), ("Ideal −ε*", "ideal"), ("Both", "both"))
# Which ε-predictor runs the reverse chain (Sample sub-tab).
DENOISER_CHOICES: tuple[tuple[str, str], ...] = (
    ("trained network", "network"), ("ideal (memorises the training set)", "ideal"))
# The likelihood bound: reverse variance σ_t² and the points it is measured on.
VARIANCE_CHOICES: tuple[tuple[str, str], ...] = (
    ("β̃_t (posterior variance)", "beta_tilde"), ("β_t", "beta"))
BOUND_POINTS_CHOICES: tuple[tuple[str, str], ...] = (
    ("training points", "train"), ("fresh points (never trained on)", "fresh"))
BOUND_N_DEFAULT, BOUND_N_MIN, BOUND_N_MAX = 1000, 10, 5000


def is_session(state) -> bool:
    """Whether ``state`` holds a trained session (imports the workflow only if it might)."""
    return state is not None and isinstance(state, workflow.Toy2DSession)


def need_model(state) -> Toy2DSession | None:
    """The session, or ``None`` after a warning that asks the user to train first."""
    if is_session(state):
        return state
    gr.Warning("Train a model first: press ▶ Train (a few hundred steps are enough to see "
               "something).")
    return None


def check_dataset(dataset) -> None:
    if dataset not in DATASETS and dataset != DRAWN:
        raise common.UserError(f"Unknown data set {common.short(dataset)}; choose one of "
                               f"{', '.join(DATASETS)} or {DRAWN}.")


def default_noise(dataset) -> float:
    """The set's default noise (a drawing's: the default spread around its strokes)."""
    check_dataset(dataset)
    return DEFAULT_SPREAD if dataset == DRAWN else TOY_SPECS[dataset].default_noise


NO_DRAWING = ("Draw on the canvas below the data set list (strokes or clicks), then press "
              "'Use my drawing'.")


def data_numbers(n, noise, seed) -> tuple[int, float, int]:
    """*Points*, *Noise (std)* and the data *Seed*, checked (a readable error if bad)."""
    n = common.number("Number of points", n, 10, common.MAX_POINTS, integer=True)
    noise = common.number("Noise (std of the jitter)", noise, 0.0, MAX_NOISE)
    seed = common.number("Data seed", seed, 0, MAX_SEED, integer=True)
    return n, float(noise), seed


def data_spec(dataset, n, noise, seed, drawing=None) -> DataSpec | DrawnSpec:
    """The data the boxes ask for; ``drawing`` (the anchors ``[m, 2]`` of the learner's
    drawing, :mod:`pages.toy2d.draw`) is needed when ``dataset`` is ``"drawn"``."""
    check_dataset(dataset)
    n, noise, seed = data_numbers(n, noise, seed)
    if dataset == DRAWN:
        if drawing is None:
            raise common.UserError(f"No drawing yet. {NO_DRAWING}")
        try:
            return drawn.DrawnSpec.from_anchors(drawing, n, float(noise), seed)
        except (TypeError, ValueError) as e:
            raise common.UserError(f"The drawing cannot be used ({e}). {NO_DRAWING}") from None
    return workflow.DataSpec(dataset, n, float(noise), seed)


def schedule_from_ui(source, kind, T, shared) -> ScheduleConfig:
    """The schedule the user picked: the 2D preset, tab 1's, or kind + T chosen here."""
    if source == SOURCE_PRESET:
        return PRESET.schedule
    if source == SOURCE_SHARED:
        try:
            cfg = ScheduleConfig.from_dict(dict(shared or {}))
        except (TypeError, ValueError) as e:
            raise common.UserError(f"Tab 1's schedule cannot be used here: {e}") from None
        if cfg.T > common.T_MAX:
            raise common.UserError(f"Tab 1's schedule has T = {cfg.T}; this tab allows T ≤ "
                           f"{common.T_MAX}.")
        return cfg
    if source == SOURCE_CUSTOM:
        # Linear-type kinds get DDPM's 1e-4..0.02 scaled by 1000/T so short chains still end
        # near pure noise (improved-diffusion); cosine ignores the β range.
        return common.schedule_config(kind, T, 1e-4, 0.02, scale_to_T=True)
    raise common.UserError(f"Unknown schedule choice {common.short(source)}.")


def num_classes(dataset, conditional) -> int:
    """``MLPConfig.num_classes`` from the "Train with class labels" box: the data set's number
    of classes when ticked, else 0 (:func:`~diffusion_core.workflows.toy2d.num_classes_for`);
    a readable error when the set has no classes."""
    check_dataset(dataset)
    if conditional is None:
        conditional = False
    if not isinstance(conditional, bool):
        raise common.UserError(f"'Train with class labels' must be true or false (got "
                               f"{common.short(conditional)}).")
    if dataset == DRAWN:
        if conditional:
            raise common.UserError(
                "A drawing has no classes, so a model cannot be trained with class labels on "
                "it (guidance needs classes). Untick 'Train with class labels (for guidance)', "
                "or choose a set with classes: " + ", ".join(
                    n for n in DATASETS if TOY_SPECS[n].classes) + ".")
        return 0
    try:
        return workflow.num_classes_for(dataset, conditional)
    except ValueError as e:
        raise common.UserError(f"{e} Untick 'Train with class labels (for guidance)', or "
                               "choose one of them.") from None


def model_config(hidden, depth, time_embedding, activation, T: int, classes: int = 0
                 ) -> MLPConfig:
    """The MLP from the boxes; ``classes`` is :func:`num_classes`' answer (0: unconditional)."""
    hidden = common.number("Width", hidden, WIDTHS[0], WIDTHS[-1], integer=True)
    depth = common.number("Depth", depth, 1, MAX_DEPTH, integer=True)
    if time_embedding not in TIME_EMBEDDINGS:
        raise common.UserError(f"Time embedding must be one of {', '.join(TIME_EMBEDDINGS)}.")
    if activation not in ACTIVATIONS:
        raise common.UserError(f"Activation must be one of {', '.join(ACTIVATIONS)}.")
    return replace(PRESET.model, hidden=hidden, depth=depth, time_embedding=time_embedding,
                   activation=activation, num_timesteps=T, num_classes=classes)


def max_steps() -> int:
    """Training steps one press may ask for (the server's cap)."""
    return limits.ACTIVE.train_steps


def check_choice(name: str, value, choices: tuple[tuple[str, str], ...]) -> str:
    """``value`` if it is one of ``choices``' values, else :class:`~pages.common.UserError`."""
    values = [v for _, v in choices]
    if not isinstance(value, str) or value not in values:
        raise common.UserError(f"{name}: {common.short(value)} is not one of the choices "
                               f"({', '.join(values)}).")
    return value


def train_config(lr, batch_size, steps, prediction="eps") -> TrainConfig:
    """The recipe from the boxes; an empty box means the preset's value.

    ``prediction`` (ε, x0 or v: what the network outputs) is ``TrainConfig.prediction``.
    """
    p = PRESET.train
    lr = common.number("lr (learning rate)", lr, LR_MIN, LR_MAX, default=p.lr)
    batch_size = common.number("Batch size", batch_size, 1, MAX_BATCH, integer=True,
                               default=p.batch_size)
    steps = common.number("Training steps", steps, 1, max_steps(), integer=True,
                          default=p.steps)
    prediction = check_choice("Prediction", prediction, PREDICTION_CHOICES)
    return replace(PRESET.train, lr=lr, batch_size=batch_size, steps=steps, report_every=1,
                   prediction=prediction)


def _schedule_label(shared) -> str:
    try:
        cfg = ScheduleConfig.from_dict(dict(shared or {}))
        return f"Tab 1's schedule ({cfg.kind}, T = {cfg.T})"
    except (TypeError, ValueError):
        return "Tab 1's schedule"


def source_choices(shared) -> list[tuple[str, str]]:
    p = PRESET.schedule
    return [
        (f"2D preset ({p.kind}, T = {p.T})", SOURCE_PRESET),
        (_schedule_label(shared), SOURCE_SHARED),
        ("Kind and T below", SOURCE_CUSTOM),
    ]
