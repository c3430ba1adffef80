"""The visited timesteps of a reverse chain, built once, and evenly spaced picks (no torch).

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. A sampler walks ``(t, t_prev)`` pairs from
:func:`time_pairs`, whose last ``t_prev`` is −1 (the clean sample); t_prev is never derived
from a stride (lucidrains' ``time_pairs``).
"""

from __future__ import annotations

import numpy as np

from .config import SPACINGS, Spacing


def timesteps(T: int, num_steps: int, spacing: Spacing = "leading") -> list[int]:
    """The decreasing list of visited timesteps (each in 0..T−1), ``num_steps`` long.

    - ``leading`` (DDIM paper, diffusers default): 0, k, 2k, … with k = T // num_steps;
      it starts below T − 1 unless num_steps = T.
    - ``trailing``: round(T − i·T/num_steps) − 1, so it always starts at T − 1.
    - ``linspace``: num_steps evenly spaced values from T − 1 down to 0, rounded.
    """
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer ≥ 1; got {T!r}")
    if not isinstance(num_steps, int) or not 1 <= num_steps <= T:
        raise ValueError(f"steps must be an integer in [1, T = {T}]; got {num_steps!r}")
    if spacing == "leading":
        ts = [i * (T // num_steps) for i in range(num_steps)]
    elif spacing == "trailing":
        ts = [round(T - i * T / num_steps) - 1 for i in range(num_steps)]
    elif spacing == "linspace":
        ts = [0] if num_steps == 1 else [
            round(i * (T - 1) / (num_steps - 1)) for i in range(num_steps)]
    else:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}; got {spacing!r}")
    ts = sorted(set(ts), reverse=True)
    assert len(ts) == num_steps and 0 <= ts[-1] and ts[0] <= T - 1, ts
    return ts


def time_pairs(ts: list[int]) -> list[tuple[int, int]]:
    """``[(t, t_prev), …]`` for a decreasing list of timesteps; the last t_prev is −1."""
    return list(zip(ts, [*ts[1:], -1], strict=True))


def evenly_spaced(n: int, k: int) -> list[int]:
    """At most ``k`` indices in 0..n−1, evenly spaced, first and last included, ascending.

    The one rule for picking animation frames, GIF frames and strip timesteps.
    """
    if n < 1 or k < 1:
        return []
    return sorted({int(i) for i in np.rint(np.linspace(0, n - 1, min(k, n)))})
