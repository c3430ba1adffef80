"""β schedules: one function per kind, and :func:`make_betas` that picks one.

Index convention: t ∈ {0, …, T−1}; u = t / (T − 1) runs from 0 at t = 0 to 1 at t = T − 1.
Every function returns float64 ``[T]`` (the :class:`~diffusion_core.schedule.NoiseSchedule`
derives everything else from it, in float64). To add a kind: write its function here, add it
to :data:`BETA_FUNCTIONS`, and add its name and argument checks to
:mod:`diffusion_core.schedule.config` (torch-free, so the UI can validate without torch).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .config import COSINE_MAX_BETA, check_schedule_args


def _u(T: int) -> torch.Tensor:
    return torch.linspace(0, 1, T, dtype=torch.float64)


def linear_betas(T: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """β_t in equal steps from β_start to β_end (DDPM: 1e-4..0.02, T = 1000)."""
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def quadratic_betas(T: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """√β_t in equal steps from √β_start to √β_end: β_t = (√β_start + u·(√β_end − √β_start))²."""
    return (math.sqrt(beta_start) + _u(T) * (math.sqrt(beta_end) - math.sqrt(beta_start))) ** 2


def sigmoid_betas(T: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """β_t = β_start + (β_end − β_start) · sigmoid(linspace(−6, 6, T))."""
    s = torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64))
    return beta_start + (beta_end - beta_start) * s


def polynomial_betas(T: int, beta_start: float, beta_end: float, power: float) -> torch.Tensor:
    """β_t = β_start + (β_end − β_start) · u^power (power > 1 keeps early β small)."""
    return beta_start + (beta_end - beta_start) * _u(T) ** power


def cosine_betas(T: int, cosine_s: float) -> torch.Tensor:
    """Nichol & Dhariwal 2021 eq. 17: ᾱ_t = f((t+1)/T)/f(0), so
    β_t = min(1 − f((t+1)/T)/f(t/T), 0.999), f(u) = cos²((u + s)/(1 + s) · π/2)."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
    return torch.clamp(1 - f[1:] / f[:-1], max=COSINE_MAX_BETA)


# Kinds whose β range is (β_start, β_end) — scaled by 1000/T when asked.
BETA_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "linear": linear_betas,
    "quadratic": quadratic_betas,
    "sigmoid": sigmoid_betas,
    "polynomial": polynomial_betas,
}


def make_betas(
    kind: str,
    T: int,
    *,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    scale_to_T: bool = False,
    cosine_s: float = 0.008,
    power: float = 2.0,
    custom_betas: tuple[float, ...] | list[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """The β_t for t = 0..T−1, as a float64 tensor of shape ``[T]``.

    Definitions (u = t / (T − 1) runs from 0 at t = 0 to 1 at t = T − 1):

    - ``linear``: β_t goes in equal steps from β_start to β_end (``torch.linspace``).
      DDPM used 1e-4..0.02 with T = 1000.
    - ``cosine`` (Nichol & Dhariwal 2021, eq. 17): choose ᾱ directly,
      f(u) = cos²((u + s)/(1 + s) · π/2), ᾱ_t = f((t+1)/T) / f(0), so
      β_t = min(1 − f((t+1)/T) / f(t/T), 0.999). β_start/β_end are not used.
    - ``quadratic``: √β_t goes in equal steps from √β_start to √β_end, i.e.
      β_t = (√β_start + u·(√β_end − √β_start))². It ends at β_end (it does add noise).
    - ``sigmoid``: β_t = β_start + (β_end − β_start) · sigmoid(linspace(−6, 6, T)).
    - ``polynomial``: β_t = β_start + (β_end − β_start) · u^power. power = 1 is linear;
      power > 1 keeps β small for early t, so fine detail survives longer.
    - ``custom``: the given array (length T, every value in (0, 1)).

    ``scale_to_T`` multiplies β_start and β_end by 1000 / T (improved-diffusion), so a short
    chain adds about as much total noise as DDPM's T = 1000 chain.

    Raises:
        ValueError: naming the parameter and its allowed range.
    """
    check_schedule_args(kind, T, beta_start=beta_start, beta_end=beta_end, scale_to_T=scale_to_T,
                        cosine_s=cosine_s, power=power, custom_betas=custom_betas)
    if kind == "custom":
        return torch.as_tensor(custom_betas, dtype=torch.float64).flatten()
    if kind == "cosine":
        return cosine_betas(T, cosine_s)
    if scale_to_T:
        scale = 1000.0 / T
        beta_start, beta_end = beta_start * scale, beta_end * scale
    if kind == "polynomial":
        return polynomial_betas(T, beta_start, beta_end, power)
    return BETA_FUNCTIONS[kind](T, beta_start, beta_end)
