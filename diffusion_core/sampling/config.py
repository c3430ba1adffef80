"""Sampler names, options and the default settings record: torch-free data.

Index convention: t ∈ {0, …, T−1}; ᾱ at t = −1 is 1. Which options each sampler uses is stated
once, in :data:`SAMPLERS`; :func:`diffusion_core.sampling.defaults.resolve_sampler_settings` is
the one rule that turns a checkpoint's recorded settings and a user's choices into settings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Spacing = Literal["leading", "trailing", "linspace"]
SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")
Variance = Literal["beta_tilde", "beta"]
VARIANCES: tuple[str, ...] = ("beta_tilde", "beta")
SamplerName = Literal["ddpm", "ddim", "dpmpp_2m"]

DDIM_DEFAULT_STEPS = 25  # a DDIM chain of 25 steps is the image presets' default

# Classifier-free guidance (sampling/guidance.py): ε̃ = ε_u + s·(ε_c − ε_u); s = 0 is the
# unconditional model, s = 1 the conditional one, s > 1 guides harder (diffusers'
# guidance_scale). GUIDANCE_DEFAULT is the s a class-conditional checkpoint records
# (training["guidance_default"] in its config.json, written by the train CLI) and the sample CLI
# uses when none is given. 2, not the 3 of many image generators: on digits (digits8, 2000 steps
# of the DIGITS recipe, 50 samples per digit) s = 1.5 / 2 / 3 gave the requested digit in
# 99.6 / 99.8 / 100 % of samples, but a class-wise Fréchet distance of 2.33 / 2.86 / 3.4–3.8
# against 3.10 for σ = 0.5 blurred real digits: past s ≈ 2 the samples get more uniform than the
# class (diversity, mean pairwise distance / the class's: 0.87 / 0.83 / 0.80). The shipped model
# is measured at s = 0, 1, 2, 3, 5 in assets/models/digits_cond/MODEL_CARD.md. GUIDANCE_MAX is
# the top of the range a UI offers.
GUIDANCE_DEFAULT = 2.0
GUIDANCE_MAX = 10.0


@dataclass(frozen=True)
class SamplerInfo:
    """What the UI and the CLI need to know about one sampler (no torch).

    Attributes:
        name: registry key (``"ddpm"``).
        label: how the UI names it.
        module: the module (relative to :mod:`diffusion_core.sampling`) whose ``step`` function
            does one reverse step, with the uniform signature of
            :func:`diffusion_core.sampling.ddpm.step`.
        options: the option fields of :class:`SamplerSettings` it uses; others must keep
            their neutral value (:data:`NEUTRAL_OPTIONS`) or ``sample`` refuses them.
        full_chain_default: with no step count given it walks all T steps (else
            :data:`DDIM_DEFAULT_STEPS`, at most T).
        multistep: its ``step`` also takes ``previous``, a
            :class:`~diffusion_core.sampling.step.PreviousStep` (the last step's t and x̂0;
            ``None`` on the first step), which :func:`~diffusion_core.sampling.sample` keeps
            and passes. Single-step samplers are never given it.
    """

    name: str
    label: str
    module: str
    options: tuple[str, ...]
    full_chain_default: bool
    multistep: bool = False

    def default_steps(self, T: int) -> int:
        """The number of visited timesteps when none is given."""
        return T if self.full_chain_default else min(DDIM_DEFAULT_STEPS, T)


# The registry. To add a sampler: write a module with a ``step`` function of the uniform
# signature (see ddpm.py), add its entry here, and (if it has new options) a field to
# SamplerSettings with a neutral value in NEUTRAL_OPTIONS. A multistep method (it needs the
# previous step's x̂0 and t) says ``multistep=True``: the loop then also passes
# ``previous=PreviousStep(t, pred_x0)`` of the step before (None on the first step); the
# step function itself stays stateless.
SAMPLERS: dict[str, SamplerInfo] = {
    s.name: s
    for s in (
        SamplerInfo("ddpm", "DDPM", ".ddpm", ("variance",), full_chain_default=True),
        SamplerInfo("ddim", "DDIM", ".ddim", ("eta",), full_chain_default=False),
        SamplerInfo("dpmpp_2m", "DPM-Solver++ 2M", ".dpm_solver", (), full_chain_default=False,
                    multistep=True),
    )
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)

# Per-sampler options and the value that means "not used".
NEUTRAL_OPTIONS: dict[str, Any] = {"eta": 0.0, "variance": "beta_tilde"}


def sampler_info(name: str) -> SamplerInfo:
    """The registry entry for ``name``; ``ValueError`` listing the known samplers otherwise."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLER_NAMES)}; got {name!r}")
    return SAMPLERS[name]


def check_options(sampler: str, options: dict[str, Any]) -> None:
    """Refuse an option the sampler does not use, unless it has its neutral value."""
    info = sampler_info(sampler)
    for key, value in options.items():
        if key not in NEUTRAL_OPTIONS:
            raise ValueError(f"unknown sampler option {key!r}")
        if key not in info.options and value != NEUTRAL_OPTIONS[key]:
            users = [s.label for s in SAMPLERS.values() if key in s.options]
            raise ValueError(f"{key} = {value!r} does not apply to {info.label} "
                             f"(it is used by {', '.join(users)})")


@dataclass(frozen=True)
class SamplerSettings:
    """Reverse-process settings (see :func:`diffusion_core.sampling.sample`); validated.

    ``steps = None`` means the sampler's default (:meth:`SamplerInfo.default_steps`).
    """

    sampler: str = "ddim"
    steps: int | None = DDIM_DEFAULT_STEPS
    eta: float = 0.0
    spacing: str = "trailing"
    variance: str = "beta_tilde"
    clip_x0: bool = False

    def __post_init__(self) -> None:
        sampler_info(self.sampler)
        if self.steps is not None and (isinstance(self.steps, bool)
                                       or not isinstance(self.steps, int) or self.steps < 1):
            raise ValueError(f"steps must be None or an integer ≥ 1; got {self.steps!r}")
        eta = self.eta
        if (isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta)
                or not 0.0 <= eta <= 1.0):
            raise ValueError(f"eta must be in [0, 1]; got {eta!r}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}; got {self.spacing!r}")
        if self.variance not in VARIANCES:
            raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; "
                             f"got {self.variance!r}")
        if not isinstance(self.clip_x0, bool):
            raise ValueError(f"clip_x0 must be True or False; got {self.clip_x0!r}")

    @property
    def info(self) -> SamplerInfo:
        return SAMPLERS[self.sampler]

    def kwargs(self) -> dict:
        """Every field (what a checkpoint records as ``sampler_defaults``)."""
        return asdict(self)

    def sample_kwargs(self, T: int) -> dict:
        """Keyword arguments for ``sample``: steps resolved for T, only the options that apply."""
        kw = dict(sampler=self.sampler, steps=self.resolved_steps(T), spacing=self.spacing,
                  clip_x0=self.clip_x0)
        kw.update({k: getattr(self, k) for k in self.info.options})
        return kw

    def resolved_steps(self, T: int) -> int:
        """The step count for a chain of T: the given one (at most T) or the default."""
        return self.info.default_steps(T) if self.steps is None else min(self.steps, T)

    def describe(self, T: int) -> str:
        """Short human description, e.g. ``"DDIM, 25 of 1000 steps (trailing), η = 0"``."""
        n = self.resolved_steps(T)
        parts = [self.info.label,
                 f"{n} steps" if n == T else f"{n} of {T} steps ({self.spacing})"]
        if "eta" in self.info.options:
            parts.append(f"η = {self.eta:g}")
        if "variance" in self.info.options and self.variance == "beta":
            parts.append("σ² = β")
        if self.clip_x0:
            parts.append("x̂0 clipped")
        return ", ".join(parts)

    @classmethod
    def from_dict(cls, d: dict, *, base: SamplerSettings | None = None,
                  strict: bool = True) -> SamplerSettings:
        """Settings from a dict (e.g. a checkpoint's record) on top of ``base``.

        ``strict=False`` skips unknown keys and values that do not validate (a recorded
        setting from an older or hand-edited file); ``strict=True`` raises ``ValueError``.
        """
        out = base or cls()
        names = {f.name for f in fields(cls)}
        for key, value in dict(d).items():
            if key not in names:
                if strict:
                    raise ValueError(f"unknown sampler setting {key!r}")
                continue
            try:
                out = replace(out, **{key: value})
            except (TypeError, ValueError):
                if strict:
                    raise
        return out
