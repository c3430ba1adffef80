"""Classifier-free guidance on a 2D session: the three fields, guided samples, the trade-off.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean data. The reverse chain starts from x_T ~ N(0, I) at t = T−1 and ends
at t = −1 (the sample). Points are float32 ``[n, 2]`` in model coordinates.

Guidance convention (:mod:`diffusion_core.sampling.guidance`, Ho & Salimans 2022):

    ε̃ = ε_u + s · (ε_c − ε_u),   ε_c = ε(x_t, t, y),  ε_u = ε(x_t, t, ∅)

s = 0 is the unconditional model, s = 1 the conditional one, s > 1 guides harder (diffusers'
``guidance_scale``). Up to the factor −√(1 − ᾱ_t), ε is the score ∇ log p(x_t), so ε̃ is the
score of p(x_t) · p(y | x_t)^s: s > 1 sharpens the class posterior (fidelity up, diversity
down).

=========================  =====================================================================
name                       what it does
=========================  =====================================================================
:func:`guided_field`       ε_u, ε_c and ε̃ of one class at one t on a square grid over the
                           noised cloud x_t (one batched pass, ``GuidedModel.parts``)
:func:`sample_guided`      n guided samples from one seeded x_T, split evenly over the classes
                           (sample i guided toward class i mod K), with their
                           :class:`ClassScores`
:func:`guided_view`        both at once: the record the live view of tab 3 draws
:func:`tradeoff_curve`     generator: one :class:`TradeoffRow` per scale (accuracy, spread,
                           class-wise SW1), all from the same x_T
:class:`DataBox`           the ε-predictor wrapper that keeps x̂0 inside the data's box
=========================  =====================================================================

``denoiser``: ``"network"`` (the session's class-conditional network, an x0 or v output
converted to ε) or ``"ideal"`` (the labelled ideal denoiser of the training points: the softmax
over the points of class y, and with no y over all of them; its guided field is exact).

The measures (:mod:`diffusion_core.evaluation.guidance`): *accuracy* — the share of samples
asked for class k whose nearest point of the noise-free data set is of class k
(:func:`~diffusion_core.evaluation.guidance.nearest_class_2d`; chance is 1/K); *spread* — the
mean pairwise distance of the samples of class k over that of the training points of class k,
averaged over k (1 = as varied as the data; → 0 as guidance pulls a class to a point); and,
in the trade-off curve, the sliced Wasserstein-1 distance between the samples of class k and
the training points of class k (SW1, mean over k; lower is closer).

Nothing here imports gradio or plotly (``pages/toy2d/guide.py`` draws these records).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..evaluation.distances import sliced_wasserstein
from ..evaluation.guidance import mean_pairwise_distance, nearest_class_2d
from ..forward import q_sample
from ..sampling.config import SamplerSettings
from ..sampling.guidance import GuidedModel
from ..sampling.loop import sample_final
from ..schedule.noise_schedule import NoiseSchedule
from .toy2d import DENOISERS, DataSpec, Denoiser, Toy2DSession, field_grid, half_width

__all__ = ["BOX_MARGIN", "GRID_SIZE", "GUIDED_SAMPLER", "MAX_SAMPLES", "TRADEOFF_SCALES",
           "ClassScores", "DataBox", "GuidedField", "GuidedSamples", "GuidedView",
           "TradeoffRow", "check_conditional", "class_scores", "guided_field", "guided_view",
           "sample_guided", "tradeoff_curve"]

# DDIM, 20 steps, trailing spacing (η = 0: deterministic, so the same x_T gives the same
# sample at every s and the picture changes only with s). x̂0 is kept inside the data's box
# (DataBox): the 2D preset's cosine schedule ends at ᾱ_{T−1} ≈ 6e-8, and DDIM's first step from
# T − 1 divides ε̂'s error by √ᾱ (× 4000): measured on moons (2,000 points, the preset's 300
# conditional steps), 99 % of 1,000 samples landed beyond |x| > 2 without a clip; the samplers'
# clip to [−1, 1] (made for images) put 20 % of the 8-Gaussians samples on the box's edge, the
# data box 0.2 %.
GUIDED_SAMPLER = SamplerSettings(sampler="ddim", steps=20, eta=0.0, spacing="trailing")
BOX_MARGIN = 1.1  # DataBox: the box is ±(this × the training points' largest |coordinate|)
GRID_SIZE = 15  # arrows per side of the field's grid (the view draws every one)
TRADEOFF_SCALES: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0)
MAX_SAMPLES = 20_000
SPREAD_POINTS = 1000  # training points per class (a fixed subset) for the spread's reference


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def check_conditional(session: Toy2DSession) -> Toy2DSession:
    """``session`` if it holds a class-conditional model, else ``ValueError`` (train with class
    labels first)."""
    if not isinstance(session, Toy2DSession):
        raise ValueError("no 2D model yet: train one with class labels first")
    if not session.conditional:
        raise ValueError("this model was trained without class labels: classifier-free "
                         "guidance needs a class-conditional model (train with class labels)")
    return session


def _int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}]; got {value!r}")
    return int(value)


def _scale(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"guidance scale s must be a finite number (0 = unconditional, "
                         f"1 = conditional, > 1 guides harder); got {value!r}")
    return float(value)


def _denoiser(session: Toy2DSession, name: Denoiser):
    if name not in DENOISERS:
        raise ValueError(f"denoiser must be one of {', '.join(DENOISERS)}; got {name!r}")
    return session.denoiser(name)


# ---------------------------------------------------------------------------------------------
# x̂0 inside the data's box
# ---------------------------------------------------------------------------------------------


class DataBox:
    """``model`` (an ε-predictor) with x̂0 clamped to the box ``[−bound, bound]²``.

    x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t (DDPM eq. 4 solved for x0: DDIM eq. 12's "predicted x0") is
    clamped and ε̂ re-derived from it (eq. 4 for ε), as the samplers' ``clip_x0`` does with
    [−1, 1] — but with a box around the data, so it only reins in the wild x̂0 of the first,
    nearly pure-noise steps and leaves real points alone (see :data:`GUIDED_SAMPLER`). Called
    like a network: ``x_t [B, 2]``, ``t`` int or int64 ``[B]`` → ``[B, 2]``.
    """

    def __init__(self, model, schedule: NoiseSchedule, bound: float) -> None:
        if not (isinstance(bound, float) and math.isfinite(bound) and bound > 0):
            raise ValueError(f"bound must be a positive finite float; got {bound!r}")
        self.model, self.bound = model, bound
        self._alphas_cumprod = schedule.float64["alphas_cumprod"]

    @classmethod
    def around(cls, model, session: Toy2DSession) -> DataBox:
        """The box ±:data:`BOX_MARGIN` × the largest |coordinate| of the session's points."""
        return cls(model, session.schedule, BOX_MARGIN * float(session.data.abs().max()))

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        eps = self.model(x_t, t)
        if isinstance(t, int):
            t = torch.full((x_t.shape[0],), t, dtype=torch.long)
        ab = self._alphas_cumprod[t.cpu()][:, None]
        a, b = ab.sqrt().to(x_t), (1.0 - ab).sqrt().to(x_t)
        x0 = ((x_t - b * eps) / a).clamp(-self.bound, self.bound)  # eq. (4) for x0, clamped
        return (x_t - a * x0) / b  # eq. (4) for ε


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuidedField:
    """ε_u, ε_c and ε̃ of class ``klass`` at timestep ``t`` on a square grid.

    ``grid [G², 2]`` float64 (row-major over ``axis``: x₁ varies fastest), ``eps_uncond``,
    ``eps_cond``, ``eps`` ``[G², 2]`` float64 (the arrows a view draws are their negatives:
    where a denoiser pushes). ``x_t [n, 2]`` is the session's training points noised with its
    fixed ε (eq. 4), ``x_t_labels [n]`` their classes; ``half`` the half-width of a square view
    holding the data and x_t.
    """

    t: int
    alpha_bar: float
    klass: int
    scale: float
    denoiser: str
    x_t: torch.Tensor
    x_t_labels: torch.Tensor
    half: float
    axis: np.ndarray
    grid: np.ndarray
    eps_uncond: np.ndarray
    eps_cond: np.ndarray
    eps: np.ndarray


@dataclass(frozen=True)
class ClassScores:
    """Fidelity and diversity of guided samples, overall and per class (index k).

    ``accuracy``: the share of samples asked for their class that land nearest to it
    (NaN/inf samples count as misses); ``spread``: the mean over classes of the samples' mean
    pairwise distance over the training points' (NaN where a class has < 2 finite samples);
    ``class_sw1``: SW1 between each class's samples and its training points (None unless
    asked for); ``bad``: NaN/inf samples.
    """

    accuracy: float
    accuracy_per_class: tuple[float, ...]
    spread: float
    spread_per_class: tuple[float, ...]
    class_sw1: float | None = None
    class_sw1_per_class: tuple[float, ...] | None = None
    bad: int = 0


@dataclass(frozen=True)
class GuidedSamples:
    """n guided samples: ``samples [n, 2]`` from ``x_T [n, 2]`` (seeded with ``seed``), sample
    i guided toward class ``labels[i] = i mod K`` with scale ``scale``, by ``settings``."""

    scale: float
    denoiser: str
    settings: SamplerSettings
    seed: int
    x_T: torch.Tensor
    samples: torch.Tensor
    labels: torch.Tensor
    scores: ClassScores


@dataclass(frozen=True)
class GuidedView:
    """What the live view draws: the three fields of one class and the samples of all."""

    field: GuidedField
    samples: GuidedSamples


@dataclass(frozen=True)
class TradeoffRow:
    """One point of the fidelity–diversity curve: the scores of the samples at ``scale``
    (class SW1 included) and the seconds they took."""

    scale: float
    scores: ClassScores
    seconds: float


# ---------------------------------------------------------------------------------------------
# The field
# ---------------------------------------------------------------------------------------------


def guided_field(session: Toy2DSession, *, klass: int, scale: float, t: int,
                 denoiser: Denoiser = "network", grid_size: int = GRID_SIZE) -> GuidedField:
    """ε_u, ε_c (class ``klass``) and ε̃ = ε_u + s(ε_c − ε_u) on a ``grid_size²`` grid at ``t``.

    One batched pass of the network (``GuidedModel.parts``: the grid twice, once with the null
    class), or two calls of the ideal denoiser (its exact guided field). The grid and the
    noised cloud depend only on the data and t, as in the vector field of tab 3.
    """
    session = check_conditional(session)
    klass = _int("class", klass, 0, session.num_classes - 1)
    t = _int("t", t, 0, session.T - 1)
    scale = _scale(scale)
    grid_size = _int("grid_size", grid_size, 2, 101)
    guided = GuidedModel(_denoiser(session, denoiser), klass, scale)
    x_t = q_sample(session.schedule, session.data, t, session.eps)  # eq. (4), fixed ε
    half = half_width(session.data, x_t)
    axis, grid = field_grid(half, grid_size)
    with torch.inference_mode():
        parts = guided.parts(torch.from_numpy(grid).float(), t)
    return GuidedField(
        t=t, alpha_bar=session.schedule.alpha_bar(t), klass=klass, scale=scale,
        denoiser=denoiser, x_t=x_t, x_t_labels=session.labels, half=half, axis=axis, grid=grid,
        eps_uncond=parts.eps_uncond.double().numpy(), eps_cond=parts.eps_cond.double().numpy(),
        eps=parts.eps.double().numpy())


# ---------------------------------------------------------------------------------------------
# Samples and their scores
# ---------------------------------------------------------------------------------------------


def start_noise(n: int, seed: int) -> torch.Tensor:
    """x_T ``[n, 2]`` ~ N(0, I) from a generator seeded with ``seed`` (same at every s)."""
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def sample_labels(n: int, num_classes: int) -> torch.Tensor:
    """``[n]`` int64: sample i is asked for class i mod K (the classes split evenly)."""
    return torch.arange(n) % num_classes


@lru_cache(maxsize=32)
def _class_spreads(spec: DataSpec) -> tuple[float, ...]:
    """Mean pairwise distance of each class's training points (a fixed subset of at most
    :data:`SPREAD_POINTS`): the spread's reference. Keyed by the spec (same spec ⇒ same
    points)."""
    pts, labels = spec.draw_labelled()
    g = torch.Generator().manual_seed(spec.seed + 2)
    out = []
    for k in range(int(labels.max()) + 1):
        cls = pts[labels == k]
        if len(cls) > SPREAD_POINTS:
            cls = cls[torch.randperm(len(cls), generator=g)[:SPREAD_POINTS]]
        out.append(mean_pairwise_distance(cls) if len(cls) >= 2 else math.nan)
    return tuple(out)


def class_scores(session: Toy2DSession, samples: torch.Tensor, labels: torch.Tensor, *,
                 sw1: bool = False, seed: int = 0) -> ClassScores:
    """Accuracy and spread (and with ``sw1`` the class-wise SW1, projections seeded with
    ``seed``) of ``samples [n, 2]`` asked for classes ``labels [n]`` (see :class:`ClassScores`)."""
    session = check_conditional(session)
    k_all = session.num_classes
    finite = torch.isfinite(samples).all(dim=1)
    pred = torch.full((len(samples),), -1, dtype=torch.long)
    if finite.any():  # the class of the nearest noise-free point (20,000 of them: ~60 ms)
        pred[finite] = nearest_class_2d(samples[finite], session.spec.name)
    hit = pred == labels
    reference = _class_spreads(session.spec)
    acc, spread, sw = [], [], []
    for k in range(k_all):
        asked = labels == k
        acc.append(float(hit[asked].double().mean()) if asked.any() else math.nan)
        pts = samples[asked & finite]
        spread.append(mean_pairwise_distance(pts) / reference[k] if len(pts) >= 2
                      else math.nan)
        if sw1:
            sw.append(sliced_wasserstein(pts, session.data[session.labels == k], seed=seed)
                      if len(pts) >= 1 else math.nan)
    spreads = [v for v in spread if math.isfinite(v)]
    sws = [v for v in sw if math.isfinite(v)]
    return ClassScores(
        accuracy=float(hit.double().mean()) if len(hit) else math.nan,
        accuracy_per_class=tuple(acc),
        spread=float(np.mean(spreads)) if spreads else math.nan,
        spread_per_class=tuple(spread),
        class_sw1=(float(np.mean(sws)) if sws else math.nan) if sw1 else None,
        class_sw1_per_class=tuple(sw) if sw1 else None,
        bad=int((~finite).sum()))


def sample_guided(session: Toy2DSession, *, scale: float, n: int = 1000, seed: int = 0,
                  denoiser: Denoiser = "network", settings: SamplerSettings = GUIDED_SAMPLER,
                  sw1: bool = False) -> GuidedSamples:
    """``n`` samples from x_T = :func:`start_noise` ``(n, seed)``, sample i guided toward class
    i mod K with scale ``scale`` (one chain, per-sample labels), x̂0 kept in the data's box
    (:class:`DataBox`), scored by :func:`class_scores`.

    The same ``seed`` gives the same x_T at every s (and, with the default deterministic
    :data:`GUIDED_SAMPLER`, the same chain but for s): at s = 0 the samples are the
    unconditional model's, at s = 1 the conditional one's.
    """
    session = check_conditional(session)
    scale = _scale(scale)
    n = _int("n", n, 1, MAX_SAMPLES)
    seed = _int("seed", seed, 0, 2**63 - 1)
    if not isinstance(settings, SamplerSettings):
        raise ValueError("settings must be a SamplerSettings")
    model = _denoiser(session, denoiser)
    labels = sample_labels(n, session.num_classes)
    x_T = start_noise(n, seed)
    guided = DataBox.around(GuidedModel(model, labels, scale), session)
    with torch.inference_mode():
        samples = sample_final(guided, session.schedule, x_T,
                               generator=torch.Generator().manual_seed(seed + 1),
                               **settings.sample_kwargs(session.T))
    return GuidedSamples(scale=scale, denoiser=denoiser, settings=settings, seed=seed,
                         x_T=x_T, samples=samples, labels=labels,
                         scores=class_scores(session, samples, labels, sw1=sw1, seed=seed))


def guided_view(session: Toy2DSession, *, klass: int, scale: float, t: int,
                denoiser: Denoiser = "network", n: int = 1000, seed: int = 0,
                grid_size: int = GRID_SIZE) -> GuidedView:
    """The live view's record: :func:`guided_field` of class ``klass`` at ``t`` and
    :func:`sample_guided` of every class (n samples, split evenly), both at scale ``scale``."""
    return GuidedView(
        field=guided_field(session, klass=klass, scale=scale, t=t, denoiser=denoiser,
                           grid_size=grid_size),
        samples=sample_guided(session, scale=scale, n=n, seed=seed, denoiser=denoiser))


def tradeoff_curve(session: Toy2DSession, *, scales=TRADEOFF_SCALES, n: int = 1000,
                   seed: int = 0, denoiser: Denoiser = "network",
                   settings: SamplerSettings = GUIDED_SAMPLER) -> Iterator[TradeoffRow]:
    """The fidelity–diversity curve: for each scale in ``scales`` (in the order given), ``n``
    guided samples from the same x_T (:func:`sample_guided`, class SW1 included), yielded as
    one :class:`TradeoffRow` as soon as it is scored. Stop by not iterating further."""
    session = check_conditional(session)
    scales = tuple(_scale(s) for s in scales)
    if not scales:
        raise ValueError("scales is empty: give at least one guidance scale")
    n = _int("n", n, 1, MAX_SAMPLES)
    _denoiser(session, denoiser)
    for s in scales:
        t0 = time.perf_counter()
        run = sample_guided(session, scale=s, n=n, seed=seed, denoiser=denoiser,
                            settings=settings, sw1=True)
        yield TradeoffRow(scale=s, scores=run.scores, seconds=time.perf_counter() - t0)
