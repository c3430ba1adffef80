"""Helpers the test modules share (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import socket
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo):
    """Launch ``demo`` on a free localhost port for the ``with`` block; yields its URL."""
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                        quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def load_events(demo) -> list:
    """The event functions ``demo`` runs when a browser opens the page (``Blocks.load``)."""
    return [fn for fn in demo.fns.values() if any(ev == "load" for _, ev in fn.targets)]


def load_event_for(demo, component):
    """The page-load event that fills ``component`` (exactly one must exist)."""
    found = [fn for fn in load_events(demo) if component in fn.outputs]
    assert len(found) == 1, f"{len(found)} load events fill {component!r}"
    return found[0]
