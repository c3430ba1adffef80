"""One heavy job (training or sampling) per visitor at a time.

A visitor who starts a second heavy job while one runs (▶ Train, then Sample on another tab,
or a script that submits twice) gets a message instead of a second CPU. Jobs are keyed by the
Gradio session (one browser tab, or one ``gradio_client.Client``). The registry holds only
which session runs which job; it is emptied as each job ends, however it ends (done, error,
■ Stop, closed tab: a cancelled generator runs its ``finally``).

Handlers called directly (tests, no ``gr.Request``) are not tracked.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable

import gradio as gr

from pages.common import UserError

_lock = threading.Lock()
_running: dict[str, str] = {}  # session hash → what it is running


def running(session: str) -> str | None:
    """What ``session`` is running now, or None."""
    with _lock:
        return _running.get(session)


def _session_of(args, kwargs) -> str | None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, gr.Request):
            return getattr(a, "session_hash", None)
    return None


def _claim(session: str, what: str) -> None:
    with _lock:
        other = _running.get(session)
        if other is not None:
            raise UserError(f"You are already {other}. One job at a time per visitor: wait "
                            "for it to finish or press ■ Stop, then try again.")
        _running[session] = what


def _release(session: str) -> None:
    with _lock:
        _running.pop(session, None)


def heavy(what: str) -> Callable:
    """Decorate a generator handler that takes a ``request: gr.Request | None`` parameter.

    ``what`` completes "You are already …", e.g. ``"training a 2D model"``.
    """
    def decorate(fn: Callable) -> Callable:
        if not inspect.isgeneratorfunction(fn):
            raise TypeError("jobs.heavy wraps generator handlers only (Stop must reach them)")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            session = _session_of(args, kwargs)
            if session is None:
                yield from fn(*args, **kwargs)
                return
            _claim(session, what)
            try:
                yield from fn(*args, **kwargs)
            finally:
                _release(session)

        return wrapper

    return decorate
