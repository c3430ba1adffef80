"""DDPM's ancestral step (Ho et al. 2020, Algorithm 2), respaced for shorter chains.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. Every step module exposes ``step`` with the
uniform signature ``step(schedule, x_t, t, t_prev, pred_eps, *, clip_x0=False, generator=None,
**options) -> StepOutput``; ``options`` are the ones its registry entry lists
(:data:`diffusion_core.sampling.config.SAMPLERS`). A step is stateless: a multistep method
(registry ``multistep=True``, e.g. DPM-Solver++ 2M) also takes ``previous=None`` — a
:class:`~diffusion_core.sampling.step.PreviousStep` with the t and x̂0 of the step before,
which the loop passes — and runs as a first-order step without it.
"""

from __future__ import annotations

import math

import torch

from ..schedule import NoiseSchedule
from .config import Variance
from .step import StepOutput, pred_x0_from_eps, randn_like


def step(schedule: NoiseSchedule, x_t: torch.Tensor, t: int, t_prev: int, pred_eps: torch.Tensor,
         *, clip_x0: bool = False, generator: torch.Generator | None = None,
         variance: Variance = "beta_tilde") -> StepOutput:
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
    pred_x0 = pred_x0_from_eps(x_t, pred_eps, ab_t)
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
    noise = randn_like(x_t, generator) if std > 0 else 0.0
    return StepOutput(prev_sample=mean + std * noise, pred_x0=pred_x0, std=std)
