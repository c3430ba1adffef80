"""The sampler lab: several samplers on the same noise, steps vs quality, DDIM inversion.

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``; t = 0 is one
noising step and ᾱ_{−1} = 1 is the clean data. Every chain here starts from one seeded x_T at
its first visited t and walks ``(t, t_prev)`` pairs down to t_prev = −1 (the sample); every
inversion walks the same pairs upwards, from x0 at t = −1 to the chain's first t.

Works for any ε-predictor and schedule: a 2D session's MLP (``x [N, 2]``) and an image
checkpoint's U-Net (``x [N, C, H, W]``) alike; shapes are ``[N, *shape]`` throughout.

Code name ↔ paper symbol:

=================  ==================================================================
``x_T``            x_T ~ N(0, I): the one starting point every sampler of a run shares
``x0``             x_0, data; ``x0_hat`` its reconstruction x̂_0 after a round trip
``nfe``            number of function (network) evaluations ε_θ(x_t, t); DDPM (eq. 11),
                   DDIM (eq. 12) and DPM-Solver++ 2M (Lu et al. 2022, Alg. 2: multistep,
                   it reuses the previous step's x̂0) each make one per step
``paths``          x_t of a fixed subset of points after every step (2D), x_T first
``latent``         the DDIM latent x_T of an image (DDIM Sec. 4.3: the ODE of eq. 14 run
                   upwards, :func:`~diffusion_core.sampling.ddim_invert`)
``slerp``          spherical interpolation between two latents (DDIM Sec. 5.3)
=================  ==================================================================

==============================  ================================================================
name                            what it is
==============================  ================================================================
:func:`draw_x_T`                one seeded x_T and the generator that then draws the chain's
                                noise (the same draws as tab 3's and tab 4's samplers)
:class:`SamplerComparison`      several :class:`~diffusion_core.sampling.SamplerSettings` from
                                the same x_T, streamed step by step; keeps particle paths;
                                → :class:`ComparisonRun` per sampler
:class:`QualitySweep`           steps vs quality: each setting at each step count from the same
                                x_T, scored by a :class:`Judge`; → :class:`SweepPoint` each
:class:`InversionSweep`         the round trip x0 → x_T → x̂0 at several step counts
                                (error vs steps); → :class:`RoundTrip` each
:func:`truncated_schedule`      a schedule's first T' timesteps (the network's labels are
                                unchanged); :func:`noisy_top`: the last t with ᾱ_t ≥ 0.001
:func:`slerp`                   spherical interpolation between two latents
:class:`LatentInterpolation`    invert two images, slerp between their latents, sample the path
:class:`Judge`                  a quality score with named :class:`Metric` s:
                                :func:`toy2d_judge` (SW1, NN ratio), :func:`image_judge`
                                (digits, gradients, shapes: :data:`IMAGE_JUDGES`)
==============================  ================================================================

Nothing here imports gradio or plotly; everything is a generator or a record, so a UI can show
progress and stop (a consumer that stops iterating stops the work at the next step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data._checks import check_int
from ..sampling.config import SamplerSettings
from ..sampling.invert import ddim_invert_steps
from ..sampling.loop import SampleStep, sample
from ..sampling.spacing import timesteps
from ..schedule.noise_schedule import NoiseSchedule

if TYPE_CHECKING:
    from .toy2d import Toy2DSession

__all__ = [
    "ComparisonRun",
    "ComparisonStep",
    "CountingModel",
    "InterpolationResult",
    "InversionProgress",
    "InversionSweep",
    "Judge",
    "LatentInterpolation",
    "Metric",
    "QualitySweep",
    "RoundTrip",
    "SamplerComparison",
    "SweepPoint",
    "SweepProgress",
    "draw_x_T",
    "image_judge",
    "noisy_top",
    "path_lengths",
    "rms",
    "slerp",
    "toy2d_judge",
    "truncated_schedule",
]

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Scores = dict[str, float]


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------


class CountingModel:
    """Wraps an ε-predictor and counts its calls: the NFE a chain really made."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.calls = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x, t)


def draw_x_T(shape: Sequence[int], n: int, seed: int, *, device: str | torch.device = "cpu"
             ) -> tuple[torch.Tensor, torch.Generator]:
    """``(x_T [n, *shape], generator)``: x_T ~ N(0, I) is the first draw of a generator seeded
    with ``seed``, which then draws the chain's noise.

    The same rule as :class:`~diffusion_core.workflows.toy2d.Toy2DSampling` and
    :func:`~diffusion_core.workflows.image_sampling.initial_noise`, so a lab run of one sampler
    with seed s gives the very samples tab 3 or tab 4 give with seed s.
    """
    n = check_int("n", n, 1, 10**7)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    g = torch.Generator(device=device).manual_seed(seed)
    x_T = torch.randn((n, *shape), generator=g, device=device)
    return x_T, g


def _fork(generator: torch.Generator) -> torch.Generator:
    """A new generator in ``generator``'s current state (each sampler draws the same noise)."""
    g = torch.Generator(device=generator.device)
    g.set_state(generator.get_state())
    return g


def rms(a: torch.Tensor, b: torch.Tensor) -> float:
    """√mean((a − b)²) over every coordinate (inf/NaN when a blew up)."""
    return float((a.double() - b.double()).pow(2).mean().sqrt())


def path_lengths(paths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(length [P], chord [P])`` of particle paths ``[K + 1, P, D]``.

    ``length`` is the total variation Σ_k |x_{k+1} − x_k| of each path (polyline length),
    ``chord`` the straight distance |x_K − x_0| from start to end. A smooth (ODE) path has
    length / chord near 1; a jittering (ancestral) path is much longer than its chord.
    """
    if paths.ndim != 3 or paths.shape[0] < 2:
        raise ValueError(f"paths must be [K + 1, P, D] with K ≥ 1; got {list(paths.shape)}")
    p = paths.double()
    length = (p[1:] - p[:-1]).norm(dim=2).sum(dim=0)
    chord = (p[-1] - p[0]).norm(dim=1)
    return length, chord


# ---------------------------------------------------------------------------------------------
# Judges: a quality score with named metrics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One number a :class:`Judge` reports: ``scores[key]``.

    ``hint`` says which way is better ("lower is better", "1 is ideal"); ``reference`` is what
    real data (or an exact sampler) scores at the same N, drawn as a dashed line, described by
    ``reference_label``; ``None`` when there is none.
    """

    key: str
    label: str
    hint: str
    reference: float | None = None
    reference_label: str = ""


@dataclass(frozen=True, eq=False)
class Judge:
    """``score(samples [N, *shape]) → {metric key: float, …}``; :attr:`metrics` name the keys
    worth plotting. ``n`` is the sample count the references were computed at (compare runs at
    equal N: several of these scores are biased at small N)."""

    name: str
    n: int
    metrics: tuple[Metric, ...]
    score: Callable[[torch.Tensor], Scores]
    note: str = ""


def toy2d_judge(session: Toy2DSession, n: int, *, projection_seed: int = 0) -> Judge:
    """The 2D tab's score (:func:`~diffusion_core.evaluation.toy2d.toy2d_quality`) for ``n``
    samples of ``session``'s data set: SW1 to a fresh draw (reference: its floor, two fresh
    draws) and the NN ratio to the training points (1 = as close as real data).

    ``projection_seed`` is the SW1 projections' seed (tab 3 uses the sampling seed).
    """
    from ..evaluation.toy2d import toy2d_floor, toy2d_quality
    from .toy2d import QUALITY_FLOOR_PAIRS

    spec = session.spec
    n = check_int("n", n, 1, 10**6)
    floor = toy2d_floor(spec.fresh, n, data_seed=spec.seed,
                        floor_pairs=QUALITY_FLOOR_PAIRS)
    data = session.data

    def score(x: torch.Tensor) -> Scores:
        q = toy2d_quality(x, spec.fresh, data_seed=spec.seed, train_data=data,
                          projection_seed=projection_seed, floor_pairs=QUALITY_FLOOR_PAIRS)
        return {"sw1": q.sw1, "floor": q.floor, "ratio": q.ratio, "nn": q.nn,
                "bad": float(q.bad)}

    return Judge(
        name=f"2D quality ({spec.name})", n=n,
        metrics=(Metric("sw1", "SW1 to fresh data", "lower is better", floor,
                        "floor: two fresh draws of the data"),
                 Metric("nn", "NN ratio", "1 is ideal; below 1 = copying training points",
                        1.0, "1: as close as real data")),
        score=score)


IMAGE_JUDGES = ("digits", "digits8", "gradients", "shapes")  # data sets image_judge scores


def image_judge(dataset: str, shape: Sequence[int], n: int) -> Judge | None:
    """The cheap quality judge for ``n`` image samples ``[n, *shape]`` of ``dataset``, or None.

    - ``digits`` / ``digits8``: :func:`~diffusion_core.evaluation.digit_quality` — Fréchet
      distance in the held-out classifier's features and its mean confidence; references:
      ``n`` real training digits scored the same way (the Fréchet distance is biased upward at
      small N, so the reference is taken at the same N). The first call fits the classifier
      (≈ 5 s, once per process).
    - ``gradients``: mean RMS misfit of the two-colour gradient model
      (:func:`~diffusion_core.evaluation.gradient_residual`) and SW1 to a fresh draw of real
      gradients (flat images fit the model too; SW1 catches them); references: a real draw.
    - ``shapes``: mean two-colour misfit and edge softness (:func:`shape_quality`'s cheap
      parts; its classifier takes ~1 min to fit, too slow for a button); references: a real
      draw.

    Reference values are cached per (data set, shape, n).
    """
    shape = tuple(int(s) for s in shape)
    n = check_int("n", n, 2, 100_000)
    if dataset in ("digits", "digits8") and len(shape) == 3 and shape[0] == 1 \
            and shape[1] == shape[2] and shape[1] in (8, 16):
        return _digit_judge(shape[1], n)
    if dataset == "gradients" and len(shape) == 3 and shape[0] == 3 and shape[1] == shape[2]:
        return _gradient_judge(shape[1], n)
    if dataset == "shapes" and len(shape) == 3 and shape[0] == 3 and shape[1] == shape[2] \
            and shape[1] >= 8:
        return _shape_judge(shape[1], n)
    return None


def _digit_scores(x: torch.Tensor) -> Scores:
    from ..evaluation.digits import digit_quality

    q = digit_quality(torch.nan_to_num(x.float(), nan=0.0))
    return {"frechet_distance": float(q["frechet_distance"]),
            "confidence": float(q["confidence"]), "class_entropy": float(q["class_entropy"]),
            "near_copy_fraction": float(q["near_copy_fraction"])}


@lru_cache(maxsize=8)
def _digit_judge(size: int, n: int) -> Judge:
    from ..data.digits import load_digits_images

    train = load_digits_images(size, "train").images
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n]
    real = _digit_scores(train[pick])
    return Judge(
        name="digit quality", n=n,
        metrics=(Metric("frechet_distance", "Fréchet distance (classifier features)",
                        "lower is better", real["frechet_distance"],
                        f"{min(n, len(train))} real digits"),
                 Metric("confidence", "classifier confidence", "higher is better",
                        real["confidence"], "real digits")),
        score=_digit_scores,
        note="digit_quality: a classifier fitted only on held-out digits")


@lru_cache(maxsize=8)
def _gradient_judge(size: int, n: int) -> Judge:
    from ..data.synthetic import make_gradients
    from ..evaluation.distances import sliced_wasserstein
    from ..evaluation.gradients import gradient_residual

    fresh = make_gradients(n, size, seed=20_000)  # bench/quality.py's evaluation draw

    def score(x: torch.Tensor) -> Scores:
        x = torch.nan_to_num(x.float(), nan=0.0).clamp(-1.0, 1.0)
        return {"residual_mean": float(gradient_residual(x).double().mean()),
                "sw1": sliced_wasserstein(x, fresh, n_projections=128, seed=0)}

    real = score(make_gradients(n, size, seed=10_000))
    return Judge(
        name="gradient quality", n=n,
        metrics=(Metric("residual_mean", "gradient-model misfit (RMS)", "lower is better",
                        real["residual_mean"], "real gradients"),
                 Metric("sw1", "SW1 to real gradients", "lower is better", real["sw1"],
                        "another real draw")),
        score=score)


@lru_cache(maxsize=8)
def _shape_judge(size: int, n: int) -> Judge:
    from ..data.synthetic import make_shapes
    from ..evaluation.gradients import two_colour_residual
    from ..evaluation.shapes import shape_masks

    def score(x: torch.Tensor) -> Scores:
        x = torch.nan_to_num(x.float(), nan=0.0).clamp(-1.0, 1.0)
        m, _ = shape_masks(x)
        return {"residual_mean": float(two_colour_residual(x).double().mean()),
                "edge_softness": float(((m > 0.1) & (m < 0.9)).mean())}

    real = score(make_shapes(n, size, seed=10_000)[0])
    return Judge(
        name="shape quality", n=n,
        metrics=(Metric("residual_mean", "two-colour misfit (RMS)", "lower is better",
                        real["residual_mean"], "real shapes"),
                 Metric("edge_softness", "edge softness", "lower is crisper",
                        real["edge_softness"], "real shapes")),
        score=score)


# ---------------------------------------------------------------------------------------------
# Several samplers from the same x_T
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonStep:
    """What :class:`SamplerComparison` yields after each reverse step: which sampler
    (``run`` of ``num_runs``) and the sampler's own :class:`~diffusion_core.sampling.SampleStep`.
    ``finished`` is the sampler's record on its last step (after scoring), else None."""

    run: int
    num_runs: int
    step: SampleStep
    finished: ComparisonRun | None = None


@dataclass(frozen=True)
class ComparisonRun:
    """One sampler's finished chain from the shared x_T.

    ``samples [N, *shape]``; ``visited`` the timesteps it evaluated the network at (decreasing);
    ``nfe`` the network calls it made (counted); ``paths [K + 1, P, *shape]`` (or None) the
    tracked points after every step, x_T first, at ``path_t`` (the first t, then each step's
    t_prev, ending at −1); ``path_length`` / ``path_chord`` their mean polyline length and mean
    start-to-end distance (:func:`path_lengths`, 2D only); ``scores`` the judge's (or None);
    ``seconds`` of sampling (network and updates, no scoring).
    """

    index: int
    settings: SamplerSettings
    label: str
    visited: tuple[int, ...]
    nfe: int
    samples: torch.Tensor
    paths: torch.Tensor | None
    path_t: tuple[int, ...]
    path_length: float
    path_chord: float
    scores: Scores | None
    seconds: float

    @property
    def steps(self) -> int:
        return len(self.visited)


class SamplerComparison:
    """Several samplers from one seeded x_T; iterate it (each step is yielded), then read
    :attr:`runs`.

    Args:
        model: ε-predictor ``model(x_t [B, ...], t int64 [B]) → [B, ...]``.
        schedule: its noise schedule (T = ``schedule.T``).
        configs: the settings to compare, in order (steps > T are cut to T, see
            :meth:`SamplerSettings.resolved_steps`).
        n: samples per sampler; ``shape`` one sample's shape (``(2,)`` for points).
        seed: x_T is the first draw of ``torch.Generator().manual_seed(seed)``
            (:func:`draw_x_T`); every sampler starts from that x_T, and each stochastic one
            draws its noise from a copy of the generator in the state after x_T, so DDPM and
            DDIM with η > 0 see the same z sequence and one sampler alone reproduces tab 3/4.
        path_points: how many points' paths to keep (a fixed random subset, the same for every
            sampler; 0 for none: images).
        judge: scores each sampler's final samples, or None.

    A consumer that stops iterating stops the work; :attr:`runs` then holds the samplers that
    finished.
    """

    def __init__(self, model: Model, schedule: NoiseSchedule,
                 configs: Sequence[SamplerSettings], n: int, seed: int, *,
                 shape: Sequence[int] = (2,), path_points: int = 0, judge: Judge | None = None,
                 device: str | torch.device = "cpu") -> None:
        if not configs or not all(isinstance(c, SamplerSettings) for c in configs):
            raise ValueError("configs must be a non-empty list of SamplerSettings")
        self.model = model
        self.schedule = schedule
        self.configs = tuple(configs)
        self.seed = seed
        self.x_T, g = draw_x_T(shape, n, seed, device=device)
        self._noise_state = g
        path_points = check_int("path_points", path_points, 0, n)
        rng = np.random.default_rng(seed)
        self.path_index = torch.from_numpy(
            np.sort(rng.choice(n, size=path_points, replace=False))).long()
        self.judge = judge
        self.runs: list[ComparisonRun] = []

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def planned_nfe(self) -> int:
        """Network evaluations the whole comparison makes (one per step for every sampler)."""
        return sum(c.resolved_steps(self.T) for c in self.configs)

    def __iter__(self) -> Iterator[ComparisonStep]:
        idx = self.path_index
        for i, settings in enumerate(self.configs):
            counted = CountingModel(self.model)
            chain = sample(counted, self.schedule, self.x_T, generator=_fork(self._noise_state),
                           **settings.sample_kwargs(self.T))
            paths = [self.x_T[idx]] if len(idx) else []
            path_t: list[int] = []
            visited: list[int] = []
            seconds = 0.0
            try:
                while True:
                    t0 = time.perf_counter()
                    step = next(chain, None)
                    seconds += time.perf_counter() - t0
                    if step is None:
                        break
                    visited.append(step.t)
                    if len(idx):
                        if not path_t:
                            path_t.append(step.t)
                        paths.append(step.x_prev[idx])
                        path_t.append(step.t_prev)
                    finished = None
                    if step.t_prev == -1:
                        finished = self._finish(i, settings, step.x_prev, visited, counted.calls,
                                                paths, path_t, seconds)
                    yield ComparisonStep(i, len(self.configs), step, finished)
            finally:
                chain.close()

    def _finish(self, i, settings, samples, visited, nfe, paths, path_t, seconds
                ) -> ComparisonRun:
        stacked = torch.stack(paths) if len(paths) > 1 else None
        length = chord = math.nan
        if stacked is not None and stacked.ndim == 3:
            lengths, chords = path_lengths(stacked)
            length, chord = float(lengths.mean()), float(chords.mean())
        scores = self.judge.score(samples) if self.judge is not None else None
        run = ComparisonRun(index=i, settings=settings, label=settings.describe(self.T),
                            visited=tuple(visited), nfe=nfe, samples=samples, paths=stacked,
                            path_t=tuple(path_t), path_length=length, path_chord=chord,
                            scores=scores, seconds=seconds)
        self.runs.append(run)
        return run


# ---------------------------------------------------------------------------------------------
# Steps vs quality
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    """One (setting, step count) of a :class:`QualitySweep`: ``nfe`` network calls (counted),
    the judge's ``scores`` of its samples, ``seconds`` of sampling. ``config`` indexes the
    sweep's settings; ``settings`` is that setting with this step count."""

    config: int
    settings: SamplerSettings
    steps: int
    nfe: int
    scores: Scores
    seconds: float


@dataclass(frozen=True)
class SweepProgress:
    """What :class:`QualitySweep` yields: after each reverse step (``step``), and once more
    after each point is scored (``point``, with ``step`` None). ``index`` counts the plan's
    points (0 … ``num_points`` − 1); ``nfe_done`` the network calls so far, of
    ``nfe_total``."""

    index: int
    num_points: int
    config: int
    steps: int
    nfe_done: int
    nfe_total: int
    step: SampleStep | None = None
    point: SweepPoint | None = None


class QualitySweep:
    """Steps vs quality: each of ``configs`` at each of ``step_counts``, all from one x_T.

    The plan runs the step counts in increasing order, every setting at one count before the
    next count, so a sweep stopped early (a time budget) still has the cheap end of every
    curve. Step counts above T are dropped (a chain visits at most T timesteps); each sampler
    makes one network call per step, so x = NFE = steps. Same x_T and noise rule as
    :class:`SamplerComparison` (``seed``).

    Iterate it; :attr:`points` holds the finished :class:`SweepPoint` s, :meth:`curve` one
    line of the plot.
    """

    def __init__(self, model: Model, schedule: NoiseSchedule,
                 configs: Sequence[SamplerSettings], step_counts: Sequence[int], judge: Judge,
                 n: int, seed: int, *, shape: Sequence[int] = (2,),
                 device: str | torch.device = "cpu") -> None:
        if not configs or not all(isinstance(c, SamplerSettings) for c in configs):
            raise ValueError("configs must be a non-empty list of SamplerSettings")
        counts = sorted({check_int("step count", s, 1, 10**6) for s in step_counts})
        counts = [s for s in counts if s <= schedule.T]
        if not counts:
            raise ValueError(f"no step count in 1..T = {schedule.T}")
        self.model = model
        self.schedule = schedule
        self.configs = tuple(configs)
        self.step_counts = tuple(counts)
        self.judge = judge
        self.x_T, self._noise_state = draw_x_T(shape, n, seed, device=device)
        self.plan = [(c, s) for s in self.step_counts for c in range(len(self.configs))]
        self.nfe_total = sum(s for _, s in self.plan)
        self.points: list[SweepPoint] = []

    def __iter__(self) -> Iterator[SweepProgress]:
        done = 0
        total = len(self.plan)
        for k, (c, steps) in enumerate(self.plan):
            settings = replace(self.configs[c], steps=steps)
            counted = CountingModel(self.model)
            chain = sample(counted, self.schedule, self.x_T, generator=_fork(self._noise_state),
                           **settings.sample_kwargs(self.schedule.T))
            seconds = 0.0
            x = self.x_T
            try:
                while True:
                    t0 = time.perf_counter()
                    step = next(chain, None)
                    seconds += time.perf_counter() - t0
                    if step is None:
                        break
                    x = step.x_prev
                    yield SweepProgress(k, total, c, steps, done + counted.calls, self.nfe_total,
                                        step=step)
            finally:
                chain.close()
            done += counted.calls
            point = SweepPoint(c, settings, steps, counted.calls, self.judge.score(x), seconds)
            self.points.append(point)
            yield SweepProgress(k, total, c, steps, done, self.nfe_total, point=point)

    def curve(self, config: int, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(nfe, value)`` of metric ``key`` for setting ``config``: one entry per finished
        step count, increasing NFE."""
        pts = sorted((p for p in self.points if p.config == config), key=lambda p: p.nfe)
        return (np.array([p.nfe for p in pts], dtype=np.int64),
                np.array([p.scores.get(key, math.nan) for p in pts], dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# DDIM inversion round trip
# ---------------------------------------------------------------------------------------------


def truncated_schedule(schedule: NoiseSchedule, T: int) -> NoiseSchedule:
    """The first ``T`` timesteps of ``schedule`` (0 … T − 1, the same β_t and ᾱ_t) as a
    schedule of its own.

    A network trained on ``schedule`` works on it unchanged: it is called with the same
    timestep labels t < T. Chains on it start at most at t = T − 1 (with ``"trailing"``
    spacing exactly there), so the last, nearly noise-only timesteps are left out.
    """
    T = check_int("T", T, 1, schedule.T)
    if T == schedule.T:
        return schedule
    betas = schedule.float64["betas"][:T]
    return NoiseSchedule(kind="custom", T=T, custom_betas=betas)


def noisy_top(schedule: NoiseSchedule, min_alpha_bar: float = 1e-3) -> int:
    """The largest t with ᾱ_t ≥ ``min_alpha_bar`` (0 if none): a timestep that is noise for
    every practical purpose (ᾱ = 1e-3: x_t = 0.03 x0 + 0.9995 ε), before the cosine
    schedule's last steps, where ᾱ falls by ×1000 per step (β clipped at 0.999)."""
    ab = schedule.float64["alphas_cumprod"]
    ok = torch.nonzero(ab >= min_alpha_bar)
    return int(ok.max()) if len(ok) else 0


@dataclass(frozen=True)
class RoundTrip:
    """x0 → :func:`~diffusion_core.sampling.ddim_invert` (``steps``, ``spacing``) → x_T →
    ``sample(ddim, η = 0)`` with the same steps and spacing → ``x0_hat``.

    ``x_T`` and ``x0_hat`` are ``[N, *shape]``; ``t_top`` the timestep x_T sits at (the chain's
    first t); ``rms`` = √mean((x̂0 − x0)²) over every coordinate; ``max_error`` the largest
    per-example L2 distance; ``nfe`` = 2 · steps (up, then down).
    """

    steps: int
    spacing: str
    t_top: int
    x_T: torch.Tensor
    x0_hat: torch.Tensor
    rms: float
    max_error: float
    nfe: int
    seconds: float


@dataclass(frozen=True)
class InversionProgress:
    """What :class:`InversionSweep` yields after each network call: which step count
    (``index`` of ``num_counts``, ``steps``), ``phase`` ``"invert"`` or ``"sample"``, the step
    within that phase (``step_index`` of ``steps``); ``trip`` once that count is finished."""

    index: int
    num_counts: int
    steps: int
    phase: str
    step_index: int
    trip: RoundTrip | None = None


class InversionSweep:
    """The DDIM round trip x0 → x_T → x̂0 at each of ``step_counts`` (increasing); iterate it,
    then read :attr:`trips`.

    DDIM with η = 0 is the Euler discretisation of an ODE (DDIM eq. 14); running it upwards
    (:func:`~diffusion_core.sampling.ddim_invert`) evaluates ε̂ at the current point instead
    of the unknown next one, an O(Δ²) error per step, so the round trip is exact only as the
    number of steps grows. No x̂0 clipping anywhere (it would break the inverse).

    ``spacing`` defaults to ``"leading"``: on schedules with ᾱ_{T−1} ≈ 0 (cosine: ≈ 2e-9 at
    T = 1000) ``"trailing"`` ends the inversion at T − 1 and multiplies each ε̂ error by
    σ/α ≈ 10⁴ there (see :mod:`diffusion_core.sampling.invert`). Leading spacing's top
    timestep, (steps − 1)·(T // steps), climbs towards T − 1 as the steps grow, so its error
    falls and then rises again (digits model, 16 held-out digits: RMS 0.123 / 0.060 / 0.026 /
    0.059 / 0.123 at 5 / 20 / 100 / 200 / 500 steps), and each count goes to another noise
    level.

    ``top`` (a timestep) makes every count go to the same place: the chain runs on the
    schedule cut after ``top`` (:func:`truncated_schedule`; the network still sees its own
    timestep labels), so with ``spacing="trailing"`` every inversion ends exactly at ``top``
    and the error falls steadily with the steps (2D preset, top = :func:`noisy_top` = 194:
    RMS 0.31 / 0.064 / 0.022 / 0.0056 at 2 / 10 / 50 / 195 steps).
    """

    def __init__(self, model: Model, schedule: NoiseSchedule, x0: torch.Tensor,
                 step_counts: Sequence[int], *, spacing: str = "leading",
                 top: int | None = None) -> None:
        if not isinstance(x0, torch.Tensor) or x0.ndim < 2 or not x0.is_floating_point():
            raise ValueError("x0 must be a float tensor of shape [N, ...]")
        if top is not None:
            schedule = truncated_schedule(schedule, check_int("top", top, 0, schedule.T - 1) + 1)
        counts = sorted({check_int("step count", s, 1, 10**6) for s in step_counts})
        counts = [s for s in counts if s <= schedule.T]
        if not counts:
            raise ValueError(f"no step count in 1..{schedule.T}")
        timesteps(schedule.T, counts[0], spacing)  # validates the spacing
        self.model = model
        self.schedule = schedule
        self.top = top
        self.x0 = x0
        self.step_counts = tuple(counts)
        self.spacing = spacing
        self.trips: list[RoundTrip] = []

    def __iter__(self) -> Iterator[InversionProgress]:
        m = len(self.step_counts)
        for k, steps in enumerate(self.step_counts):
            trip = None
            for p in _round_trip(self.model, self.schedule, self.x0, steps, self.spacing):
                if isinstance(p, RoundTrip):
                    trip = p
                else:
                    yield InversionProgress(k, m, steps, p[0], p[1])
            self.trips.append(trip)
            yield InversionProgress(k, m, steps, "done", steps, trip=trip)


def _round_trip(model: Model, schedule: NoiseSchedule, x0: torch.Tensor, steps: int,
                spacing: str) -> Iterator[tuple[str, int] | RoundTrip]:
    """Yields ``("invert", i)`` / ``("sample", i)`` after each network call, then the
    :class:`RoundTrip`."""
    t0 = time.perf_counter()
    x_T = x0
    up = ddim_invert_steps(model, schedule, x0, steps=steps, spacing=spacing)
    try:
        for s in up:
            x_T = s.x_next
            t_top = s.t_next
            yield "invert", s.index
    finally:
        up.close()
    x = x_T
    down = sample(model, schedule, x_T, sampler="ddim", eta=0.0, steps=steps, spacing=spacing)
    try:
        for s in down:
            x = s.x_prev
            yield "sample", s.index
    finally:
        down.close()
    err = (x.double() - x0.double()).flatten(1).norm(dim=1)
    yield RoundTrip(steps=steps, spacing=spacing, t_top=t_top, x_T=x_T, x0_hat=x,
                    rms=rms(x, x0), max_error=float(err.max()), nfe=2 * steps,
                    seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# Interpolating between two inverted images
# ---------------------------------------------------------------------------------------------


def slerp(z0: torch.Tensor, z1: torch.Tensor, weights: Sequence[float] | torch.Tensor
          ) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; DDIM Sec. 5.3 interpolates x_T this way):
    ``[k, *z0.shape]`` with, for each weight w ∈ [0, 1],

        z(w) = sin((1 − w) θ) / sin θ · z0 + sin(w θ) / sin θ · z1,
        θ = arccos(⟨z0, z1⟩ / (|z0| |z1|))   (over all coordinates)

    so z(0) = z0 and z(1) = z1 exactly. Linear interpolation would shrink the midpoint's norm
    (two independent Gaussians are nearly orthogonal: |(z0 + z1)/2| ≈ |z0|/√2), leaving the
    shell where x_T lives; slerp stays on it. Nearly parallel latents (sin θ < 1e-6) are
    interpolated linearly. Computed in float64, returned in z0's dtype.
    """
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape; got {list(z0.shape)} and "
                         f"{list(z1.shape)}")
    w = torch.as_tensor(weights, dtype=torch.float64).flatten()
    if w.numel() < 1 or not torch.isfinite(w).all():
        raise ValueError("weights must be finite numbers")
    a, b = z0.double().flatten(), z1.double().flatten()
    cos = (a @ b / (a.norm() * b.norm()).clamp_min(1e-300)).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    s = torch.sin(theta)
    wc = w[:, None]
    if float(s) < 1e-6:
        out = (1.0 - wc) * a + wc * b
    else:
        out = torch.sin((1.0 - wc) * theta) / s * a + torch.sin(wc * theta) / s * b
    out[w == 0] = a  # exact ends whatever the rounding
    out[w == 1] = b
    return out.to(z0.dtype).reshape(len(w), *z0.shape)


@dataclass(frozen=True)
class InterpolationResult:
    """Two images, their DDIM latents and the sampled slerp path between them.

    ``x0 [2, *shape]`` the two images; ``latents [2, *shape]`` their inverted x_T, at
    timestep ``t_top`` (the chain's first t);
    ``weights [k]`` from 0 to 1; ``path [k, *shape]`` = :func:`slerp` of the latents;
    ``samples [k, *shape]`` each path latent sampled with DDIM η = 0 (same steps and spacing
    as the inversion): ``samples[0]`` and ``samples[-1]`` are the two round-trip
    reconstructions, with errors ``recon_rms`` (√mean of squares, per image).
    """

    steps: int
    spacing: str
    t_top: int
    x0: torch.Tensor
    latents: torch.Tensor
    weights: torch.Tensor
    path: torch.Tensor
    samples: torch.Tensor
    recon_rms: tuple[float, float]
    nfe: int


class LatentInterpolation:
    """Invert two images (one batch), slerp between their latents in ``frames`` points, sample
    the path (one batch, DDIM η = 0). Iterate it (one ``(phase, index, num_steps)`` per network
    call, phase ``"invert"`` or ``"sample"``), then take :meth:`result`.

    ``spacing`` defaults to ``"leading"`` (see :class:`InversionSweep`).
    """

    def __init__(self, model: Model, schedule: NoiseSchedule, x_a: torch.Tensor,
                 x_b: torch.Tensor, *, frames: int, steps: int, spacing: str = "leading"
                 ) -> None:
        if x_a.shape != x_b.shape or x_a.ndim < 1:
            raise ValueError("x_a and x_b must be single examples of the same shape")
        self.frames = check_int("frames", frames, 2, 64)
        self.steps = check_int("steps", steps, 1, schedule.T)
        timesteps(schedule.T, self.steps, spacing)  # validates the spacing
        self.model = model
        self.schedule = schedule
        self.spacing = spacing
        self.x0 = torch.stack([x_a, x_b]).float()
        self._result: InterpolationResult | None = None

    def __iter__(self) -> Iterator[tuple[str, int, int]]:
        counted = CountingModel(self.model)
        latents = self.x0
        t_top = -1
        up = ddim_invert_steps(counted, self.schedule, self.x0, steps=self.steps,
                               spacing=self.spacing)
        try:
            for s in up:
                latents, t_top = s.x_next, s.t_next
                yield "invert", s.index, s.num_steps
        finally:
            up.close()
        weights = torch.linspace(0.0, 1.0, self.frames, dtype=torch.float64)
        path = slerp(latents[0], latents[1], weights)
        x = path
        down = sample(counted, self.schedule, path, sampler="ddim", eta=0.0, steps=self.steps,
                      spacing=self.spacing)
        try:
            for s in down:
                x = s.x_prev
                yield "sample", s.index, s.num_steps
        finally:
            down.close()
        self._result = InterpolationResult(
            steps=self.steps, spacing=self.spacing, t_top=t_top, x0=self.x0, latents=latents,
            weights=weights, path=path, samples=x,
            recon_rms=(rms(x[0], self.x0[0]), rms(x[-1], self.x0[1])), nfe=counted.calls)

    def result(self) -> InterpolationResult:
        if self._result is None:
            raise RuntimeError("the interpolation has not finished: iterate it to the end first")
        return self._result
