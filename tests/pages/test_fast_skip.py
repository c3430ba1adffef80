"""pages/fast_skip.py: a bare ``gr.skip()`` output gives exactly Gradio's own answer without
rebuilding the component; everything else is untouched."""

from __future__ import annotations

import asyncio
import copy
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import pytest  # noqa: E402
from gradio.state_holder import SessionState  # noqa: E402

from pages import fast_skip  # noqa: E402


def _demo():
    with gr.Blocks() as demo:
        state = gr.State(None)
        plot, image = gr.Plot(), gr.Image(format="png")
        slider, button, text = gr.Slider(0, 10), gr.DownloadButton("⬇"), gr.Markdown()
        go_btn = gr.Button("go")
        go_btn.click(lambda: None, None, [state, plot, image, slider, button, text])
    fn = next(f for f in demo.fns.values() if len(f.outputs) == 6)
    return demo, fn


PREDICTIONS = [
    [gr.skip()] * 6,
    [{"a": 1}, go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), np.zeros((4, 4, 3), np.uint8),
     gr.update(maximum=5, value=2), gr.skip(), "**hello**"],
    [gr.skip(), gr.skip(), gr.skip(), gr.update(interactive=False), gr.skip(), "x"],
]


def _run(demo, fn, predictions, state):
    # (a copy: Gradio pops "value" out of update dicts it processes)
    return asyncio.run(demo.postprocess_data(fn, copy.deepcopy(predictions), state))


def _strip_paths(value):
    """Cached file paths name a temporary folder by the bytes' hash: compare the rest."""
    if isinstance(value, dict):
        return {k: _strip_paths(v) for k, v in value.items() if k not in ("path", "url")}
    if isinstance(value, list):
        return [_strip_paths(v) for v in value]
    return value


@pytest.fixture
def gradio_original(monkeypatch):
    """Gradio's postprocess_data without the patch (restored after the test)."""
    original = gr.Blocks.postprocess_data
    while getattr(original, "_dl_fast_skip", False):
        original = original.__wrapped__
    monkeypatch.setattr(gr.Blocks, "postprocess_data", original)
    return original


@pytest.mark.parametrize("i", range(len(PREDICTIONS)))
def test_the_answer_is_gradios_own(gradio_original, monkeypatch, i):
    demo, fn = _demo()
    want_state = SessionState(demo)
    want = _run(demo, fn, list(PREDICTIONS[i]), want_state)
    fast_skip.install()
    got_state = SessionState(demo)
    got = _run(demo, fn, list(PREDICTIONS[i]), got_state)
    assert _strip_paths(got) == _strip_paths(want)
    if i == 0:  # every output skipped: a bare update each, None for the State
        assert got == [None] + [{"__type__": "update"}] * 5
    # what the session's state holds agrees too
    assert got_state.state_data == want_state.state_data


def test_a_skip_no_longer_rebuilds_the_component(gradio_original, monkeypatch):
    demo, fn = _demo()
    built = []
    init = gr.DownloadButton.__init__

    def counting(self, *a, **k):
        built.append(1)
        init(self, *a, **k)

    monkeypatch.setattr(gr.DownloadButton, "__init__", counting)
    _run(demo, fn, [gr.skip()] * 6, SessionState(demo))
    assert len(built) == 1  # Gradio itself rebuilds the button for a bare skip …
    fast_skip.install()
    fast_skip.install()  # (idempotent)
    built.clear()
    _run(demo, fn, [gr.skip()] * 6, SessionState(demo))
    assert built == []  # … the patch does not


def test_the_app_installs_it():
    import app  # noqa: F401  (building is not needed: app.py installs it at import)

    assert getattr(gr.Blocks.postprocess_data, "_dl_fast_skip", False)
