"""DPM-Solver++ 2M (Lu et al. 2022, "DPM-Solver++", Algorithm 2): a second-order multistep
solver of the probability-flow ODE, written with the data prediction x̂0.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. Uniform signature: see
:mod:`diffusion_core.sampling.ddpm`; this sampler is ``multistep`` in the registry, so the loop
also passes ``previous`` (the t and x̂0 of the step before).

Code name ↔ paper symbol:

=================  ==================================================================
``alpha_t``        α_t = √ᾱ_t                (DPM-Solver's α_t, not DDPM's α_t = 1 − β_t)
``sigma_t``        σ_t = √(1 − ᾱ_t)
``lam_t``          λ_t = ln(α_t / σ_t), half the log-SNR (``schedule.log_snr / 2``);
                   λ_{−1} = +∞ (σ_{−1} = 0)
``h``              h_i = λ_{t_prev} − λ_t > 0, the step in λ
``r``              r_i = h_{i−1} / h_i, the last step's size over this one's
``pred_x0``        x̂0 = x_θ(x_t, t), the data prediction (from ε̂ by DDIM eq. 12)
``D``              D_i, the linear extrapolation of x̂0 in λ to the step's midpoint
=================  ==================================================================

The exact solution of the diffusion ODE with data prediction (DPM-Solver++):
x_s = (σ_s/σ_t) x_t + σ_s ∫_{λ_t}^{λ_s} e^λ x̂0(λ) dλ. Holding x̂0 constant over the step gives
the first-order update (= DDIM with η = 0); replacing it by D_i, built from this step's and
the previous step's x̂0, gives the second-order multistep update.

Spacing matters at few steps: "leading" and "linspace" visit t = 0, and the ODE step into t = 0
is long in λ (≈ 1 → 4.6 for 10 steps of the linear T = 1000 schedule). x̂0 barely changes
there, so 2M's linear extrapolation of x̂0 overshoots; on Gaussian data it then ends farther
from the exact flow than DDIM at 10–20 steps. "trailing" (the app's default) stops at
t = round(T/n) − 1 and hands the rest to the final x̂0 step; there 2M is 5–100× closer than
DDIM (tests/core/sampling/test_dpm_solver.py).
"""

from __future__ import annotations

import math

import torch

from ..schedule import NoiseSchedule
from .step import PreviousStep, StepOutput, pred_x0_from_eps


def _alpha_sigma_lambda(schedule: NoiseSchedule, t: int) -> tuple[float, float, float]:
    """(α_t, σ_t, λ_t) from the schedule's float64 buffers; t = −1 gives (1, 0, +∞)."""
    if t == -1:
        return 1.0, 0.0, math.inf
    f = schedule.float64
    return (float(f["sqrt_alphas_cumprod"][t]), float(f["sqrt_one_minus_alphas_cumprod"][t]),
            0.5 * float(f["log_snr"][t]))


def step(schedule: NoiseSchedule, x_t: torch.Tensor, t: int, t_prev: int, pred_eps: torch.Tensor,
         *, clip_x0: bool = False, generator: torch.Generator | None = None,
         previous: PreviousStep | None = None) -> StepOutput:
    """One DPM-Solver++ 2M step x_t → x_{t_prev} (deterministic; ``generator`` is unused).

    - First order (no ``previous``: the chain's first step, or a lone call):
      x_prev = (σ_prev/σ_t) x_t − α_prev (e^{−h} − 1) x̂0, exactly DDIM with η = 0.
    - Second order (``previous`` = the t and x̂0 of the step before, t_last > t):
      r = h_last / h with h_last = λ_t − λ_{t_last};
      D = (1 + 1/(2r)) x̂0 − 1/(2r) x̂0_last;  x_prev = (σ_prev/σ_t) x_t − α_prev (e^{−h} − 1) D.
    - Last step (t_prev = −1: σ = 0, λ = +∞, h = ∞): r → 0 and D is undefined, so this step is
      first order, whose limit is x_prev = x̂0 (the same as DDIM's last step). It is a
      denoising step, not an ODE step: its error does not shrink with more steps.

    ``clip_x0`` clamps x̂0 to [−1, 1] (images) before it is used or kept for the next step;
    D, an extrapolation, is not clamped again.
    """
    pred_x0 = pred_x0_from_eps(x_t, pred_eps, schedule.alpha_bar(t))
    if clip_x0:
        pred_x0 = pred_x0.clamp(-1.0, 1.0)
    if t_prev == -1:
        # σ_prev = 0, α_prev = 1, e^{−h} = 0: the first-order update reduces to x̂0
        return StepOutput(prev_sample=pred_x0, pred_x0=pred_x0, std=0.0)
    alpha_t, sigma_t, lam_t = _alpha_sigma_lambda(schedule, t)
    alpha_prev, sigma_prev, lam_prev = _alpha_sigma_lambda(schedule, t_prev)
    h = lam_prev - lam_t
    if previous is None:
        D = pred_x0  # Algorithm 2, first update (DPM-Solver++ 1 = DDIM, η = 0)
    else:
        if previous.t <= t:
            raise ValueError(f"previous.t must be a larger timestep than t = {t}; "
                             f"got {previous.t}")
        _, _, lam_last = _alpha_sigma_lambda(schedule, previous.t)
        r = (lam_t - lam_last) / h  # Algorithm 2: r_i = h_{i−1} / h_i
        # Algorithm 2: D_i = (1 + 1/(2 r_i)) x_θ(x̃_{t_{i−1}}) − 1/(2 r_i) x_θ(x̃_{t_{i−2}})
        D = (1.0 + 0.5 / r) * pred_x0 - (0.5 / r) * previous.pred_x0
    # Algorithm 2: x̃_{t_i} = (σ_{t_i}/σ_{t_{i−1}}) x̃_{t_{i−1}} − α_{t_i} (e^{−h_i} − 1) D_i
    prev = (sigma_prev / sigma_t) * x_t - (alpha_prev * math.expm1(-h)) * D
    return StepOutput(prev_sample=prev, pred_x0=pred_x0, std=0.0)
