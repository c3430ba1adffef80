"""Reverse-process samplers: DDPM (Ho et al. 2020) and DDIM (Song et al. 2020).

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. A sampler visits a decreasing list of
timesteps built once by :func:`timesteps` and walks ``(t, t_prev)`` pairs whose last
``t_prev`` is −1 (the clean sample). t_prev is never derived from a stride.

Code name ↔ paper symbol:

=================  ==================================================================
``x_t``            x_t, the current sample
``pred_eps``       ε_θ(x_t, t), the network's noise prediction
``pred_x0``        x̂0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t, "predicted x0" (DDIM eq. 12)
``alpha_bar_prev`` ᾱ at the next visited step t_prev (not ``alphas_cumprod_prev[t]``,
                   which is only right on the full chain)
``eta``            η: 0 = deterministic DDIM, 1 = DDPM's posterior variance (DDIM eq. 16)
=================  ==================================================================

Models and schedules stay separate: every sampler takes ``(model, schedule)``; the model is
called as ``model(x_t, t)`` with ``t`` int64 ``[B]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .configs import SPACINGS, SamplerName, Spacing, Variance  # noqa: F401 - re-exported
from .schedules import NoiseSchedule


def timesteps(T: int, num_steps: int, spacing: Spacing = "leading") -> list[int]:
    """The decreasing list of visited timesteps (each in 0..T−1), ``num_steps`` long.

    - ``leading`` (DDIM paper, diffusers default): 0, k, 2k, … with k = T // num_steps;
      it starts below T − 1 unless num_steps = T.
    - ``trailing``: round(T − i·T/num_steps) − 1, so it always starts at T − 1.
    - ``linspace``: num_steps evenly spaced values from T − 1 down to 0, rounded.
    """
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer ≥ 1; got {T!r}")
    if not isinstance(num_steps, int) or not 1 <= num_steps <= T:
        raise ValueError(f"steps must be an integer in [1, T = {T}]; got {num_steps!r}")
    if spacing == "leading":
        ts = [i * (T // num_steps) for i in range(num_steps)]
    elif spacing == "trailing":
        ts = [round(T - i * T / num_steps) - 1 for i in range(num_steps)]
    elif spacing == "linspace":
        ts = [0] if num_steps == 1 else [
            round(i * (T - 1) / (num_steps - 1)) for i in range(num_steps)]
    else:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}; got {spacing!r}")
    ts = sorted(set(ts), reverse=True)
    assert len(ts) == num_steps and 0 <= ts[-1] and ts[0] <= T - 1, ts
    return ts


def time_pairs(ts: list[int]) -> list[tuple[int, int]]:
    """``[(t, t_prev), …]`` for a decreasing list of timesteps; the last t_prev is −1."""
    return list(zip(ts, [*ts[1:], -1], strict=True))


@dataclass(frozen=True)
class StepOutput:
    """One reverse step's result. Shapes ``[B, ...]`` like x_t."""

    prev_sample: torch.Tensor  # x_{t_prev}
    pred_x0: torch.Tensor  # x̂0
    std: float  # standard deviation of the noise added in this step (0 = deterministic)


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _pred_x0(x_t: torch.Tensor, pred_eps: torch.Tensor, ab_t: float) -> torch.Tensor:
    # x̂0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t   (DDIM eq. 12, "predicted x0")
    return (x_t - math.sqrt(1.0 - ab_t) * pred_eps) / math.sqrt(ab_t)


def ddpm_step(schedule: NoiseSchedule, x_t: torch.Tensor, t: int, t_prev: int,
              pred_eps: torch.Tensor, *, variance: Variance = "beta_tilde",
              clip_x0: bool = False, generator: torch.Generator | None = None) -> StepOutput:
    """One ancestral DDPM step x_t → x_{t_prev} (Algorithm 2; eqs. 7 and 11).

    On the full chain (t_prev = t − 1) the coefficients are the schedule's own buffers. On a
    shorter chain the step uses the respaced schedule of improved-diffusion:
    β' = 1 − ᾱ_t / ᾱ_{t_prev}, α' = 1 − β', and β̃' = (1 − ᾱ_{t_prev}) / (1 − ᾱ_t) · β'.
    ``variance`` picks σ² = β̃ (the posterior variance, default) or σ² = β. No noise is added
    on the last step (t_prev = −1).
    """
    ab_t, ab_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    if t_prev == t - 1:
        beta = float(schedule.float64["betas"][t])
        beta_tilde = float(schedule.float64["posterior_variance"][t])
    else:
        beta = 1.0 - ab_t / ab_prev
        beta_tilde = (1.0 - ab_prev) / (1.0 - ab_t) * beta
    alpha = 1.0 - beta
    pred_x0 = _pred_x0(x_t, pred_eps, ab_t)
    if clip_x0:
        pred_x0 = pred_x0.clamp(-1.0, 1.0)
        # μ̃(x_t, x̂0) = β √ᾱ_prev/(1−ᾱ_t) x̂0 + (1−ᾱ_prev) √α/(1−ᾱ_t) x_t   (eq. 7)
        mean = (beta * math.sqrt(ab_prev) / (1.0 - ab_t) * pred_x0
                + (1.0 - ab_prev) * math.sqrt(alpha) / (1.0 - ab_t) * x_t)
    else:
        # μ_θ = (x_t − β / √(1 − ᾱ_t) · ε̂) / √α   (eq. 11; equals eq. 7 with x̂0)
        mean = (x_t - beta / math.sqrt(1.0 - ab_t) * pred_eps) / math.sqrt(alpha)
    if t_prev == -1:
        return StepOutput(prev_sample=mean, pred_x0=pred_x0, std=0.0)
    std = math.sqrt(beta_tilde if variance == "beta_tilde" else beta)
    noise = _randn_like(x_t, generator) if std > 0 else 0.0
    return StepOutput(prev_sample=mean + std * noise, pred_x0=pred_x0, std=std)


def ddim_step(schedule: NoiseSchedule, x_t: torch.Tensor, t: int, t_prev: int,
              pred_eps: torch.Tensor, *, eta: float = 0.0, clip_x0: bool = False,
              generator: torch.Generator | None = None) -> StepOutput:
    """One DDIM step x_t → x_{t_prev} on any visited subsequence (DDIM eq. 12).

    x_{t_prev} = √ᾱ_prev · x̂0 + √(1 − ᾱ_prev − σ²) · ε̂ + σ z,
    σ = η · √((1 − ᾱ_prev)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_prev)    (DDIM eq. 16).
    η = 1 on the full chain gives σ² = β̃_t, DDPM's posterior variance.
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1]; got {eta!r}")
    ab_t, ab_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    pred_x0 = _pred_x0(x_t, pred_eps, ab_t)
    if clip_x0:
        pred_x0 = pred_x0.clamp(-1.0, 1.0)
        # re-derive ε̂ from the clipped x̂0 so the two stay consistent (eq. 4 for ε)
        pred_eps = (x_t - math.sqrt(ab_t) * pred_x0) / math.sqrt(1.0 - ab_t)
    var = eta**2 * (1.0 - ab_prev) / (1.0 - ab_t) * (1.0 - ab_t / ab_prev)  # σ², eq. (16)
    direction = math.sqrt(max(1.0 - ab_prev - var, 0.0)) * pred_eps  # "direction pointing to x_t"
    prev = math.sqrt(ab_prev) * pred_x0 + direction  # eq. (12)
    std = math.sqrt(var)
    if std > 0:
        prev = prev + std * _randn_like(x_t, generator)
    return StepOutput(prev_sample=prev, pred_x0=pred_x0, std=std)


@dataclass(frozen=True)
class SampleStep:
    """What the streaming sampler yields after each reverse step.

    ``x_t`` is the input at timestep ``t``; ``x_prev`` the output at ``t_prev`` (−1 on the
    last step: the final sample). Tensors ``[B, ...]``; ``index`` counts 0..num_steps−1.
    """

    index: int
    num_steps: int
    t: int
    t_prev: int
    x_t: torch.Tensor
    x_prev: torch.Tensor
    pred_x0: torch.Tensor
    pred_eps: torch.Tensor


def sample(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    sampler: SamplerName = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    spacing: Spacing = "leading",
    variance: Variance = "beta_tilde",
    clip_x0: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[SampleStep]:
    """Run the reverse chain from x_T, yielding a :class:`SampleStep` after every step.

    Args:
        model: ε-predictor, ``model(x_t [B, ...], t int64 [B]) -> [B, ...]``.
        x_T: ``[B, ...]`` starting noise (usually ``torch.randn``).
        sampler: ``"ddpm"`` (ancestral, eq. 11; respaced when steps < T) or ``"ddim"``.
        steps: number of visited timesteps, 1..T (None = T, the full chain).
        eta: DDIM's η ∈ [0, 1] (ignored by DDPM).
        spacing: how the visited timesteps are chosen (see :func:`timesteps`).
        variance: DDPM's σ² = β̃ (``"beta_tilde"``) or β (``"beta"``).
        clip_x0: clamp x̂0 to [−1, 1] (for images; off for 2D points).
        generator: all randomness comes from it: fixed generator ⇒ identical run.

    The loop stops early if the consumer stops iterating (the UI's Stop button).
    """
    if not isinstance(x_T, torch.Tensor) or x_T.ndim < 2 or not x_T.is_floating_point():
        raise ValueError("x_T must be a float tensor of shape [B, ...]")
    if not torch.isfinite(x_T).all():
        raise ValueError("x_T contains NaN or inf")
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"sampler must be 'ddpm' or 'ddim'; got {sampler!r}")
    if variance not in ("beta_tilde", "beta"):
        raise ValueError(f"variance must be 'beta_tilde' or 'beta'; got {variance!r}")
    if not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1]; got {eta!r}")
    ts = timesteps(schedule.T, schedule.T if steps is None else steps, spacing)
    pairs = time_pairs(ts)
    x = x_T
    batch = x.shape[0]
    for i, (t, t_prev) in enumerate(pairs):
        t_batch = torch.full((batch,), t, dtype=torch.long, device=x.device)
        with torch.inference_mode():
            pred_eps = model(x, t_batch)
            if sampler == "ddpm":
                out = ddpm_step(schedule, x, t, t_prev, pred_eps, variance=variance,
                                clip_x0=clip_x0, generator=generator)
            else:
                out = ddim_step(schedule, x, t, t_prev, pred_eps, eta=float(eta),
                                clip_x0=clip_x0, generator=generator)
        yield SampleStep(index=i, num_steps=len(pairs), t=t, t_prev=t_prev, x_t=x,
                         x_prev=out.prev_sample, pred_x0=out.pred_x0, pred_eps=pred_eps)
        x = out.prev_sample


def sample_final(model, schedule: NoiseSchedule, x_T: torch.Tensor, **kwargs) -> torch.Tensor:
    """Run :func:`sample` to the end and return the final sample ``[B, ...]``."""
    x = x_T
    for step in sample(model, schedule, x_T, **kwargs):
        x = step.x_prev
    return x
