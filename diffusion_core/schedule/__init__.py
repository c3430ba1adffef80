"""Noise schedules: the torch-free config, one β function per kind, and `NoiseSchedule`.

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``; ᾱ at t = −1 is 1.
Names load on first use, so ``diffusion_core.schedule.config`` imports without torch.
"""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "BUILTIN_KINDS": ".config",
    "COSINE_MAX_BETA": ".config",
    "MAX_T": ".config",
    "SCHEDULE_KINDS": ".config",
    "TERMINAL_SIGNAL_WARN": ".config",
    "ScheduleConfig": ".config",
    "ScheduleKind": ".config",
    "check_schedule_args": ".config",
    "BETA_FUNCTIONS": ".betas",
    "make_betas": ".betas",
    "NoiseSchedule": ".noise_schedule",
    "ScheduleHealth": ".noise_schedule",
})
