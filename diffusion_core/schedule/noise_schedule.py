"""The `NoiseSchedule` object that owns every derived buffer of a β schedule.

Index convention (used everywhere in Diffusion Lab): t ∈ {0, …, T−1}.
``alphas_cumprod[t] = ∏_{s≤t} (1 − β_s)``, so t = 0 is already one noising step and
ᾱ at t = −1 is 1 (the clean data). This is the convention of diffusers; the DDPM paper
numbers steps 1..T, so paper step k is our t = k − 1.

Code name ↔ paper symbol (Ho et al. 2020, "DDPM"; Nichol & Dhariwal 2021, "iDDPM"):

==============================  ======================================================
``betas[t]``                    β_t, the variance added at step t            (eq. 2)
``alphas[t]``                   α_t = 1 − β_t
``alphas_cumprod[t]``           ᾱ_t = ∏_{s≤t} α_s                             (eq. 4)
``alphas_cumprod_prev[t]``      ᾱ_{t−1}, with ᾱ_{−1} = 1
``sqrt_alphas_cumprod``         √ᾱ_t, the signal scale of x_t
``sqrt_one_minus_alphas_cumprod``  √(1 − ᾱ_t), the noise scale of x_t
``posterior_variance[t]``       β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t         (eq. 7)
``posterior_log_variance_clipped``  log β̃_t with β̃_0 (= 0) replaced by β̃_1
``posterior_mean_coef1/2``      the x0 and x_t weights of μ̃_t(x_t, x0)       (eq. 7)
``snr[t]``, ``log_snr[t]``      ᾱ_t / (1 − ᾱ_t) and its natural log
==============================  ======================================================

Everything is computed once in float64 and cast to float32 once; nothing else in the code
base recomputes these quantities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import TERMINAL_SIGNAL_WARN, ScheduleConfig


@dataclass(frozen=True)
class ScheduleHealth:
    """How close the chain's last step is to pure noise N(0, I)."""

    alpha_bar_last: float  # ᾱ_{T−1}
    signal_last: float  # √ᾱ_{T−1}: weight of x0 left in x_{T−1}
    snr_last: float  # ᾱ_{T−1} / (1 − ᾱ_{T−1})
    warning: str | None  # set when √ᾱ_{T−1} > TERMINAL_SIGNAL_WARN


class NoiseSchedule:
    """A β schedule and every quantity derived from it, for t = 0..T−1.

    Built once from a :class:`ScheduleConfig`: computed in float64, stored as float32 CPU
    tensors of shape ``[T]`` (the float64 originals stay available as ``.float64``).
    Instances are immutable: attributes cannot be reassigned and no method changes them.
    ``schedule.to(device)`` returns a copy on another device.
    """

    __slots__ = (
        "config", "T", "float64", "betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev",
        "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "sqrt_recip_alphas",
        "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
        "snr", "log_snr", "_frozen",
    )

    def __init__(self, config: ScheduleConfig | None = None, **kwargs) -> None:
        if config is None:
            config = ScheduleConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a ScheduleConfig or keyword fields, not both")
        b = config.betas()  # float64 [T]
        a = 1.0 - b
        ac = torch.cumprod(a, dim=0)  # ᾱ_t, eq. (4)
        ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])  # ᾱ_{t−1}, ᾱ_{−1}=1
        one_minus = 1.0 - ac
        post_var = b * (1.0 - ac_prev) / one_minus  # β̃_t, DDPM eq. (7); β̃_0 = 0
        # log β̃ clipped: β̃_0 = 0, so reuse β̃_1 there (improved-diffusion).
        first = post_var[1] if len(b) > 1 else b[0]
        post_log_var = torch.log(torch.cat([first.reshape(1), post_var[1:]]))
        values64 = {
            "betas": b,
            "alphas": a,
            "alphas_cumprod": ac,
            "alphas_cumprod_prev": ac_prev,
            "sqrt_alphas_cumprod": ac.sqrt(),
            "sqrt_one_minus_alphas_cumprod": one_minus.sqrt(),
            "sqrt_recip_alphas": a.rsqrt(),
            "sqrt_recip_alphas_cumprod": ac.rsqrt(),
            "sqrt_recipm1_alphas_cumprod": (1.0 / ac - 1.0).sqrt(),
            "posterior_variance": post_var,
            "posterior_log_variance_clipped": post_log_var,
            "posterior_mean_coef1": b * ac_prev.sqrt() / one_minus,  # eq. (7), x0 weight
            "posterior_mean_coef2": (1.0 - ac_prev) * a.sqrt() / one_minus,  # eq. (7), x_t
            "snr": ac / one_minus,
            "log_snr": torch.log(ac) - torch.log(one_minus),
        }
        self._set("config", config)
        self._set("T", len(b))
        self._set("float64", values64)
        for name, value in values64.items():
            self._set(name, value.to(torch.float32))
        self._set("_frozen", True)

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("NoiseSchedule is immutable; build a new one from a ScheduleConfig")

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.config.kind!r}, T={self.T})"

    def __reduce__(self):
        """Pickle as the config and device (every buffer is a function of the config), so a
        schedule travels to a worker process and back (``workflows.remote``) unchanged."""
        return _rebuild, (self.config, str(self.betas.device))

    def to(self, device: torch.device | str) -> NoiseSchedule:
        """A copy whose float32 buffers live on ``device``."""
        new = object.__new__(NoiseSchedule)
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, torch.Tensor):
                value = value.to(device)
            object.__setattr__(new, name, value)
        return new

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t as a Python float (float64 precision), with ᾱ_{−1} = 1."""
        if not isinstance(t, int) or not -1 <= t < self.T:
            raise ValueError(f"t must be an integer in [-1, {self.T - 1}]; got {t!r}")
        return 1.0 if t == -1 else float(self.float64["alphas_cumprod"][t])

    def health(self) -> ScheduleHealth:
        """Terminal statistics: does x_{T−1} come out near N(0, I)?"""
        ab = float(self.float64["alphas_cumprod"][-1])
        signal = math.sqrt(ab)
        snr = ab / (1.0 - ab)
        warning = None
        if signal > TERMINAL_SIGNAL_WARN:
            warning = (
                f"The chain does not end near pure noise: √ᾱ_(T−1) = {signal:.3f} "
                f"(> {TERMINAL_SIGNAL_WARN}), so x_(T−1) still keeps {100 * signal:.1f}% of x0 "
                "and sampling from N(0, I) starts off the training distribution. "
                "Increase T or β_end, or use the 1000/T scaling or the cosine schedule."
            )
        return ScheduleHealth(alpha_bar_last=ab, signal_last=signal, snr_last=snr, warning=warning)


def _rebuild(config: ScheduleConfig, device: str) -> NoiseSchedule:
    """:meth:`NoiseSchedule.__reduce__`'s inverse: the schedule of ``config`` on ``device``."""
    schedule = NoiseSchedule(config)
    return schedule if device == "cpu" else schedule.to(device)
