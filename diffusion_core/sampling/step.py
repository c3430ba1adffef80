"""What one reverse step returns, and the helpers every step function shares.

Code name ↔ paper symbol:

=================  ==================================================================
``x_t``            x_t, the current sample
``pred_eps``       ε_θ(x_t, t), the network's noise prediction
``pred_x0``        x̂0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t, "predicted x0" (DDIM eq. 12)
``alpha_bar_prev`` ᾱ at the next visited step t_prev (not ``alphas_cumprod_prev[t]``,
                   which is only right on the full chain)
``eta``            η: 0 = deterministic DDIM, 1 = DDPM's posterior variance (DDIM eq. 16)
``previous``       what a multistep method keeps of the step before: its t and x̂0
=================  ==================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StepOutput:
    """One reverse step's result. Shapes ``[B, ...]`` like x_t."""

    prev_sample: torch.Tensor  # x_{t_prev}
    pred_x0: torch.Tensor  # x̂0
    std: float  # standard deviation of the noise added in this step (0 = deterministic)


@dataclass(frozen=True)
class PreviousStep:
    """What the loop hands a multistep sampler's next step (registry ``multistep=True``).

    ``t`` is the timestep the previous step started from (larger than the current t);
    ``pred_x0`` ``[B, ...]`` the x̂0 it predicted there (clipped when ``clip_x0``).
    """

    t: int
    pred_x0: torch.Tensor


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def pred_x0_from_eps(x_t: torch.Tensor, pred_eps: torch.Tensor, ab_t: float) -> torch.Tensor:
    # x̂0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t   (DDIM eq. 12, "predicted x0")
    return (x_t - math.sqrt(1.0 - ab_t) * pred_eps) / math.sqrt(ab_t)


