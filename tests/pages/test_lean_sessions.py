"""Sessions keep no copy of the page's config and values (pages/lean_sessions.py)."""

from __future__ import annotations

import hashlib
import inspect

import gradio as gr
from gradio import state_holder

from pages import lean_sessions


def _gradio_init_source() -> str:
    """The source of Gradio's own ``SessionState.__init__``, read from its module file
    (:func:`lean_sessions.install` replaces the class's)."""
    import ast

    source = inspect.getsource(state_holder)
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SessionState")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return "\n".join(source.splitlines()[init.lineno - 1: init.end_lineno]) + "\n"


def test_gradios_session_init_is_the_one_reproduced():
    src = _gradio_init_source()
    assert "self.config_values = {" in src
    assert hashlib.sha256(src.encode()).hexdigest() == lean_sessions.GRADIO_INIT_SHA256, (
        "Gradio's SessionState.__init__ changed: update pages/lean_sessions._init to match "
        "it (without config_values), then GRADIO_INIT_SHA256")
    for name in ("def _update_value_in_config", "def _update_config", "def components",
                 "self.config_values[key]"):
        assert name in inspect.getsource(state_holder), name


def _demo():
    with gr.Blocks() as demo:
        box = gr.Number(1)
        state = gr.State(0, time_to_live=60)
        plot = gr.Plot()
    return demo, box, state, plot


def test_a_session_starts_empty_keeps_its_state_and_no_values():
    lean_sessions.install()
    lean_sessions.install()  # (idempotent)
    demo, box, state, plot = _demo()
    ss = state_holder.SessionState(demo)
    assert dict(ss.config_values) == {} and list(ss.components) == []
    ss[state._id] = {"model": 1}
    assert ss[state._id] == {"model": 1} and state._id in ss._state_ttl  # Gradio's own state
    ss._update_value_in_config(plot._id, {"data": [0.0] * 1000})
    ss._update_config(box._id)
    ss[box._id] = gr.Number(2)  # a component changed by gr.update: Gradio's copy, as before
    assert ss[box._id].value == 2
    assert dict(ss.config_values) == {}


def test_served_sessions_keep_no_copy_after_calls(server):
    import gc

    from gradio_client import Client

    import app  # noqa: F401  (app.py installs it at import)

    def sessions():
        return [o for o in gc.get_objects() if type(o) is state_holder.SessionState]

    assert state_holder.SessionState._dl_lean
    before = {id(s) for s in sessions()}  # (other tests' apps in this process made some)
    client = Client(server, download_files=False, verbose=False)
    client.predict(api_name="/schedules_plot")
    client.close()
    new = [s for s in sessions() if id(s) not in before]
    assert new, "no session found"
    assert all(dict(s.config_values) == {} for s in new)


def test_the_app_has_no_deep_link_button():
    import app

    demo = app.build_demo()
    assert not [b for b in demo.blocks.values() if type(b).__name__ == "DeepLinkButton"]
