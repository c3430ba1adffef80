"""Classifier-free guidance on an image checkpoint, UI-free: the class × scale grid and the
fidelity–diversity curve of tab 4.

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``; t = 0 is one
noising step and ᾱ at t = −1 is 1 (the clean image). Every chain starts from a seeded x_T at
its first visited t and walks ``(t, t_prev)`` pairs down to t_prev = −1; the schedule is the
checkpoint's own.

Guidance (Ho & Salimans 2022, :mod:`diffusion_core.sampling.guidance`), one convention
everywhere: ε̃ = ε_u + s·(ε_c − ε_u); s = 0 the unconditional model, s = 1 the conditional
one, s > 1 guides harder (diffusers' ``guidance_scale``). A class-conditional checkpoint
(``num_classes = K > 0``) holds both models: ε_c = ε(x_t, t, y) and ε_u = ε(x_t, t, ∅), the
null class K that training showed with probability ``p_uncond``.

===============================  ==============================================================
name                             what it is
===============================  ==============================================================
:class:`GridRun`                 the class × scale grid as ONE batched chain (per-sample labels and
                                 scales), streamed step by step; → :class:`GuidanceGrid`
:func:`digit_scale_grid`         the same in one call
:func:`deterministic_settings`   a checkpoint's sampler settings as DDIM η = 0 (the grid's)
:class:`GridLayout`              where each cell and its images lie in the grid's picture
:func:`guidance_judge`           how a checkpoint's guided samples are scored (:class:`Judge`)
:func:`scale_curve`              generator: per scale, accuracy, P(requested) and spread of
                                 the same x_T (:class:`CurveProgress` per step, then a
                                 :class:`ScalePoint` per scale)
===============================  ==============================================================

The grid. Row r is class ``classes[r]``, column c is scale ``scales[c]``; each cell holds
``per_cell`` images. Image j of EVERY cell starts from the same x_T, z_j: along a row the cells
differ only by s, down a column only by the class (at s = 0 a column is one image repeated: the
unconditional model ignores the label). With a deterministic sampler (DDIM η = 0, the shipped
models' default) that is the whole difference; a stochastic one (DDPM, DDIM η > 0) also draws
fresh noise for every image at every step.

The curve. Per scale, ``n_per_class`` samples of each class from the same x_T at every scale
(one x_T per sample, drawn once), scored by :func:`guidance_judge`: for the digits models the
held-out digit classifier (``accuracy``: how often it reads the requested digit;
``requested_probability``: its mean probability for that digit) and ``spread``, the mean
pairwise distance within a class over the same among real images of that class (1 = as varied
as the data; :func:`~diffusion_core.evaluation.guidance.spread_ratio`). Other checkpoints have
no classifier that reads their classes: spread only (against their rebuilt training images
when the app can rebuild them), and :attr:`Judge.note` says why.

Shapes: images ``[N, C, H, W]`` in [−1, 1]; ``GuidanceGrid.samples [R, S, per_cell, C, H, W]``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import images
from ..checkpoints import Checkpoint
from ..data._checks import check_int
from ..sampling.config import GUIDANCE_MAX, SamplerSettings
from ..sampling.guidance import GuidedModel
from ..sampling.loop import SampleStep, sample
from . import image_sampling

__all__ = ["CurveProgress", "GridLayout", "GridRun", "GuidanceGrid", "Judge", "ScalePoint",
           "check_classes", "check_scales", "deterministic_settings", "digit_scale_grid",
           "guidance_judge",
           "scale_curve"]

DIGIT_SETS = ("digits", "digits8")  # the data sets the digit classifier reads
GRID_WIDTH = 720  # the grid's picture is about this many pixels wide …
GRID_HEIGHT = 760  # … and at most about this high (10 digit rows: 48-pixel digits)
MIN_PIXEL, MAX_PIXEL = 2, 8  # each image pixel becomes a k × k block, k in this range


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def _conditional(ck: Checkpoint) -> int:
    if not image_sampling.is_image_model(ck):
        raise ValueError("the guidance grid needs an image model (a U-Net checkpoint)")
    k = ck.num_classes
    if k == 0:
        raise ValueError("this checkpoint is unconditional (trained without class labels): "
                         "classifier-free guidance needs a class-conditional one")
    return k


def check_classes(ck: Checkpoint, classes: Sequence[int] | None) -> tuple[int, ...]:
    """Distinct class indices in 0..K−1 (None: every class, in order)."""
    k = _conditional(ck)
    if classes is None:
        return tuple(range(k))
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) or not classes:
        raise ValueError("classes must be a non-empty list of class indices")
    out = tuple(check_int("class", c, 0, k - 1) for c in classes)
    if len(set(out)) != len(out):
        raise ValueError(f"each class may appear once; got {list(out)}")
    return out


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    """Guidance scales s, each a finite number in [0, GUIDANCE_MAX] (repeats allowed)."""
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
        raise ValueError("scales must be a non-empty list of numbers")
    out = []
    for s in scales:
        if isinstance(s, bool) or not isinstance(s, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(s)) or not 0 <= float(s) <= GUIDANCE_MAX:
            raise ValueError(f"every guidance scale s must be a number in [0, {GUIDANCE_MAX:g}] "
                             f"(0 = unconditional, 1 = conditional); got {s!r}")
        out.append(float(s))
    return tuple(out)


def deterministic_settings(ck: Checkpoint) -> SamplerSettings:
    """The checkpoint's sampler settings made deterministic, DDIM η = 0 (its step count when
    it records DDIM, else DDIM's default 25): then the cells of a grid row differ only by s."""
    return image_sampling.sampler_settings(
        ck, {"sampler": "ddim", "eta": 0.0, "variance": "beta_tilde"})


def _settings(ck: Checkpoint, settings: SamplerSettings | None) -> SamplerSettings:
    if settings is None:
        return image_sampling.sampler_settings(ck)
    if not isinstance(settings, SamplerSettings):
        raise ValueError("settings must be a SamplerSettings (or None: the checkpoint's)")
    return settings


# ---------------------------------------------------------------------------------------------
# The class × scale grid
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridLayout:
    """Where things lie in a grid's picture (pixels, origin top left).

    ``rows × cols`` cells, each a row of ``per_cell`` images of ``image_size`` pixels enlarged
    ``pixel`` times (nearest neighbour, pixel-exact) with ``pad`` white pixels around each;
    cells are ``gap`` pixels apart (and from the edge). ``cell(r, c)`` is a cell's box.
    """

    rows: int
    cols: int
    per_cell: int
    image_size: int
    pixel: int
    pad: int
    gap: int

    @property
    def cell_height(self) -> int:
        return self.image_size * self.pixel + 2 * self.pad

    @property
    def cell_width(self) -> int:
        return self.per_cell * (self.image_size * self.pixel + 2 * self.pad)

    @property
    def height(self) -> int:
        return self.rows * self.cell_height + (self.rows + 1) * self.gap

    @property
    def width(self) -> int:
        return self.cols * self.cell_width + (self.cols + 1) * self.gap

    def cell(self, r: int, c: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` of cell (r, c), bottom and right exclusive."""
        top = self.gap + r * (self.cell_height + self.gap)
        left = self.gap + c * (self.cell_width + self.gap)
        return top, left, top + self.cell_height, left + self.cell_width

    @property
    def row_centers(self) -> tuple[int, ...]:
        """The y of each row's middle (where a row label goes)."""
        return tuple((self.cell(r, 0)[0] + self.cell(r, 0)[2]) // 2 for r in range(self.rows))

    @property
    def col_centers(self) -> tuple[int, ...]:
        """The x of each column's middle (where a column label goes)."""
        return tuple((self.cell(0, c)[1] + self.cell(0, c)[3]) // 2 for c in range(self.cols))


def grid_layout(rows: int, cols: int, per_cell: int, image_size: int) -> GridLayout:
    """The layout of a grid about :data:`GRID_WIDTH` wide and at most :data:`GRID_HEIGHT` high
    (pixel enlargement between :data:`MIN_PIXEL` and :data:`MAX_PIXEL`)."""
    per_image = image_size + 2  # an image and its border at pixel 1
    k = min(GRID_WIDTH // (cols * per_cell * per_image + cols + 1),
            GRID_HEIGHT // (rows * per_image + rows + 1))
    pixel = max(MIN_PIXEL, min(MAX_PIXEL, k))
    return GridLayout(rows=rows, cols=cols, per_cell=per_cell, image_size=image_size,
                      pixel=pixel, pad=max(1, pixel // 4), gap=2 * pixel)


def grid_picture(samples: torch.Tensor, layout: GridLayout) -> np.ndarray:
    """``samples [R, S, per_cell, C, H, W]`` in [−1, 1] → uint8 ``[H', W', 3]`` (white
    background; NaN drawn grey, ±inf clipped), laid out by ``layout``."""
    r_, s_, p_ = samples.shape[:3]
    if (r_, s_, p_) != (layout.rows, layout.cols, layout.per_cell):
        raise ValueError(f"samples hold {r_} × {s_} × {p_} images; the layout wants "
                         f"{layout.rows} × {layout.cols} × {layout.per_cell}")
    canvas = np.full((layout.height, layout.width, 3), 255, np.uint8)
    x = torch.nan_to_num(samples.detach().float().cpu(), nan=0.0, posinf=1.0, neginf=-1.0)
    for r in range(layout.rows):
        for c in range(layout.cols):
            top, left, bottom, right = layout.cell(r, c)
            canvas[top:bottom, left:right] = images.make_grid(
                x[r, c], ncols=layout.per_cell, scale=layout.pixel, pad=layout.pad)
    return canvas


@dataclass(frozen=True, eq=False)
class GuidanceGrid:
    """A finished class × scale grid.

    ``samples [R, S, per_cell, C, H, W]`` on the CPU: row r is class ``classes[r]`` (named
    ``class_names[r]``), column c scale ``scales[c]``. ``picture`` is uint8 ``[H', W', 3]``
    laid out by ``layout`` (no text: the view labels rows and columns at
    ``layout.row_centers`` / ``layout.col_centers``). ``seconds``: the chain's wall time.
    """

    classes: tuple[int, ...]
    class_names: tuple[str, ...]
    scales: tuple[float, ...]
    per_cell: int
    seed: int
    settings: SamplerSettings
    samples: torch.Tensor
    picture: np.ndarray
    layout: GridLayout
    seconds: float
    nonfinite: int

    @property
    def n_images(self) -> int:
        return len(self.classes) * len(self.scales) * self.per_cell


class GridRun:
    """The class × scale grid of ``ck`` as one batched chain; iterate it for the steps.

    Args:
        ck: a class-conditional image checkpoint (its model on ``device``).
        classes: the rows' class indices (None: every class).
        scales: the columns' guidance scales s (repeats allowed).
        per_cell: images per (class, scale) cell, ≥ 1.
        seed: draws the ``per_cell`` starting points z_j (``[per_cell, C, H, W]``) that every
            row and column shares (see the module docstring), then the chain's noise.
        settings: sampler settings (None: the checkpoint's own).

    Iterating yields each :class:`~diffusion_core.sampling.loop.SampleStep` of the chain
    (``[N, C, H, W]``, N = rows × columns × per_cell, row-major, image j last); after the
    last step :attr:`grid` is set. Closing the iterator stops the chain.
    """

    def __init__(self, ck: Checkpoint, *, classes: Sequence[int] | None,
                 scales: Sequence[float], per_cell: int = 1, seed: int = 0,
                 settings: SamplerSettings | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.classes = check_classes(ck, classes)
        self.scales = check_scales(scales)
        self.per_cell = check_int("per_cell", per_cell, 1, 1000)
        self.seed = check_int("seed", seed, 0, 2**63 - 1)
        self.settings = _settings(ck, settings)
        self.ck, self.device = ck, device
        self.num_steps = self.settings.resolved_steps(ck.schedule.T)
        rows, cols, p = len(self.classes), len(self.scales), self.per_cell
        self.n_images = rows * cols * p
        # sample (r, c, j), flat index (r·cols + c)·p + j: class r, scale c, start z_j
        self.labels = torch.tensor(self.classes, dtype=torch.long).repeat_interleave(cols * p)
        self.scale_of = torch.tensor(self.scales, dtype=torch.float64).repeat_interleave(
            p).repeat(rows)
        self.grid: GuidanceGrid | None = None

    def __iter__(self) -> Iterator[SampleStep]:
        ck, device = self.ck, self.device
        z, g = image_sampling.initial_noise(ck, self.per_cell, self.seed, device=device)
        x_T = z.repeat(len(self.classes) * len(self.scales), *([1] * (z.ndim - 1)))
        model = GuidedModel(ck.model, self.labels.to(device), self.scale_of)
        chain = sample(model, ck.schedule.to(device), x_T, generator=g,
                       **self.settings.sample_kwargs(ck.schedule.T))
        start = time.perf_counter()
        try:
            for step in chain:
                if step.t_prev == -1:
                    self._finish(step.x_prev, time.perf_counter() - start)
                yield step
        finally:
            chain.close()

    def _finish(self, x: torch.Tensor, seconds: float) -> None:
        x = x.detach().cpu()
        rows, cols = len(self.classes), len(self.scales)
        samples = x.reshape(rows, cols, self.per_cell, *x.shape[1:])
        layout = grid_layout(rows, cols, self.per_cell, x.shape[-1])
        names = self.ck.class_names
        self.grid = GuidanceGrid(
            classes=self.classes, class_names=tuple(names[k] for k in self.classes),
            scales=self.scales, per_cell=self.per_cell, seed=self.seed, settings=self.settings,
            samples=samples, picture=grid_picture(samples, layout), layout=layout,
            seconds=seconds,
            nonfinite=int((~torch.isfinite(x)).flatten(1).any(dim=1).sum()))


def digit_scale_grid(ck: Checkpoint, *, classes: Sequence[int] | None = None,
                     scales: Sequence[float], per_cell: int = 1, seed: int = 0,
                     settings: SamplerSettings | None = None,
                     device: str | torch.device = "cpu") -> GuidanceGrid:
    """The class (digit) × scale grid of ``ck`` in one call (see :class:`GridRun`)."""
    run = GridRun(ck, classes=classes, scales=scales, per_cell=per_cell, seed=seed,
                  settings=settings, device=device)
    for _ in run:
        pass
    assert run.grid is not None  # a chain has ≥ 1 step
    return run.grid


# ---------------------------------------------------------------------------------------------
# Fidelity and diversity against s
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Judge:
    """How guided samples of one checkpoint are scored.

    ``score(samples [N, C, H, W], requested int64 [N]) → dict`` with ``accuracy``,
    ``requested_probability`` (None without a classifier) and ``spread`` (NaN without real
    images to compare with). ``name`` says what reads the class; ``note`` what is measured,
    and why something is not.
    """

    name: str
    has_accuracy: bool
    has_spread: bool
    note: str
    score: Callable[[torch.Tensor, torch.Tensor], dict]


def _digit_score(samples: torch.Tensor, requested: torch.Tensor) -> dict:
    from ..evaluation.guidance import digit_guidance_scores

    return digit_guidance_scores(samples, requested, frechet=False)


def guidance_judge(ck: Checkpoint) -> Judge:
    """The judge of a class-conditional image checkpoint's guided samples.

    Digits (data set ``digits`` or ``digits8``, classes "0".."9"): the held-out digit
    classifier reads the digit; spread against the real training digits, in its 8×8 space
    (:func:`~diffusion_core.evaluation.guidance.digit_guidance_scores`). Any other: no
    classifier reads its classes, so no accuracy; spread against its training images by class
    when the app can rebuild them with the same class names
    (:func:`~diffusion_core.workflows.image_why.training_data`), else nothing but the reason.
    """
    _conditional(ck)
    name = str(ck.dataset.get("name", "?")) if isinstance(ck.dataset, dict) else "?"
    if name in DIGIT_SETS and tuple(ck.class_names) == tuple(str(i) for i in range(10)):
        return Judge("digit classifier (fitted on held-out digits only)", True, True,
                     "accuracy: how often the held-out digit classifier reads the requested "
                     "digit; spread: within-digit variety over the real digits' (1 = as varied "
                     "as the data)", _digit_score)
    why = (f"no classifier reads the classes of *{name}* here (only the digits have one), "
           "so accuracy is not measured")
    from .image_why import DataUnavailable, training_data

    try:
        data = training_data(ck)
    except DataUnavailable as e:
        data, reason = None, str(e)
    else:
        reason = ""
        if data.train.labels is None or data.class_names is None \
                or tuple(data.class_names) != tuple(ck.class_names):
            data, reason = None, "its training images carry other class names (or none)"
    if data is None:
        return Judge("none", False, False,
                     f"{why}; spread needs the real images of each class and {reason}.",
                     lambda samples, requested: {"accuracy": None,
                                                 "requested_probability": None,
                                                 "spread": math.nan})
    real, real_labels = data.train.images.flatten(1).numpy(), data.train.labels

    def score(samples: torch.Tensor, requested: torch.Tensor) -> dict:
        from ..evaluation.guidance import spread_ratio

        x = torch.nan_to_num(samples.detach().float().cpu(), nan=0.0).clamp(-1, 1)
        return {"accuracy": None, "requested_probability": None,
                "spread": round(spread_ratio(x.flatten(1).numpy(), requested.cpu(), real,
                                             real_labels), 4)}

    return Judge("none", False, True,
                 f"{why}; spread: within-class variety over the training images' of the "
                 "class, in pixels (1 = as varied as the data).", score)


@dataclass(frozen=True)
class ScalePoint:
    """The scores of one scale: ``accuracy`` (share read as the requested class),
    ``requested_probability`` (the classifier's mean probability for it), both None without
    a classifier; ``spread`` (NaN without real images); ``n`` samples; ``seconds`` of
    sampling; ``accuracy_per_class`` (one per requested class, in ``classes`` order) or None."""

    scale: float
    accuracy: float | None
    requested_probability: float | None
    spread: float
    n: int
    seconds: float
    accuracy_per_class: tuple[float, ...] | None = None


@dataclass(frozen=True)
class CurveProgress:
    """What :func:`scale_curve` yields: after every reverse step (``step`` set) and after each
    scale's scores (``point`` set). ``index`` is the scale's position in ``scales``;
    ``steps_done`` / ``steps_total`` count reverse steps over the whole curve."""

    index: int
    num_scales: int
    scale: float
    steps_done: int
    steps_total: int
    step: SampleStep | None = None
    point: ScalePoint | None = None


def scale_curve(ck: Checkpoint, *, scales: Sequence[float], n_per_class: int, seed: int = 0,
                classes: Sequence[int] | None = None, settings: SamplerSettings | None = None,
                judge: Judge | None = None, device: str | torch.device = "cpu"
                ) -> Iterator[CurveProgress]:
    """Fidelity and diversity of guided samples against s, streamed.

    For each s of ``scales`` (in order): ``n_per_class`` (≥ 2) samples of each of ``classes``
    (None: all), requested labels ``[K·n]`` class-major, from the SAME x_T at every scale
    (seeded by ``seed``; one x_T per sample), scored by ``judge`` (default
    :func:`guidance_judge`). Yields a :class:`CurveProgress` after every reverse step and one
    with the :class:`ScalePoint` after each scale; closing the generator stops the work.
    """
    classes = check_classes(ck, classes)
    scales = check_scales(scales)
    n_per_class = check_int("n_per_class", n_per_class, 2, 100_000)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    settings = _settings(ck, settings)
    judge = guidance_judge(ck) if judge is None else judge
    requested = torch.tensor(classes, dtype=torch.long).repeat_interleave(n_per_class)
    n = len(requested)
    x_T, g = image_sampling.initial_noise(ck, n, seed, device=device)
    noise_state = g.get_state()  # every scale's chain draws the same noise as well
    num_steps = settings.resolved_steps(ck.schedule.T)
    total = num_steps * len(scales)
    schedule = ck.schedule.to(device)
    done = 0
    for i, s in enumerate(scales):
        g.set_state(noise_state)
        model = GuidedModel(ck.model, requested.to(device), s)
        chain = sample(model, schedule, x_T, generator=g, **settings.sample_kwargs(ck.schedule.T))
        start = time.perf_counter()
        x = x_T
        try:
            for step in chain:
                done += 1
                x = step.x_prev
                yield CurveProgress(i, len(scales), s, done, total, step=step)
        finally:
            chain.close()
        seconds = time.perf_counter() - start
        scores = judge.score(x.detach().cpu(), requested)
        per_class = scores.get("accuracy_per_class")
        yield CurveProgress(i, len(scales), s, done, total, point=ScalePoint(
            scale=s, accuracy=scores.get("accuracy"),
            requested_probability=scores.get("requested_probability"),
            spread=float(scores.get("spread", math.nan)), n=n, seconds=round(seconds, 3),
            accuracy_per_class=(tuple(per_class[k] for k in classes)
                                if isinstance(per_class, list) else None)))
