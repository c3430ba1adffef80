"""Argument checks shared by the data generators, the file loaders and the evaluation judges.

Each raises ``ValueError`` naming the argument and what it accepts.
"""

from __future__ import annotations

import numpy as np


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in ``lo..hi``, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return int(value)


def check_seed(seed: object) -> int:
    """A seed in 0..2**32−1 (what ``numpy.random.default_rng`` and ``manual_seed`` accept)."""
    return check_int("seed", seed, 0, 2**32 - 1)


def check_choice(name: str, value: object, allowed: tuple) -> None:
    """ValueError listing ``allowed`` unless ``value`` is one of them."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
