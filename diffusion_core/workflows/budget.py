"""How much work one job may do: a step cap and a wall-time cap (torch-free).

A shared server (a class on one free 2-vCPU Space) must not let one job hold a CPU for hours.
Every training and sampling run of the app gets a :class:`Budget`; the job checks it after each
step and, once it is spent, stops cleanly and keeps what it did (a model trained so far, the
frames sampled so far). The CLIs run without one (``Budget()`` never stops anything).

Index convention of the jobs it caps: t ∈ {0, …, T−1}; a "step" here is one optimiser step or
one reverse-chain step, whichever the job counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Budget"]


@dataclass(frozen=True)
class Budget:
    """At most ``max_steps`` steps and ``max_seconds`` seconds of wall time (``None``: no cap).

    ``stop_reason(steps_done, elapsed_s)`` says which cap is spent (a short phrase such as
    ``"the 60 s limit"``), or ``None`` while the job may go on. ``check_steps(n)`` refuses a
    request for more steps than the cap before the job starts.
    """

    max_steps: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.max_steps is not None and (isinstance(self.max_steps, bool)
                                           or not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            raise ValueError(f"max_steps must be a whole number ≥ 1 or None, got "
                             f"{self.max_steps!r}")
        if self.max_seconds is not None:
            s = self.max_seconds
            if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) \
                    or s <= 0:
                raise ValueError(f"max_seconds must be a finite number > 0 or None, got {s!r}")

    def stop_reason(self, steps_done: int, elapsed_s: float) -> str | None:
        """The cap that is spent after ``steps_done`` steps and ``elapsed_s`` seconds, or None.

        The time cap is checked first: it is the one a slow machine hits.
        """
        if self.max_seconds is not None and elapsed_s >= self.max_seconds:
            return f"the {self.max_seconds:g} s limit"
        if self.max_steps is not None and steps_done >= self.max_steps:
            return f"the {self.max_steps:,}-step limit"
        return None

    def check_steps(self, steps: int, what: str = "steps") -> int:
        """``steps`` if it is within the step cap; else ``ValueError`` in plain words."""
        if self.max_steps is not None and steps > self.max_steps:
            raise ValueError(f"At most {self.max_steps:,} {what} per run on this server "
                             f"(asked for {steps:,}).")
        return steps

    def describe(self) -> str:
        """The caps in words, e.g. ``"≤ 20,000 steps and ≤ 60 s per run"``."""
        parts = []
        if self.max_steps is not None:
            parts.append(f"≤ {self.max_steps:,} steps")
        if self.max_seconds is not None:
            parts.append(f"≤ {self.max_seconds:g} s")
        return " and ".join(parts) + " per run" if parts else "no limit"
