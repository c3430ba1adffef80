"""DDIM's step (Song et al. 2020, eqs. 12 and 16) on any visited subsequence.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. Uniform signature: see
:mod:`diffusion_core.sampling.ddpm`.
"""

from __future__ import annotations

import math

import torch

from ..schedule import NoiseSchedule
from .step import StepOutput, pred_x0_from_eps, randn_like


def step(schedule: NoiseSchedule, x_t: torch.Tensor, t: int, t_prev: int, pred_eps: torch.Tensor,
         *, clip_x0: bool = False, generator: torch.Generator | None = None,
         eta: float = 0.0) -> StepOutput:
    """One DDIM step x_t → x_{t_prev} on any visited subsequence (DDIM eq. 12).

    x_{t_prev} = √ᾱ_prev · x̂0 + √(1 − ᾱ_prev − σ²) · ε̂ + σ z,
    σ = η · √((1 − ᾱ_prev)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_prev)    (DDIM eq. 16).
    η = 1 on the full chain gives σ² = β̃_t, DDPM's posterior variance.
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1]; got {eta!r}")
    ab_t, ab_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    pred_x0 = pred_x0_from_eps(x_t, pred_eps, ab_t)
    if clip_x0:
        pred_x0 = pred_x0.clamp(-1.0, 1.0)
        # re-derive ε̂ from the clipped x̂0 so the two stay consistent (eq. 4 for ε)
        pred_eps = (x_t - math.sqrt(ab_t) * pred_x0) / math.sqrt(1.0 - ab_t)
    var = eta**2 * (1.0 - ab_prev) / (1.0 - ab_t) * (1.0 - ab_t / ab_prev)  # σ², eq. (16)
    direction = math.sqrt(max(1.0 - ab_prev - var, 0.0)) * pred_eps  # "direction pointing to x_t"
    prev = math.sqrt(ab_prev) * pred_x0 + direction  # eq. (12)
    std = math.sqrt(var)
    if std > 0:
        prev = prev + std * randn_like(x_t, generator)
    return StepOutput(prev_sample=prev, pred_x0=pred_x0, std=std)
