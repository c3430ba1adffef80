"""``gr.skip()`` for free: Gradio 6 rebuilds a component for every output left unchanged.

Why. A streamed handler yields every output each time; the parts that did not change are
``gr.skip()`` (``{"__type__": "update"}``), e.g. the images and buttons of tab 4's heartbeat,
every 0.1 s so ■ Stop reacts at once. Gradio 6.31's ``Blocks.postprocess_data`` treats that
like any property update: it constructs a new component from the old one's arguments and
recomputes its config and API description — 0.4–4 ms per skipped output on this machine
(``gr.DownloadButton`` 3.9 ms, ``gr.Image`` 2.7 ms), about 14 ms per heartbeat of tab 4, all of
it on the server's one Python thread; the soak's profile put it at ~30 s of the server's CPU in
5 minutes. The rebuilt component is identical to the old one, and what goes to the browser is
the bare ``{"__type__": "update"}`` again.

How. :func:`install` wraps ``Blocks.postprocess_data``: outputs that are a bare skip are
passed to Gradio as its own "nothing to process" marker (``FINISHED_ITERATING``) and put back
as what Gradio would have sent — ``{"__type__": "update"}``, or ``None`` for a ``gr.State``
(a bare update stores nothing there). Everything else goes through Gradio unchanged.
``tests/pages/test_fast_skip.py`` checks the answers are Gradio's own, and fails if the
internals it relies on change.
"""

from __future__ import annotations

import functools

import gradio as gr
from gradio.components.base import _Keywords

_SKIP = {"__type__": "update"}


def _bare_skip(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and value.get("__type__") == "update"


def install() -> None:
    """Make bare ``gr.skip()`` outputs cost nothing on the server (idempotent)."""
    original = gr.Blocks.postprocess_data
    if getattr(original, "_dl_fast_skip", False):
        return

    @functools.wraps(original)
    async def postprocess_data(self, block_fn, predictions, state):
        outputs = block_fn.outputs
        if (len(outputs) < 2 or not isinstance(predictions, (list, tuple))
                or len(predictions) != len(outputs)):
            return await original(self, block_fn, predictions, state)
        skipped = [i for i, p in enumerate(predictions) if _bare_skip(p)]
        if not skipped:
            return await original(self, block_fn, predictions, state)
        marked = list(predictions)
        for i in skipped:
            marked[i] = _Keywords.FINISHED_ITERATING  # Gradio: "output None, process nothing"
        result = await original(self, block_fn, marked, state)
        for i in skipped:
            result[i] = None if outputs[i].stateful else dict(_SKIP)
        return result

    postprocess_data._dl_fast_skip = True
    gr.Blocks.postprocess_data = postprocess_data
