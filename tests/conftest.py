"""Test-wide settings: no calls home, one torch thread (small models; no oversubscription)."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="diffusion-lab-tests-"))

import torch  # noqa: E402

torch.set_num_threads(1)


import socket  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import pytest  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo):
    """Launch ``demo`` on a free localhost port for the ``with`` block; yields its URL."""
    port = _free_port()
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


@pytest.fixture(scope="session")
def server():
    """The whole app, launched once on a free localhost port; yields its URL."""
    import app

    app.configure_threads()
    demo = app.build_demo()
    port = _free_port()
    kwargs = {k: v for k, v in app.launch_kwargs().items()
              if k not in ("server_name", "server_port")}
    demo.queue(default_concurrency_limit=2).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
        **kwargs)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
