"""Field checks shared by every config (each raises ``ValueError`` naming the field and range).

Torch-free: the config modules (``schedule.config``, ``models.*_config``, ``training.config``,
``sampling.config``) use these while the app builds its UI, before torch is imported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def check_int_field(name: str, value: Any, lo: int, hi: int) -> None:
    """Raise ``ValueError`` naming config field ``name`` unless ``lo <= value <= hi`` (an int)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int in {lo}..{hi}, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")


def check_choice_field(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` naming config field ``name`` unless ``value`` is one of ``choices``.

    Types must match too, so ``1`` is not accepted for ``True`` nor ``True`` for ``1``.
    """
    choices = tuple(choices)
    if not any(type(value) is type(c) and value == c for c in choices):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def checked_config_kwargs(
    cls_name: str, kind: str, fields: Iterable[str], d: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate a config dict's keys for ``cls_name.from_dict``; returns a plain ``dict`` copy.

    Unknown keys and a ``kind`` other than ``kind`` raise ``ValueError``; missing keys are left
    to the dataclass defaults.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"{cls_name}.from_dict expects a mapping, got {type(d).__name__}")
    allowed = set(fields)
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(
            f"{cls_name}.from_dict: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}"
        )
    if "kind" in d and d["kind"] != kind:
        raise ValueError(f"{cls_name}.from_dict: kind must be {kind!r}, got {d['kind']!r}")
    return dict(d)


def check_range(name: str, value: float, lo: float, hi: float, *, lo_open: bool = True,
                hi_open: bool = True) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite number in the range."""
    ok_lo = value > lo if lo_open else value >= lo
    ok_hi = value < hi if hi_open else value <= hi
    if not (isinstance(value, (int, float)) and math.isfinite(value) and ok_lo and ok_hi):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}; got {value!r}")
