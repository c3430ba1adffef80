"""The noise-schedule config: plain, torch-free data (one UI control per field).

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``; ᾱ at t = −1 is 1.
The β values themselves are computed by :func:`diffusion_core.schedule.betas.make_betas` and
every derived buffer by :class:`diffusion_core.schedule.NoiseSchedule`. Importing this module
does not import torch (the app builds its UI from it before torch loads).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Literal, get_args

from ..validation import check_range

if TYPE_CHECKING:
    import torch

ScheduleKind = Literal["linear", "cosine", "quadratic", "sigmoid", "polynomial", "custom"]
SCHEDULE_KINDS: tuple[str, ...] = get_args(ScheduleKind)
# Kinds shown in the UI as overlays (custom needs a user array).
BUILTIN_KINDS: tuple[str, ...] = ("linear", "cosine", "quadratic", "sigmoid", "polynomial")

MAX_T = 100_000
TERMINAL_SIGNAL_WARN = 0.01  # warn when √ᾱ_{T−1} is above this: x_{T−1} still carries signal
COSINE_MAX_BETA = 0.999  # iDDPM clips β to avoid a singular step at the end


def check_schedule_args(
    kind: str,
    T: int,
    *,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    scale_to_T: bool = False,
    cosine_s: float = 0.008,
    power: float = 2.0,
    custom_betas: Iterable[float] | torch.Tensor | None = None,
) -> None:
    """Validate the arguments of :func:`diffusion_core.schedule.betas.make_betas` (same signature).

    Only the fields the chosen ``kind`` uses are checked, exactly as ``make_betas`` uses them.

    Raises:
        ValueError: naming the parameter and its allowed range.
    """
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"schedule kind must be one of {', '.join(SCHEDULE_KINDS)}; got {kind!r}")
    if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= MAX_T:
        raise ValueError(f"T must be an integer in [1, {MAX_T}]; got {T!r}")
    if kind == "custom":
        if custom_betas is None:
            raise ValueError("custom_betas must be given for the custom schedule")
        values = [float(b) for b in (custom_betas.flatten().tolist()
                                     if hasattr(custom_betas, "flatten") else custom_betas)]
        if len(values) != T:
            raise ValueError(f"custom_betas must have T = {T} values; got {len(values)}")
        if not all(math.isfinite(b) and 0 < b < 1 for b in values):
            raise ValueError("custom_betas must all be finite and in (0, 1)")
        return
    if kind == "cosine":
        check_range("cosine_s", cosine_s, 0.0, 1.0, lo_open=False)
        return
    check_range("beta_start", beta_start, 0.0, 1.0)
    check_range("beta_end", beta_end, 0.0, 1.0)
    if beta_end < beta_start:
        raise ValueError(f"beta_end must be ≥ beta_start ({beta_start}); got {beta_end}")
    if scale_to_T:
        scale = 1000.0 / T
        if beta_end * scale >= 1:
            raise ValueError(
                f"with the 1000/T scaling, beta_end becomes {beta_end * scale:.3g} ≥ 1; "
                f"use T ≥ {math.floor(1000 * beta_end) + 1} or turn the scaling off"
            )
    if kind == "polynomial":
        check_range("power", power, 0.0, 10.0, hi_open=False)


@dataclass(frozen=True)
class ScheduleConfig:
    """Everything that defines a schedule; one UI control maps onto one field.

    See :func:`diffusion_core.schedule.betas.make_betas` for the exact definition of each kind.
    """

    kind: ScheduleKind = "linear"
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    scale_to_T: bool = False
    cosine_s: float = 0.008
    power: float = 2.0
    custom_betas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.custom_betas is not None and not isinstance(self.custom_betas, tuple):
            object.__setattr__(self, "custom_betas", tuple(float(b) for b in self.custom_betas))
        check_schedule_args(**self._kwargs())  # validates every field (no torch needed)

    def _kwargs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def betas(self) -> torch.Tensor:
        """β_t for t = 0..T−1, float64 ``[T]`` (see ``schedule.betas.make_betas``)."""
        from .betas import make_betas  # torch is imported on first use, not with the config

        return make_betas(**self._kwargs())

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["custom_betas"] is not None:
            d["custom_betas"] = list(d["custom_betas"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ScheduleConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown schedule config keys: {sorted(unknown)}")
        return cls(**d)
