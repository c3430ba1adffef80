"""The exact denoiser for Gaussian data x0 ~ N(μ, s²I): every quantity in closed form.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1 (the clean data).

With x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε (DDPM eq. 4) and x0 ~ N(μ, s²I) in d dimensions, x_t is
Gaussian too, and so is x0 given x_t:

=====================  ========================================================================
``marginal_var(t)``    v_t = ᾱ_t s² + (1 − ᾱ_t):   x_t ~ N(√ᾱ_t μ, v_t I)
``__call__``           E[ε | x_t] = √(1 − ᾱ_t) (x_t − √ᾱ_t μ) / v_t     (the ε a network learns)
``pred_x0``            E[x0 | x_t] = μ + √ᾱ_t s² (x_t − √ᾱ_t μ) / v_t
``x0_var(t)``          Var(x0 | x_t) = s² (1 − ᾱ_t) / v_t   (per dimension, the same for all x_t)
``flow``               the probability-flow ODE's exact map x_t → x_u:
                       x_u = √ᾱ_u μ + √(v_u / v_t) (x_t − √ᾱ_t μ)
``nll_nats(d)``        the data's exact expected NLL, the entropy d/2 · ln(2πe s²)
=====================  ========================================================================

Why the flow is that map: the probability-flow ODE (Song et al. 2021, eq. 13) moves every
marginal onto the next one deterministically; for isotropic Gaussians the marginals differ only
by mean and scale, and the flow of a linear (affine) score field is affine, so it keeps each
point's standardised coordinate z = (x_t − √ᾱ_t μ)/√v_t. Deterministic samplers (DDIM with
η = 0, DPM-Solver) approximate this map; with this oracle their error can be measured exactly.
"""

from __future__ import annotations

import math

import torch

from ..schedule import NoiseSchedule


class GaussianOracle:
    """The exact ε-predictor for data N(μ, s²I) under ``schedule``; called like a network.

    Args:
        schedule: the noise schedule (its float64 ᾱ are used).
        mean: μ, a float or a tensor broadcastable to one example's shape (``[D]``,
            ``[C, H, W]``).
        std: s > 0.

    Calls: ``oracle(x_t [B, ...], t int64 [B]) → ε [B, ...]``, in x_t's dtype (computed in
    float64).
    """

    def __init__(self, schedule: NoiseSchedule, mean: float | torch.Tensor = 0.0,
                 std: float = 1.0) -> None:
        if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
            raise ValueError(f"std must be a positive number; got {std!r}")
        self.schedule = schedule
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.std = float(std)

    # ---- per-timestep scalars (t = −1 allowed: the clean data) --------------------------

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t (ᾱ_{−1} = 1)."""
        return self.schedule.alpha_bar(t)

    def marginal_var(self, t: int) -> float:
        """v_t = ᾱ_t s² + 1 − ᾱ_t, the per-dimension variance of x_t."""
        ab = self.alpha_bar(t)
        return ab * self.std**2 + 1.0 - ab

    def x0_var(self, t: int) -> float:
        """Var(x0 | x_t) = s²(1 − ᾱ_t)/v_t per dimension (0 at t = −1)."""
        ab = self.alpha_bar(t)
        return self.std**2 * (1.0 - ab) / self.marginal_var(t)

    # ---- per-example predictions ---------------------------------------------------------

    def _per_example(self, t: torch.Tensor | int, x: torch.Tensor, fn) -> torch.Tensor:
        """``fn(ᾱ_t)`` per example as float64 ``[B, 1, …, 1]``."""
        if isinstance(t, int):
            t = torch.full((x.shape[0],), t, dtype=torch.long)
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape [B] = [{x.shape[0]}]; got {list(t.shape)}")
        t = t.to(torch.long).cpu()
        if len(t) and (t.min() < -1 or t.max() >= self.schedule.T):
            raise ValueError(f"t must be in [-1, {self.schedule.T - 1}]")
        # ᾱ with ᾱ_{−1} = 1 in front, so index t + 1 (float64, the schedule's own values)
        table = torch.cat([torch.ones(1, dtype=torch.float64),
                           self.schedule.float64["alphas_cumprod"]])
        ab = table[t + 1]
        return fn(ab).reshape(-1, *([1] * (x.ndim - 1)))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """E[ε | x_t] ``[B, ...]``."""
        x = x_t.to(torch.float64)
        ab = self._per_example(t, x, lambda a: a)
        v = ab * self.std**2 + 1.0 - ab
        eps = (1.0 - ab).sqrt() * (x - ab.sqrt() * self.mean) / v
        return eps.to(x_t.dtype)

    def pred_x0(self, x_t: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """E[x0 | x_t] ``[B, ...]``."""
        x = x_t.to(torch.float64)
        ab = self._per_example(t, x, lambda a: a)
        v = ab * self.std**2 + 1.0 - ab
        return (self.mean + ab.sqrt() * self.std**2 * (x - ab.sqrt() * self.mean) / v
                ).to(x_t.dtype)

    def flow(self, x_t: torch.Tensor, t: int, u: int) -> torch.Tensor:
        """The exact probability-flow map from timestep t to timestep u (either may be −1)."""
        ab_t, ab_u = self.alpha_bar(t), self.alpha_bar(u)
        x = x_t.to(torch.float64)
        z = (x - math.sqrt(ab_t) * self.mean) / math.sqrt(self.marginal_var(t))
        return (math.sqrt(ab_u) * self.mean + math.sqrt(self.marginal_var(u)) * z
                ).to(x_t.dtype)

    # ---- the data ------------------------------------------------------------------------

    def sample_data(self, n: int, shape: tuple[int, ...], *,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of x0 ``[n, *shape]`` (float32)."""
        z = torch.randn((n, *shape), generator=generator, dtype=torch.float64)
        return (self.mean + self.std * z).to(torch.float32)

    def nll_nats(self, d: int) -> float:
        """The data's expected negative log-likelihood per example, d/2 · ln(2πe s²) nats."""
        return 0.5 * d * math.log(2.0 * math.pi * math.e * self.std**2)
