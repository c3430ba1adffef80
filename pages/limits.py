"""The server's limits: how much work, memory and disk one visitor may use (read from the env).

Chosen for a class sharing one free Hugging Face Space (2 vCPU, 16 GB): the presets and every
lesson fit well inside them; greedy requests stop cleanly at a cap and say so. People running
the app on their own machine can raise them with environment variables (README, "Running it
for a class"):

=================================  =======  ======================================================
variable                           default  what it bounds
=================================  =======  ======================================================
``DIFFUSION_LAB_TRAIN_SECONDS``    60       wall time of one ▶ Train press (then it stops, keeps
                                            the model; press ▶ Train to continue)
``DIFFUSION_LAB_TRAIN_STEPS``      20000    training steps of one ▶ Train press
``DIFFUSION_LAB_SAMPLE_SECONDS``   60       wall time of one sampling run (2D or images)
``DIFFUSION_LAB_TRAIN_SLOTS``      24       training jobs running at once (all users); more wait
``DIFFUSION_LAB_SAMPLE_SLOTS``     6        sampling jobs running at once (all users)
``DIFFUSION_LAB_WORKERS``          4        worker processes computing those jobs; the jobs in
                                            one worker take turns, a report each
                                            (:class:`~diffusion_core.workflows.remote.WorkerPool`)
``DIFFUSION_LAB_STATE_TTL_S``      10800    a session's models and frames are freed this long
                                            after their last change
``DIFFUSION_LAB_SESSION_IDLE_S``   1800     a session unused this long is dropped entirely
``DIFFUSION_LAB_MAX_SESSIONS``     200      sessions kept in memory (the oldest is dropped)
``DIFFUSION_LAB_UPLOAD_MB``        10       size of one uploaded file
``DIFFUSION_LAB_UPLOAD_MEGAPIXELS`` 16      pixels of one uploaded image (width × height)
``DIFFUSION_LAB_CACHE_MINUTES``    30       served files older than this are deleted
``DIFFUSION_LAB_LONG_AFTER_S``     3        a job that computed longer (CPU s) is *long*: long
                                            jobs take turns, one step at a time
                                            (:func:`pages.jobs.paced`)
``DIFFUSION_LAB_TURN_S``           3        a run that computed this long (CPU s) stops at its
                                            next step while others wait for a slot
                                            (:func:`pages.jobs.turn_over`)
``DIFFUSION_LAB_WORKER_MB``        20       a worker process idle for 30 s holding this
                                            much more memory than when it was fresh is
                                            replaced by a fresh one
                                            (:meth:`~diffusion_core.workflows.remote.WorkerPool.recycle`)
=================================  =======  ======================================================

Each visitor runs at most one heavy job (training or sampling) at a time, and long jobs take
turns on one lane (:mod:`pages.jobs`). Light views (plots, sliders) have their own queues, so
heavy jobs never block them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from diffusion_core.workflows.budget import Budget

PREFIX = "DIFFUSION_LAB_"


@dataclass(frozen=True)
class Limits:
    """Every limit of the running app (see the module docstring for what each one bounds)."""

    train_seconds: float = 60.0
    train_steps: int = 20_000
    sample_seconds: float = 60.0
    train_slots: int = 24
    sample_slots: int = 6
    workers: int = 4
    state_ttl_s: int = 10800
    session_idle_s: int = 1800
    max_sessions: int = 200
    upload_mb: int = 10
    upload_megapixels: float = 16.0
    cache_minutes: float = 30.0
    long_after_s: float = 3.0
    turn_s: float = 3.0
    worker_mb: float = 20.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            ok = (not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
                  and v > 0 and (f.type != "int" or isinstance(v, int)))
            if not ok:
                raise ValueError(f"{env_name(f.name)} must be a positive "
                                 f"{'whole ' if f.type == 'int' else ''}number, got {v!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by ``DIFFUSION_LAB_<FIELD>`` variables that are set."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is None or raw.strip() == "":
                continue
            try:
                values[f.name] = int(raw) if f.type == "int" else float(raw)
            except ValueError:
                raise ValueError(f"{env_name(f.name)}={raw[:40]!r} is not a "
                                 f"{'whole ' if f.type == 'int' else ''}number") from None
        return cls(**values)

    def training_budget(self) -> Budget:
        """The caps of one ▶ Train press."""
        return Budget(max_steps=self.train_steps, max_seconds=self.train_seconds)

    def sampling_budget(self) -> Budget:
        """The cap of one sampling run (its steps are bounded by the model's T)."""
        return Budget(max_seconds=self.sample_seconds)

    @property
    def overdue_s(self) -> float:
        """A heavy job running longer than this by the clock has outlived every cap (twice the
        longest, plus a minute of waiting for a slot or the long-job lane): a fault."""
        return 2 * max(self.train_seconds, self.sample_seconds) + 60.0

    @property
    def runs_per_worker(self) -> int:
        """Jobs one worker process holds at once, so that every slot has a place."""
        return -(-(self.train_slots + self.sample_slots) // self.workers)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.upload_mb * 1024 * 1024)

    @property
    def max_upload_pixels(self) -> int:
        return int(self.upload_megapixels * 1_000_000)


def env_name(field: str) -> str:
    """``train_seconds`` → ``DIFFUSION_LAB_TRAIN_SECONDS``."""
    return PREFIX + field.upper()


ACTIVE: Limits = Limits.from_env()
"""The limits in force; :func:`configure` replaces them (``app.build_demo`` and tests)."""


def configure(limits: Limits) -> Limits:
    """Make ``limits`` the ones every handler reads from now on; returns them."""
    global ACTIVE
    ACTIVE = limits
    return limits
