"""Sessions without a copy of the page: Gradio 6 keeps one per visitor, for a button we lack.

Why. For its ``gr.DeepLinkButton`` (a link that reopens a session with every value in it),
Gradio 6.31's ``SessionState`` keeps, for every session, the config of every component of the
app (``config_values``, built when the session starts: 552 components here, ≈ 50 ms of the
server's CPU) and then the last value of every input and output it sees — each Plotly figure
and picture, as Python objects. Measured: one session's copy after a schedule plot, ▶ Train,
samples and an image chain is 1.6 MB as JSON (the 2D samples figure alone 0.9 MB), several
times that as Python objects; in the soak the server process grew by ≈ 250 MB over a class of
22 sessions and gave it back only when they expired. The app has no ``gr.DeepLinkButton``
(its 🔗 links carry the controls in the URL, :mod:`pages.links`), so nothing reads that copy.

How. :func:`install` makes ``SessionState`` start with an empty ``config_values`` that keeps
nothing, and makes the two methods that fill it (``_update_value_in_config``,
``_update_config``) do nothing. Every other part of the session (its state values, their
time-to-live, its own copies of components changed by ``gr.update``) is Gradio's, unchanged.
Gradio's deep-link route then answers with no components. ``tests/pages/test_lean_sessions.py``
fails if the internals this relies on change, and checks that a served session keeps no copy.
"""

from __future__ import annotations

import os
from copy import copy

from gradio import state_holder

GRADIO_INIT_SHA256 = "1b2ea21dc42c45dafb54280eccd932efe6851230b7f896ddbfd4cf593bc0d06b"
"""sha-256 of the source of Gradio 6.31's ``SessionState.__init__``, which :func:`_init`
reproduces without ``config_values`` (checked by the test)."""


class _KeepsNothing(dict):
    """A ``config_values`` that drops what is stored in it."""

    def __setitem__(self, key, value) -> None:
        pass

    def setdefault(self, key, default=None):
        return default

    def update(self, *args, **kwargs) -> None:
        pass


def install() -> None:
    """Stop every session from keeping a copy of the page's config and values (idempotent)."""
    cls = state_holder.SessionState
    if getattr(cls, "_dl_lean", False):
        return
    cls.__init__ = _init
    cls._update_value_in_config = _ignore
    cls._update_config = _ignore
    cls._dl_lean = True


def _init(self, blocks) -> None:
    """Gradio 6.31's ``SessionState.__init__`` without building ``config_values`` (the test
    compares Gradio's own with :data:`GRADIO_INIT_SHA256`, so an upgrade that changes it
    fails)."""
    self.blocks_config = copy(blocks.default_config)
    self.config_values = _KeepsNothing()
    self.state_data = {}
    self._state_ttl = {}
    self.is_closed = False
    self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600


def _ignore(self, *args, **kwargs) -> None:
    return None
