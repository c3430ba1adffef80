"""The 2D toy session: train a small MLP on 2D points (predicting ε, x0 or v), then look at it.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean data. The reverse chain starts from x ~ N(0, I) at t = T−1 and ends at
t = −1 (the sample). Points are float32 ``[n, 2]`` in model coordinates
(:mod:`diffusion_core.data.toy2d`).

==========================  ===================================================================
name                        what it does
==========================  ===================================================================
:class:`DataSpec`           which points: ``make_2d(name, n, noise=noise, seed=seed)``, with
                            their class labels on request (:meth:`DataSpec.draw_labelled`)
:class:`Toy2DSession`       one user's data, fixed ε, schedule, model and trainer; ``train``
                            streams :class:`~diffusion_core.training.TrainProgress` and records
                            every step's loss. Class-conditional when its model config has
                            ``num_classes = K > 0`` (:func:`num_classes_for`): it then holds the
                            labels and trains with label dropout (classifier-free guidance,
                            :mod:`diffusion_core.workflows.guidance2d`)
:func:`start_or_continue`   the restart rule (:func:`restart_reason`): same data, schedule,
                            model settings (class labels included) and prediction continue the
                            model, anything else starts a new one
:func:`check_step_cost`     estimated seconds of one training step; refuses a model too big
                            to stop within :data:`MAX_STEP_S`
:func:`vector_field`        ε̂ on a square grid over the noised cloud x_t (a record): the
                            network's (an x0 or v output converted to ε̂) or the ideal
                            denoiser's exact ε* (:attr:`Toy2DSession.ideal`)
:func:`field_frames`        the field at evenly spaced t from T−1 down to 0 on one grid (the
                            "▶ Play over t" animation)
:func:`field_table`         the network's field at every t (or many evenly spaced t) in one
                            batched pass, for a view that redraws a new t at once
:func:`live_preview`        the field at one t and a few fast samples from the live weights
                            while a model trains, computed where it trains (a worker)
:class:`PerTCurve`          the per-t loss in ε units of one prediction type; a session keeps
                            the last one of each prediction trained on the same data, schedule
                            and model (:meth:`Toy2DSession.prediction_curves`)
:class:`Toy2DSampling`      the reverse chain (network or ideal denoiser) as an iterable,
                            optionally with x̂0 kept inside the data's box (``x0_box``);
                            ``result()`` gives frames at evenly spaced steps, the samples,
                            their quality score and how many copy a training point; with
                            ``trace=k`` also every step's position of the first k points
                            (their paths x_{T−1} → … → x_{−1})
:func:`copy_share`          the share of samples that sit on a training point (memorisation)
:func:`forward_frames`      x_t of the data at evenly spaced t with one fixed ε (DDPM eq. 4)
==========================  ===================================================================

Nothing here imports gradio or plotly: the 2D tab (``pages/toy2d``) turns these records into
figures, and tests drive them directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import numpy as np
import torch

from ..data.toy2d import make_2d
from ..data.toy2d_spec import LABELLED_TOY_DATASETS, TOY_SPECS
from ..evaluation.toy2d import Toy2DQuality, toy2d_quality
from ..forward import q_sample
from ..models.build import build_model
from ..models.mlp_config import MLPConfig
from ..oracles.ideal import IdealDenoiser
from ..sampling.config import SamplerSettings
from ..sampling.loop import SampleStep, sample
from ..sampling.spacing import evenly_spaced
from ..schedule.config import ScheduleConfig
from ..schedule.noise_schedule import NoiseSchedule
from ..training.config import PREDICTIONS, Prediction, TrainConfig
from ..training.trainer import Trainer, TrainProgress
from .remote import WorkerLost, WorkerPool, travels

FLOPS_PER_S = 2.5e10  # what one core sustains for these small matmuls (measured ~4e10)
MAX_STEP_S = 0.2  # one training step must fit inside a Stop button's reaction time
QUALITY_FLOOR_PAIRS = 4  # pairs of fresh draws averaged into the SW1 floor the tab shows
COPY_RADIUS = 0.1  # a sample "copies" a training point within this × the fresh data's median
#                    nearest-neighbour distance to the training set (copy_share)

SPACING_QUERIES = 2000  # training points whose nearest-neighbour distance gives the spacing

Denoiser = Literal["network", "ideal"]
DENOISERS: tuple[str, ...] = ("network", "ideal")  # what samples / arrows come from


# ---------------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """Which points were drawn: ``make_2d(name, n, noise=noise, seed=seed)``.

    A learner's drawing is a :class:`~diffusion_core.data.drawn.DrawnSpec` instead (the same
    fields and methods, ``name = "drawn"``); everything here takes either.
    """

    name: str
    n: int
    noise: float
    seed: int

    def draw(self) -> torch.Tensor:
        """The points, float32 ``[n, 2]`` (the same spec always gives the same points)."""
        return make_2d(self.name, self.n, noise=self.noise, seed=self.seed)

    def fresh(self, n: int, seed: int) -> torch.Tensor:
        """``n`` new points of the same set and noise, float32 ``[n, 2]`` (the quality score's
        and the bound's reference draws, seed = data seed + an offset)."""
        return make_2d(self.name, n, noise=self.noise, seed=seed)

    def draw_labelled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The same points as :meth:`draw` with each one's class: ``(points [n, 2], labels [n]
        int64 in 0..K−1)`` (``TOY_SPECS[name].classes`` names them); ``ValueError`` for a set
        without classes."""
        return make_2d(self.name, self.n, noise=self.noise, seed=self.seed, return_labels=True)


def num_classes_for(dataset: str, conditional: bool) -> int:
    """``MLPConfig.num_classes`` for a model of ``dataset``: its number of classes K when
    ``conditional`` (trained with class labels, for guidance), else 0. ``ValueError`` naming
    the sets with classes when ``dataset`` has none."""
    if dataset not in TOY_SPECS:
        raise ValueError(f"unknown 2D data set {dataset!r}")
    if not conditional:
        return 0
    k = TOY_SPECS[dataset].num_classes
    if k == 0:
        raise ValueError(f"The data set {dataset} has no classes, so a model cannot be trained "
                         f"with class labels on it. Sets with classes: "
                         f"{', '.join(LABELLED_TOY_DATASETS)}.")
    return k


@dataclass(frozen=True)
class PerTCurve:
    """The per-t training loss of one model in ε units, whatever it predicts.

    ``eps_loss[i]`` is the mean ‖ε̂ − ε‖²/d over the examples of the t-bin
    ``[edges[i], edges[i+1])`` (NaN if none was drawn; see ``Trainer.timestep_eps_loss``) after
    ``steps`` training steps of a ``prediction`` network (ε̂ its output converted).
    """

    prediction: Prediction
    edges: tuple[int, ...]
    eps_loss: tuple[float, ...]
    steps: int


@dataclass(frozen=True)
class CopyShare:
    """How many samples copy a training point (memorisation), with a fresh draw as reference.

    A point "copies" a training point when its nearest training point is closer than
    ``radius`` = :data:`COPY_RADIUS` × the median distance from a fresh draw of the data set to
    its nearest training point. ``share`` is the fraction of samples that do, ``reference``
    the fraction of that fresh draw that does (in 2D about 1 − exp(−0.01 ln 2) ≈ 0.7 % when the
    training points are locally uniform): far above it means the samples copy. ``spacing`` is
    the training points' mean distance to their nearest other training point (over at most
    :data:`SPACING_QUERIES` of them): a sampler's last step blurs x̂0 over about
    √((1 − ᾱ_t)/ᾱ_t) at its last t, and copies single points only when that is well below the
    spacing.
    """

    share: float
    reference: float
    radius: float
    spacing: float


@dataclass(frozen=True)
class SampleScore:
    """The score of one finished sampling run, kept by the session (``last_scores``).

    ``step`` is the trainer's step count when it ran (the network may have trained since),
    ``how`` the sampler settings in words, ``last_t`` the chain's last visited t;
    ``settings`` the settings themselves and ``samples [N, 2]`` float32 the final points
    (kept for export: 40 kB at the tab's 5,000 at most; not compared by ``==``).
    """

    denoiser: str
    step: int
    how: str
    quality: Toy2DQuality
    copies: CopyShare | None
    last_t: int
    settings: SamplerSettings | None = None
    samples: torch.Tensor | None = field(default=None, compare=False, repr=False)


def fixed_noise(n: int, seed: int) -> torch.Tensor:
    """ε ``[n, 2]`` used for every picture of x_t of one data set (same seed ⇒ same ε)."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(n, 2, generator=g)


@dataclass(eq=False)
class Toy2DSession:
    """One user's trained model and everything needed to look at it.

    ``data [n, 2]`` are the training points, ``eps [n, 2]`` a fixed ε drawn once per data set
    (:func:`fixed_noise`) so the noised cloud x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε (eq. 4) moves smoothly
    with t. ``losses`` holds every step's batch loss since the model was created; ``runs``
    counts the training runs (:func:`start_or_continue`). ``curves`` holds the per-t ε-unit
    loss of earlier sessions' *other* predictions on the same data, schedule and model (carried
    over by :func:`start_or_continue`; see :meth:`prediction_curves`). ``last_scores`` maps a
    denoiser (``"network"``, ``"ideal"``) to the score of its latest finished sampling run;
    ``last_bounds`` maps ``(points, variance)`` to the latest finished
    :class:`~diffusion_core.workflows.toy2d_why.BoundResult` on those points.

    A class-conditional session (``model_config.num_classes = K > 0``) also holds ``labels
    [n]`` int64, the class of each training point (None otherwise); its network is called
    ``model(x_t, t, y)``, with ``y = None`` (the null class K) being the unconditional model
    that :attr:`model`, every sampler and the vector field use unchanged, and its
    :attr:`ideal` denoiser is the labelled one (the softmax over the points of class y when
    given y).
    """

    spec: DataSpec
    schedule_config: ScheduleConfig
    model_config: MLPConfig
    data: torch.Tensor
    eps: torch.Tensor
    schedule: NoiseSchedule
    trainer: Trainer
    losses: list[float] = field(default_factory=list)
    runs: int = 0
    curves: dict[str, PerTCurve] = field(default_factory=dict)
    last_scores: dict[str, SampleScore] = field(default_factory=dict)
    last_bounds: dict[tuple[str, str], object] = field(default_factory=dict)
    labels: torch.Tensor | None = None
    _run: object = field(default=None, init=False, repr=False)  # the training run going on
    _run_from: int = field(default=0, init=False, repr=False)  # len(losses) when it started

    @classmethod
    def create(cls, spec: DataSpec, schedule_config: ScheduleConfig, model_config: MLPConfig,
               train_config: TrainConfig) -> Toy2DSession:
        """A fresh model on ``spec``'s points; ``ValueError`` for settings that do not fit.

        The initial weights depend only on ``train_config.seed`` (the global torch RNG is
        left as it was). ``model_config.num_classes = K > 0`` makes a class-conditional
        session: K must be the data set's number of classes (:func:`num_classes_for`); the
        points are the same as without labels.
        """
        labels = None
        if model_config.num_classes:
            want = num_classes_for(spec.name, True)  # ValueError for a set without classes
            if model_config.num_classes != want:
                raise ValueError(f"the data set {spec.name} has {want} classes; the model "
                                 f"config asks for num_classes = {model_config.num_classes}")
            pts, labels = spec.draw_labelled()
        else:
            pts = spec.draw()
        schedule = NoiseSchedule(schedule_config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train_config.seed)  # same settings ⇒ same initial weights
            model = build_model(model_config)
        trainer = Trainer(model, schedule, pts, train_config, labels=labels)
        return cls(spec=spec, schedule_config=schedule_config, model_config=model_config,
                   data=pts, eps=fixed_noise(spec.n, spec.seed), schedule=schedule,
                   trainer=trainer, labels=labels)

    @property
    def model(self) -> torch.nn.Module:
        """The ε-predictor to look at and sample from (the EMA copy when EMA is on; an x0- or
        v-predicting network comes converted to ε̂, see ``Trainer.sampling_model``)."""
        return self.trainer.sampling_model()

    @property
    def prediction(self) -> Prediction:
        """What the network predicts: ``"eps"``, ``"x0"`` or ``"v"`` (fixed for a session)."""
        return self.trainer.config.prediction

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def conditional(self) -> bool:
        """Whether the model was trained with class labels (``num_classes > 0``)."""
        return self.labels is not None

    @property
    def num_classes(self) -> int:
        """K, the number of classes of a conditional model (0 for an unconditional one)."""
        return self.model_config.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes' names in label order (``TOY_SPECS[name].classes``; empty when the
        model is unconditional)."""
        return TOY_SPECS[self.spec.name].classes if self.conditional else ()

    @cached_property
    def ideal(self) -> IdealDenoiser:
        """The exact ε* = E[ε | x_t] of the training points (built on first use, then kept):
        the ε-predictor a network would be if it memorised ``data``
        (:class:`~diffusion_core.oracles.ideal.IdealDenoiser`). A conditional session's is
        built with its ``labels``: ``ideal(x_t, t, y)`` is the softmax over the points of
        class y, ``ideal(x_t, t)`` over all of them, as before."""
        return IdealDenoiser(self.data, self.schedule, labels=self.labels)

    def denoiser(self, name: Denoiser) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The ε-predictor called ``name``: ``"network"`` (:attr:`model`) or ``"ideal"``."""
        if name == "network":
            return self.model
        if name == "ideal":
            return self.ideal
        raise ValueError(f"denoiser must be one of {', '.join(DENOISERS)}; got {name!r}")

    def eps_curve(self) -> PerTCurve | None:
        """This model's per-t loss in ε units so far (None before the first step)."""
        if self.trainer.step == 0:
            return None
        return PerTCurve(prediction=self.prediction, edges=tuple(self.trainer.edges),
                         eps_loss=tuple(self.trainer.timestep_eps_loss()),
                         steps=self.trainer.step)

    def prediction_curves(self) -> dict[str, PerTCurve]:
        """One per-t ε-unit loss curve per prediction type, in ε, x0, v order: this model's own
        and the last one of each other prediction trained before it on the same data,
        schedule and model (:func:`start_or_continue` carries them over)."""
        own = self.eps_curve()
        curves = dict(self.curves)
        if own is not None:
            curves[own.prediction] = own
        return {p: curves[p] for p in PREDICTIONS if p in curves}

    def train(self, steps: int | None = None, *, pool: WorkerPool | None = None
              ) -> Iterator[TrainProgress]:
        """Train ``steps`` more steps (default: the trainer's ``config.steps``).

        Yields the trainer's progress reports after adding their losses to :attr:`losses`.
        Closing the generator (a Stop button) stops at once; the model keeps what it learned.
        :class:`~diffusion_core.training.TrainingDiverged` propagates, the model keeping its
        last good weights. With a ``pool`` the steps are computed in one of its worker
        processes (:mod:`~diffusion_core.workflows.remote`), with the same result; the model
        here is updated when the run ends (its step count and per-t loss after every report).
        """
        run = self.trainer.run(steps) if pool is None else pool.train(self.trainer, steps)
        before = len(self.losses)
        self._run, self._run_from = run, before
        try:
            for p in run:
                self.losses.extend(p.losses)
                yield p
        except WorkerLost:
            del self.losses[before:]  # the model is as it was before this run
            raise
        finally:
            self._run = None
            run.close()

    def on_trainer(self, fn: Callable, *args):
        """``fn(trainer, *args)`` on the trainer as it is now, also while :meth:`train` runs in
        a worker process: computed there (``RemoteRun.call``; ``fn`` a module-level function
        that reads the trainer and changes nothing), only its answer coming back; else here.
        Call it from the thread that iterates :meth:`train`. :class:`WorkerLost` if the worker
        died (the model is then as it was before the run)."""
        run = self._run
        if run is None or not hasattr(run, "call"):
            return fn(self.trainer, *args)
        try:
            return run.call(fn, *args)
        except WorkerLost:
            del self.losses[self._run_from:]  # the model is as it was before this run
            raise


def restart_reason(session: Toy2DSession | None, spec: DataSpec,
                   schedule_config: ScheduleConfig, model_config: MLPConfig, *,
                   prediction: Prediction = "eps") -> str | None:
    """Why ``session`` cannot simply continue training with these settings (None: it can).

    A network trained to predict one of ε, x0 and v is a different model for another, so a
    changed ``prediction`` starts a new one too. So does switching between a model trained
    with class labels and one without (``model_config.num_classes``): "the class labels
    changed".
    """
    if not isinstance(session, Toy2DSession):
        return "new model"
    changed = []
    if session.spec != spec:
        changed.append("data set")
    if session.schedule_config != schedule_config:
        changed.append("schedule")
    old_k, new_k = session.model_config.num_classes, model_config.num_classes
    if replace(session.model_config, num_classes=0) != replace(model_config, num_classes=0):
        changed.append("model")
    if (old_k > 0) != (new_k > 0) or (old_k != new_k and session.spec == spec):
        changed.append("class labels")
    if session.prediction != prediction:
        changed.append("prediction")
    return None if not changed else "new model: the " + " and ".join(changed) + " changed"


def start_or_continue(session: Toy2DSession | None, spec: DataSpec,
                      schedule_config: ScheduleConfig, model_config: MLPConfig,
                      train_config: TrainConfig) -> tuple[Toy2DSession, str | None]:
    """The session to train next and why it is new (``None``: ``session`` continues).

    Continuing keeps the model, its optimiser state and its losses and takes the new learning
    rate, batch size and step count from ``train_config``; any change of data, schedule, model
    settings or ``train_config.prediction`` starts a new session (:func:`restart_reason`).
    A new session whose data, schedule and model settings equal the old one's (only the
    prediction, or nothing but a fresh start, differs) inherits the old one's per-t ε-unit
    curves, its own included, so the loss chart compares the predictions
    (:meth:`Toy2DSession.prediction_curves`); the new model's curve replaces its own
    prediction's as soon as it trains.
    """
    reason = restart_reason(session, spec, schedule_config, model_config,
                            prediction=train_config.prediction)
    if reason is not None:
        old = session
        session = Toy2DSession.create(spec, schedule_config, model_config, train_config)
        if (isinstance(old, Toy2DSession) and old.spec == spec
                and old.schedule_config == schedule_config and old.model_config == model_config):
            session.curves = old.prediction_curves()
    else:
        session.trainer.config = train_config  # new lr / batch / steps; optimizer state is kept
    session.runs += 1
    return session, reason


def step_seconds(model_config: MLPConfig, train_config: TrainConfig) -> float:
    """Estimated seconds of one training step on one CPU core (at :data:`FLOPS_PER_S`)."""
    h, batch_size = model_config.hidden, train_config.batch_size
    inputs = model_config.input_features + model_config.time_features
    weights = inputs * h + (model_config.depth - 1) * h * h + 2 * h
    seconds = 6.0 * batch_size * weights / FLOPS_PER_S  # forward + backward ≈ 3 × 2 flops
    if train_config.target == "stf":  # the [batch × (batch + extra)] softmax of the STF target
        seconds += 12.0 * batch_size * (batch_size + train_config.stf_extra) / FLOPS_PER_S
    return seconds


def check_step_cost(model_config: MLPConfig, train_config: TrainConfig) -> float:
    """The estimated step time; ``ValueError`` if it outlasts :data:`MAX_STEP_S`."""
    seconds = step_seconds(model_config, train_config)
    if seconds > MAX_STEP_S:
        raise ValueError(
            f"Width {model_config.hidden} × depth {model_config.depth} with batch "
            f"{train_config.batch_size} is too big for a CPU: one step would take about "
            f"{seconds:.1f} s. Lower the width, depth or batch size."
        )
    return seconds


def half_width(*clouds: torch.Tensor, q: float = 0.995, floor: float = 1.25) -> float:
    """Half-width of a square centred on 0 that shows most of every cloud ``[N, 2]``.

    The ``q`` quantile of each cloud's largest |coordinate|, plus 8 %, at least ``floor`` and
    at most 6.
    """
    r = floor
    for c in clouds:
        if len(c):
            r = max(r, float(torch.quantile(c.abs().max(dim=1).values.float(), q)) * 1.08)
    return min(r, 6.0)


# ---------------------------------------------------------------------------------------------
# Vector field
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorField:
    """ε̂_θ(x, t) on a square grid over the noised data x_t (eq. 4, the session's fixed ε).

    ``grid [G², 2]`` float64 points (row-major over ``axis``: x₁ varies fastest), ``pred_eps
    [G², 2]`` float64 the ε̂ of ``denoiser`` there (the network's, an x0 or v output
    converted, see :attr:`Toy2DSession.model`; or the ideal denoiser's exact ε*; the arrows
    are −pred_eps), ``axis [G]`` the grid coordinates on both axes (``±0.95 · half``),
    ``x_t [n, 2]`` the noised training points, ``half`` the half-width of a square view
    holding the data and x_t.
    """

    t: int
    alpha_bar: float
    x_t: torch.Tensor
    half: float
    axis: np.ndarray
    grid: np.ndarray
    pred_eps: np.ndarray
    denoiser: str = "network"


def field_grid(half: float, grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The arrows' square grid inside a view of half-width ``half``: ``(axis [G], grid [G², 2])``
    float64, row-major (x₁ varies fastest)."""
    axis = np.linspace(-half * 0.95, half * 0.95, grid_size)
    gx, gy = np.meshgrid(axis, axis)
    return axis, np.stack([gx.ravel(), gy.ravel()], axis=1)


def vector_field(session: Toy2DSession, t: int, *, grid_size: int = 21,
                 denoiser: Denoiser = "network", model: Callable | None = None,
                 half: float | None = None) -> VectorField:
    """The ε̂ of ``denoiser`` at ``grid_size²`` grid points at timestep ``t`` (0..T−1).

    ``"network"``: the model's ε̂ whatever it predicts (x0 and v outputs are converted), so
    the arrows mean the same for every session. ``"ideal"``: the exact ε* = E[ε | x_t] of the
    training points (:attr:`Toy2DSession.ideal`). The grid depends only on the data and t, so
    the two fields of one t share it. ``model`` (an ε-predictor ``model(x [B, 2], t int64
    [B]) → [B, 2]``, e.g. a guided or boxed one) replaces the network of a
    ``"network"`` field; ``half`` fixes the view's half-width (and so the grid) instead of
    fitting it to x_t (:func:`field_frames` keeps one grid for every t).
    """
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < session.T:
        raise ValueError(f"t must be an integer in [0, {session.T - 1}]; got {t!r}")
    if model is None or denoiser != "network":
        model = session.denoiser(denoiser)
    x_t = q_sample(session.schedule, session.data, t, session.eps)  # eq. (4), fixed ε
    if half is None:
        half = half_width(session.data, x_t)
    axis, grid = field_grid(half, grid_size)
    with torch.inference_mode():
        pred_eps = model(torch.from_numpy(grid).float(),
                         torch.full((len(grid),), t, dtype=torch.long)).double().numpy()
    return VectorField(t=t, alpha_bar=session.schedule.alpha_bar(t), x_t=x_t, half=half,
                       axis=axis, grid=grid, pred_eps=pred_eps, denoiser=denoiser)


def field_frames(session: Toy2DSession, *, frames: int = 24, grid_size: int = 21,
                 denoiser: Denoiser = "network") -> tuple[VectorField, ...]:
    """The field of ``denoiser`` at ≤ ``frames`` evenly spaced t, from T−1 down to 0 (the
    order the reverse chain visits them), all on one grid: the view's half-width is the
    largest :func:`half_width` of the data and any of these x_t, so the arrows stay put and
    only their directions and the cloud move."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames must be an integer ≥ 2; got {frames!r}")
    ts = evenly_spaced(session.T, frames)[::-1]
    clouds = [q_sample(session.schedule, session.data, t, session.eps) for t in ts]  # eq. (4)
    half = half_width(session.data, *clouds)
    return tuple(vector_field(session, t, grid_size=grid_size, denoiser=denoiser, half=half)
                 for t in ts)


FIELD_TABLE_MAX_T = 256  # t's a field table holds at most (every t of a T ≤ this)
FIELD_TABLE_SECONDS = 0.25  # estimated forward time (at FLOPS_PER_S) a field table may take
FIELD_TABLE_MIN_T = 24  # … but it keeps at least this many t (as many as ▶ Play over t)
FIELD_TABLE_CHUNK = 16_384  # grid points per forward pass (bounds the activations' memory)


@dataclass(frozen=True)
class FieldTable:
    """The network's field at many t at once, each on its own grid: what a view needs to redraw
    the field for a new t without computing again (tab 3's t slider, in the browser).

    ``t [K]`` int64 ascending in 0..T−1 (every t when K = T; else :func:`evenly_spaced`,
    first and last included), ``half [K]`` float64 the view's half-width at each (as
    :func:`vector_field` fits it to the data and x_t; entry k's grid is
    ``field_grid(half[k], grid_size)``), ``pred_eps [K, G², 2]`` float32 the network's ε̂ there
    (an x0 or v output converted). Entry k is ``vector_field(session, t[k])``'s field up to
    float32 rounding. ``step``: the session's training step when it was computed.
    """

    T: int
    grid_size: int
    step: int
    t: np.ndarray
    half: np.ndarray
    pred_eps: np.ndarray


def forward_seconds(model_config: MLPConfig, n_points: int) -> float:
    """Estimated seconds of one forward pass of the MLP on ``n_points`` points (one core at
    :data:`FLOPS_PER_S`; 2 flops a weight, as :func:`step_seconds` counts)."""
    h = model_config.hidden
    inputs = model_config.input_features + model_config.time_features
    weights = inputs * h + (model_config.depth - 1) * h * h + 2 * h
    return 2.0 * n_points * weights / FLOPS_PER_S


def field_table_steps(session: Toy2DSession, *, grid_size: int = 21,
                      max_t: int = FIELD_TABLE_MAX_T,
                      max_seconds: float = FIELD_TABLE_SECONDS) -> list[int]:
    """The t's :func:`field_table` computes: all T when T ≤ ``max_t`` and the forward pass fits
    ``max_seconds`` (:func:`forward_seconds` of ``K · grid_size²`` points), else as many evenly
    spaced t as fit (at least :data:`FIELD_TABLE_MIN_T`, at most ``max_t``)."""
    per_t = forward_seconds(session.model_config, grid_size * grid_size)
    fits = int(max_seconds / per_t) if per_t > 0 else session.T
    return evenly_spaced(session.T, max(FIELD_TABLE_MIN_T, min(max_t, fits)))


def _half_widths(session: Toy2DSession, ts: list[int]) -> np.ndarray:
    """:func:`half_width` of the data and x_t (eq. 4, the session's fixed ε) at each of ``ts``,
    batched over t: float64 ``[K]``, the same numbers :func:`vector_field` computes one by one."""
    data, n = session.data, len(session.data)
    base = half_width(data)
    rows = max(1, (1 << 22) // max(n, 1))  # ≤ 2²² values a chunk (torch.quantile: ≤ 2²⁴)
    out = []
    for i in range(0, len(ts), rows):
        t = torch.tensor(ts[i:i + rows], dtype=torch.long)
        x_t = q_sample(session.schedule, data.repeat(len(t), 1), t.repeat_interleave(n),
                       session.eps.repeat(len(t), 1)).reshape(len(t), n, 2)
        q = torch.quantile(x_t.abs().max(dim=2).values.float(), 0.995, dim=1)
        out.append(q.double().numpy() * 1.08)
    return np.minimum(np.maximum(np.concatenate(out), base), 6.0)


def field_table(session: Toy2DSession, *, grid_size: int = 21,
                ts: list[int] | None = None) -> FieldTable:
    """The network's field at each of ``ts`` (default :func:`field_table_steps`) in one
    batched forward pass (chunks of :data:`FIELD_TABLE_CHUNK` points): ``K · grid_size²``
    points, ≈ 0.1 s for the 2D preset's 200 t. Only for a finished model: a run in progress
    would make it stale at once."""
    if ts is None:
        ts = field_table_steps(session, grid_size=grid_size)
    ts = sorted(set(ts))
    if not ts or ts[0] < 0 or ts[-1] >= session.T or any(isinstance(t, bool) for t in ts):
        raise ValueError(f"ts must be integers in [0, {session.T - 1}]; got {ts!r}")
    half = _half_widths(session, ts)
    grids = np.concatenate([field_grid(h, grid_size)[1] for h in half])  # [K·G², 2]
    x = torch.from_numpy(grids).float()
    t = torch.tensor(ts, dtype=torch.long).repeat_interleave(grid_size * grid_size)
    model = session.model
    with torch.inference_mode():
        pred_eps = torch.cat([model(x[i:i + FIELD_TABLE_CHUNK], t[i:i + FIELD_TABLE_CHUNK])
                              for i in range(0, len(x), FIELD_TABLE_CHUNK)])
    return FieldTable(T=session.T, grid_size=grid_size, step=session.trainer.step,
                      t=np.asarray(ts, dtype=np.int64), half=half,
                      pred_eps=pred_eps.float().numpy().reshape(len(ts), -1, 2))


PREVIEW_SAMPLER = SamplerSettings(sampler="ddim", steps=20, eta=0.0, spacing="trailing")
"""The live preview's fast sampler: DDIM, 20 steps, x̂0 kept in the data's box (as tab 3's
Sample sub-tab does by default, :class:`Toy2DSampling`)."""


@dataclass(frozen=True)
class LivePreview:
    """What a model looks like at training step ``step``: its ``field`` at one t and
    ``samples [n, 2]`` float32 drawn with :data:`PREVIEW_SAMPLER` from ``seed`` (the same
    x_T every time, so successive previews differ only by the weights)."""

    step: int
    field: VectorField
    samples: torch.Tensor
    seed: int


def live_preview(session: Toy2DSession, t: int, *, n_samples: int = 300, seed: int = 0,
                 grid_size: int = 21) -> LivePreview:
    """The vector field at ``t`` and ``n_samples`` fast samples of the weights as they are now
    (the EMA copy when EMA is on), also mid-run: while :meth:`Toy2DSession.train` runs in a
    worker process, the worker computes both (``RemoteRun.call``: no copy of the model, and
    none of the server's own CPU). Costs one grid forward pass and :data:`PREVIEW_SAMPLER`'s 20
    passes on ``n_samples`` points (a few ms for the 2D preset). :class:`WorkerLost` if that
    worker died (the model is then as it was before the run)."""
    from .guidance2d import BOX_MARGIN  # (guidance2d imports this module)

    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer ≥ 1; got {n_samples!r}")
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < session.T:
        raise ValueError(f"t must be an integer in [0, {session.T - 1}]; got {t!r}")
    x_t = q_sample(session.schedule, session.data, t, session.eps)  # eq. (4), fixed ε
    half = half_width(session.data, x_t)
    axis, grid = field_grid(half, grid_size)
    bound = BOX_MARGIN * float(session.data.abs().max())
    pred_eps, samples = session.on_trainer(_preview_arrays, grid, t, bound, n_samples, seed)
    vf = VectorField(t=t, alpha_bar=session.schedule.alpha_bar(t), x_t=x_t, half=half,
                     axis=axis, grid=grid, pred_eps=pred_eps, denoiser="network")
    return LivePreview(step=session.trainer.step, field=vf, samples=samples, seed=seed)


@travels
def _preview_arrays(trainer: Trainer, grid: np.ndarray, t: int, bound: float, n_samples: int,
                    seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """:func:`live_preview`'s model part, wherever ``trainer`` lives (a worker process mid-run):
    ε̂ at ``grid [G², 2]`` and step ``t`` (float64 ``[G², 2]``), and ``n_samples`` DDIM samples
    ``[n, 2]`` (float32) with x̂0 kept in ±``bound`` (:class:`~.guidance2d.DataBox`). Reads the
    trainer, changes nothing."""
    from .guidance2d import DataBox

    model = trainer.sampling_model()
    schedule = trainer.schedule
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, 2, generator=g)
    with torch.inference_mode():
        pred_eps = model(torch.from_numpy(grid).float(),
                         torch.full((len(grid),), t, dtype=torch.long)).double().numpy()
        for step in sample(DataBox(model, schedule, bound), schedule, x, generator=g,
                           **PREVIEW_SAMPLER.sample_kwargs(schedule.T)):
            x = step.x_prev
    return pred_eps, x.float()


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Toy2DSamples:
    """A finished reverse chain from N(0, I).

    ``frames[i] [N, 2]`` is the cloud at timestep ``frame_t[i]``: ``frames[0]`` is x_T (the
    chain's first t, T−1 with trailing spacing), the others follow at evenly spaced reverse
    steps, the last one at t = −1 being ``samples`` itself. ``quality`` is
    :func:`~diffusion_core.evaluation.toy2d.toy2d_quality` of ``samples`` and ``copies`` their
    :func:`copy_share` (None when some samples are NaN/inf; see :meth:`Toy2DSampling.result`).
    ``denoiser`` is the ε-predictor that ran the chain (``"network"`` or ``"ideal"``);
    ``last_t`` the chain's last visited t (its step to t = −1 starts there); ``x0_box``
    whether x̂0 was kept inside the data's box (:class:`Toy2DSampling`). ``paths [S + 1, k,
    2]`` (None unless ``trace=k`` was asked) are the first k points at every one of the S
    steps, ``paths[0]`` = x_T[:k] and ``paths[-1]`` = samples[:k]; ``path_t[i]`` is the t of
    ``paths[i]`` (the chain's first t, then each step's t_prev, ending at −1).
    """

    settings: SamplerSettings
    seed: int
    x_T: torch.Tensor
    samples: torch.Tensor
    frames: tuple[torch.Tensor, ...]
    frame_t: tuple[int, ...]
    quality: Toy2DQuality
    denoiser: str = "network"
    copies: CopyShare | None = None
    last_t: int = 0
    x0_box: bool = False
    paths: torch.Tensor | None = None
    path_t: tuple[int, ...] = ()


MAX_TRACE = 50  # points whose every step a sampling run may keep (Toy2DSampling's trace)


class Toy2DSampling:
    """One run of the reverse chain on a session's model (``denoiser="network"``) or on the
    ideal denoiser of its training points (``"ideal"``); iterate it, then take ``result()``.

    ``x_T ~ N(0, I)`` and every step's noise come from one generator seeded with ``seed``, so a
    fixed seed gives the same samples. Iterating yields each
    :class:`~diffusion_core.sampling.SampleStep` (the UI shows progress and stops by not
    iterating further) and keeps x at most ``max_frames − 1`` evenly spaced steps
    (:func:`~diffusion_core.sampling.evenly_spaced`; the last step always), besides x_T.

    ``settings.sample_kwargs(T)`` is what reaches the sampler: options that do not apply to
    the chosen sampler (η under DDPM) are not passed.

    ``x0_box=True`` keeps the network's x̂0 inside the data's box at every step
    (:class:`~diffusion_core.workflows.guidance2d.DataBox`: ±1.1 × the training points'
    largest |coordinate|; x̂0 is clamped there and ε̂ re-derived from it). Tab 3 turns it on:
    the 2D preset's cosine schedule ends at ᾱ_{T−1} ≈ 6e-8, where x̂0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ
    (DDPM eq. 4 solved for x0) multiplies ε̂'s error by 1/√ᾱ ≈ 4,000, and a deterministic
    sampler's first steps then throw points to ±4 (moons, the preset's 300 steps, 1,000
    samples, seeds 0 and 1: DDIM SW1 15× the floor with all 200 steps and 114× with 25 steps,
    DPM-Solver++ 2M alike, against 1.0× for DDPM; with the box 1.1–1.2×). The box does not
    change DDPM's score (0.95× either way). The ideal denoiser needs no box: its x̂0 is a
    weighted mean of training points, inside the box already, so it is never applied to it.

    ``trace=k`` (0..:data:`MAX_TRACE`) also keeps the first k points at every step, for
    drawing their paths through the chain (``result().paths``): k × (steps + 1) points, the
    rest of the cloud only at the frames' steps.
    """

    STATE = ("frames", "frame_t", "x", "last_t", "done", "generator", "paths", "path_t",
             "scored")
    """What iterating changes: the attributes a worker process sends back
    (``WorkerPool.iterate(run, returns=Toy2DSampling.STATE)``, :mod:`.remote`). The end of
    the chain also scores the samples (``scored``), so a worker computes that too."""

    def __init__(self, session: Toy2DSession, settings: SamplerSettings, n_samples: int,
                 seed: int, *, max_frames: int = 60, denoiser: Denoiser = "network",
                 x0_box: bool = False, trace: int = 0) -> None:
        self.model = session.denoiser(denoiser)  # ValueError for an unknown name
        self.denoiser = denoiser
        if not isinstance(x0_box, bool):
            raise ValueError(f"x0_box must be True or False; got {x0_box!r}")
        self.x0_box = x0_box and denoiser == "network"
        if self.x0_box:
            from .guidance2d import DataBox  # (guidance2d imports this module)

            self.model = DataBox.around(self.model, session)
        if not isinstance(settings, SamplerSettings):
            raise ValueError("settings must be a SamplerSettings")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be an integer ≥ 1; got {n_samples!r}")
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 2:
            raise ValueError(f"max_frames must be an integer ≥ 2; got {max_frames!r}")
        if isinstance(trace, bool) or not isinstance(trace, int) or not 0 <= trace <= MAX_TRACE:
            raise ValueError(f"trace must be an integer in [0, {MAX_TRACE}]; got {trace!r}")
        self.session = session
        self.settings = settings
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.x_T = torch.randn(n_samples, 2, generator=self.generator)
        self.num_steps = settings.resolved_steps(session.T)
        self.keep = frozenset(evenly_spaced(self.num_steps, max_frames - 1))
        self.frames: list[torch.Tensor] = [self.x_T]
        self.frame_t: list[int] = []
        self.x = self.x_T
        self.last_t = session.T - 1
        self.done = False
        self.trace = min(trace, n_samples)
        self.paths: list[torch.Tensor] = [self.x_T[:self.trace].clone()] if self.trace else []
        self.path_t: list[int] = []
        self.scored: tuple[Toy2DQuality, float | None] | None = None  # (quality, copies)

    def __getstate__(self) -> dict:
        """Sent to a worker process: the session reduced to what the chain and its score read
        (schedule, data, data spec), not its trainer (the optimiser's state alone is several
        times the network)."""
        state = dict(self.__dict__)
        s = self.session
        state["session"] = _ChainView(schedule=s.schedule, spec=s.spec, data=s.data)
        return state

    def __iter__(self) -> Iterator[SampleStep]:
        s = self.session
        kwargs = self.settings.sample_kwargs(s.T)
        for step in sample(self.model, s.schedule, self.x_T, generator=self.generator,
                           **kwargs):
            if not self.frame_t:
                self.frame_t.append(step.t)
                if self.trace:
                    self.path_t.append(step.t)
            self.x = step.x_prev
            self.last_t = step.t
            if self.trace:
                self.paths.append(step.x_prev[:self.trace].clone())
                self.path_t.append(step.t_prev)
            if step.index in self.keep:
                self.frames.append(step.x_prev)
                self.frame_t.append(step.t_prev)
            yield step
        self.done = True
        self.scored = self._score()

    def steps(self) -> Iterator[ChainStep]:
        """Iterate the chain as ``iter(self)`` does, yielding only where it is: what a view
        shows while it runs. A worker process sends these, not four point clouds a step
        (``[N, 2]`` each: 640 KB a step for 20,000 points); the frames come back at the end."""
        for step in self:
            yield ChainStep(index=step.index, num_steps=step.num_steps, t=step.t,
                            t_prev=step.t_prev)

    def _score(self) -> tuple[Toy2DQuality, float | None]:
        """``(toy2d_quality, copy_share or None)`` of the finished chain's samples (see
        :meth:`result`)."""
        s = self.session
        quality = toy2d_quality(self.x, s.spec.fresh, data_seed=s.spec.seed,
                                train_data=s.data, projection_seed=self.seed,
                                floor_pairs=QUALITY_FLOOR_PAIRS)
        copies = None
        if quality.bad == 0:
            ref = s.spec.fresh(len(self.x), s.spec.seed + 1001)
            copies = copy_share(self.x, s.data, ref)
        return quality, copies

    def result(self) -> Toy2DSamples:
        """The record of the finished chain, with the samples' quality score.

        The score is the tab's: SW1 to a fresh draw (data seed + 1000) with the sampling seed's
        projections, the floor of :data:`QUALITY_FLOOR_PAIRS` pairs of fresh draws, and the NN
        ratio to the training points (``toy2d_quality``); plus the :func:`copy_share` against
        the NN ratio's fresh reference draw (data seed + 1001). The session keeps the score as
        ``last_scores[denoiser]``.
        """
        if not self.done:
            raise RuntimeError("the reverse chain has not finished: iterate it to the end first")
        s = self.session
        quality, copies = self.scored if self.scored is not None else self._score()
        how = self.settings.describe(s.T) + (", x̂0 in the data's box" if self.x0_box else "")
        s.last_scores[self.denoiser] = SampleScore(
            denoiser=self.denoiser, step=s.trainer.step, how=how,
            quality=quality, copies=copies, last_t=self.last_t, settings=self.settings,
            samples=self.x.detach().float().cpu())
        return Toy2DSamples(settings=self.settings, seed=self.seed, x_T=self.x_T,
                            samples=self.x, frames=tuple(self.frames),
                            frame_t=tuple(self.frame_t), quality=quality,
                            denoiser=self.denoiser, copies=copies, last_t=self.last_t,
                            x0_box=self.x0_box,
                            paths=torch.stack(self.paths) if self.trace else None,
                            path_t=tuple(self.path_t))


@dataclass(frozen=True)
class ChainStep:
    """Where a running reverse chain is (:meth:`Toy2DSampling.steps`): step ``index`` of
    ``num_steps`` (0-based) went from timestep ``t`` to ``t_prev`` (−1: the final sample)."""

    index: int
    num_steps: int
    t: int
    t_prev: int


@dataclass(frozen=True)
class _ChainView:
    """What :class:`Toy2DSampling` reads of its session while the chain runs and is scored
    (in a worker process: see ``Toy2DSampling.__getstate__``)."""

    schedule: NoiseSchedule
    spec: DataSpec
    data: torch.Tensor

    @property
    def T(self) -> int:
        return self.schedule.T


def sample_session(session: Toy2DSession, settings: SamplerSettings, n_samples: int,
                   seed: int, *, max_frames: int = 60, denoiser: Denoiser = "network",
                   x0_box: bool = False, trace: int = 0) -> Toy2DSamples:
    """Run :class:`Toy2DSampling` to the end and return its record."""
    run = Toy2DSampling(session, settings, n_samples, seed, max_frames=max_frames,
                        denoiser=denoiser, x0_box=x0_box, trace=trace)
    for _ in run:
        pass
    return run.result()


def _nn_distances(queries: torch.Tensor, points: torch.Tensor, chunk: int = 2048
                  ) -> torch.Tensor:
    """Distance from each query ``[N, 2]`` to its nearest point ``[M, 2]`` (float64 ``[N]``)."""
    q, p = queries.double(), points.double()
    return torch.cat([torch.cdist(q[i:i + chunk], p).min(dim=1).values
                      for i in range(0, len(q), chunk)])


def copy_share(samples: torch.Tensor, train_data: torch.Tensor, reference: torch.Tensor, *,
               radius: float = COPY_RADIUS) -> CopyShare:
    """The share of ``samples [N, 2]`` that copy one of ``train_data [M, 2]`` (see
    :class:`CopyShare`); ``reference [K, 2]`` is a fresh draw of the data set (not the
    training points), which fixes the radius and the reference share."""
    for name, x in (("samples", samples), ("train_data", train_data), ("reference", reference)):
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != 2 or len(x) < 1:
            raise ValueError(f"{name} must be a tensor [n, 2] with n ≥ 1")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf")
    ref_d = _nn_distances(reference, train_data)
    r = radius * float(ref_d.median())
    if r <= 0:
        raise ValueError("reference sits on the training points: pass a fresh draw")
    spacing = math.nan
    if len(train_data) > 1:
        k = min(len(train_data), SPACING_QUERIES)  # the points are i.i.d.: the first k will do
        d = torch.cdist(train_data[:k].double(), train_data.double())
        d[torch.arange(k), torch.arange(k)] = math.inf
        spacing = float(d.min(dim=1).values.mean())
    return CopyShare(share=float((_nn_distances(samples, train_data) < r).double().mean()),
                     reference=float((ref_d < r).double().mean()), radius=r, spacing=spacing)


# ---------------------------------------------------------------------------------------------
# Forward diffusion
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardFrames:
    """The data noised with one fixed ε at evenly spaced t: ``x_t[i] = q_sample(…, t[i], eps)``.

    ``data [n, 2]`` and ``eps [n, 2]`` (:func:`fixed_noise`) are the session's; ``timesteps``
    ascend from 0 to T−1 and ``alpha_bar[i]`` is ᾱ at ``timesteps[i]``.
    """

    spec: DataSpec
    schedule: NoiseSchedule
    data: torch.Tensor
    eps: torch.Tensor
    timesteps: tuple[int, ...]
    alpha_bar: tuple[float, ...]
    x_t: tuple[torch.Tensor, ...]


def forward_frames(spec: DataSpec, schedule_config: ScheduleConfig, *,
                   frames: int = 30) -> ForwardFrames:
    """x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε (eq. 4) of ``spec``'s points at ≤ ``frames`` evenly spaced t."""
    schedule = NoiseSchedule(schedule_config)
    pts = spec.draw()
    eps = fixed_noise(spec.n, spec.seed)
    ts = tuple(evenly_spaced(schedule.T, frames))
    return ForwardFrames(
        spec=spec, schedule=schedule, data=pts, eps=eps, timesteps=ts,
        alpha_bar=tuple(schedule.alpha_bar(t) for t in ts),
        x_t=tuple(q_sample(schedule, pts, t, eps) for t in ts),  # eq. (4), the same ε
    )
