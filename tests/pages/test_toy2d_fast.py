"""Tab 3's field table for the t slider's fast path, server side (issue #14): what
``field_table_view`` sends after ▶ Train, what every field figure says about its weights, and
that nothing else (the live previews, ``train_finished``, the slider's own answers) computes
or sends a table. The browser half is ``tests/pages/test_toy2d_fast_browser.py``."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import base64  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import pytest  # noqa: E402

from diffusion_core.schedule import ScheduleConfig  # noqa: E402
from diffusion_core.workflows import toy2d as wf  # noqa: E402
from pages import jobs  # noqa: E402
from pages import toy2d as tab  # noqa: E402
from pages.toy2d import figures, handlers  # noqa: E402
from pages.toy2d.figures import GRID, arrow_offsets, arrows, pack_tips, unpack_tips  # noqa: E402

SHARED = ScheduleConfig(kind="cosine", T=1000).to_dict()
BASE = dict(dataset="moons", n=1000, noise=0.05, seed=0, source="preset", kind="cosine", T=100,
            shared=SHARED, hidden=32, depth=2, time_embedding="sinusoidal", activation="silu",
            lr=3e-3, batch_size=128, steps=60)


def run_train(state=None, **overrides):
    return list(tab.train(state, **{**BASE, **overrides}))[-1]


@pytest.fixture(scope="module")
def trained():
    return run_train()[0]  # the preset's schedule: cosine, T = 200


def _array(s: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.dtype(dtype).newbyteorder("<"))


def test_arrows_keep_their_shape():
    # one arrow (1, 0) at the origin drawn 1 long: shaft to (1, 0), a 0.3-long head at ±25°
    x, y = arrows(np.zeros((1, 2)), np.array([[2.0, 0.0]]), 1.0, ref=2.0)
    c, s = math.cos(math.radians(25)), math.sin(math.radians(25))
    np.testing.assert_allclose(x[[0, 1, 3, 4, 5]], [0, 1, 1 - 0.3 * c, 1, 1 - 0.3 * c])
    np.testing.assert_allclose(y[[0, 1, 3, 4, 5]], [0, 0, -0.3 * s, 0, 0.3 * s], atol=1e-15)
    assert np.isnan(x[2]) and np.isnan(x[6])
    # lengths ∝ |vec| up to the 90th percentile, capped there; one field or a stack of them
    vec = np.stack([np.linspace(0.1, 1, 10), np.zeros(10)], axis=1)
    tips = arrow_offsets(vec)
    ref = np.quantile(np.linspace(0.1, 1, 10), 0.9)
    np.testing.assert_allclose(tips[:, 0], np.minimum(vec[:, 0] / ref, 1.0))
    np.testing.assert_allclose(arrow_offsets(np.stack([vec, 3 * vec]))[1], tips)


def test_tips_pack_to_int8_steps_and_back():
    rng = np.random.default_rng(0)
    tips = np.clip(np.cumsum(rng.normal(0, 0.05, (50, 441, 2)), axis=0), -1, 1)
    q = unpack_tips(pack_tips(tips), 50, 441)
    assert q.dtype == np.int8 and np.abs(q / 127 - tips).max() <= 0.5 / 127 + 1e-12


def test_the_table_view_carries_the_field_at_every_t(trained):
    fig = handlers.field_table_view(trained, 37, "learned")
    meta = fig.layout.meta
    assert meta["dl_field"] == {"key": figures.field_key(trained), "t": 37, "show": "learned"}
    m = meta["dl_field_table"]
    T, K = 200, 200  # the preset's schedule, every t
    assert (m["key"], m["T"], m["grid"]) == (meta["dl_field"]["key"], T, GRID)
    assert _array(m["t"], "i4").tolist() == list(range(K))
    # what the browser draws at t: the server's field at t (same half-width, tips within
    # 0.5/127 of an arrow's length), the cloud from the same x0, ε and float32 √ᾱ
    half = _array(m["half"], "f8")
    tips = unpack_tips(m["tips"], K, GRID * GRID) / 127
    sab, s1mab = _array(m["sab"], "f4"), _array(m["s1mab"], "f4")
    x0, eps = _array(m["x0"], "f4").reshape(-1, 2), _array(m["eps"], "f4").reshape(-1, 2)
    for t in (0, 37, 199):
        vf = wf.vector_field(trained, t, grid_size=GRID)
        assert half[t] == vf.half
        np.testing.assert_allclose(tips[t], arrow_offsets(-vf.pred_eps), atol=0.5 / 127 + 1e-6)
        server = tab.vector_field(trained, t)
        cloud = sab[t] * x0 + s1mab[t] * eps  # DDPM eq. 4 in float32
        np.testing.assert_array_equal(cloud[:, 0], server.data[0].x)
        ab = _array(m["alpha_bar"], "f8")[t]
        assert m["title"].format(t=t, alpha_bar=f"{ab:.3f}") == server.layout.title.text
    # sized for one message: ≈ 70 kB of JSON for 200 t (the tips compressed 4×)
    size = len(json.dumps(m))
    assert 30_000 < size < 100_000, size


def test_slider_answers_name_their_weights_but_carry_no_table(trained):
    learned = tab.vector_field(trained, 20)
    assert learned.layout.meta == {"dl_field": {"key": figures.field_key(trained), "t": 20,
                                                "show": "learned"}}
    assert tab.vector_field(trained, 20, "both").layout.meta["dl_field"]["show"] == "both"
    assert tab.vector_field(trained, 20, "ideal").layout.meta["dl_field"]["show"] == "ideal"
    # train_finished's figure has no table either (it follows, in field_table_view)
    field = tab.train_finished(trained, 20, "**Done: step 60 / 60**")[0]
    assert "dl_field_table" not in field.layout.meta


def test_the_key_changes_with_every_step_and_every_session():
    s1 = run_train(steps=5)[0]
    k1 = figures.field_key(s1)
    assert figures.field_key(s1) == k1 and k1.endswith(":5")
    s1b = run_train(s1, steps=3)[0]  # ▶ Train again continues the same model
    assert s1b is s1 and figures.field_key(s1).endswith(":8")
    assert figures.field_key(s1).split(":")[0] == k1.split(":")[0]
    s2 = run_train(steps=5)[0]  # another session, same settings and step
    assert figures.field_key(s2) != k1


def test_only_the_finished_model_computes_a_table(monkeypatch):
    calls = []
    real = wf.field_table
    monkeypatch.setattr(wf, "field_table", lambda *a, **k: calls.append(a) or real(*a, **k))
    monkeypatch.setattr(handlers, "LIVE_EVERY_S", 0.0)  # a live preview at every report
    out = list(tab.train(None, **{**BASE, "steps": 20}))
    state = out[-1][0]
    live = [o for o in out if isinstance(o[5], go.Figure)]
    assert live and not calls  # live previews drew the field, no table
    assert all("dl_field_table" not in (o[5].layout.meta or {}) for o in live)
    tab.train_finished(state, 10, "**Done**")
    assert not calls
    fig = handlers.field_table_view(state, 10)
    assert len(calls) == 1 and "dl_field_table" in fig.layout.meta


def test_no_table_without_a_model_while_training_or_for_moved_weights(trained, monkeypatch):
    skip = gr.skip()
    assert handlers.field_table_view(None, 3) == skip
    request = SimpleNamespace(session_hash="h2-test")
    monkeypatch.setattr(jobs, "wait_done", lambda request, timeout_s=jobs.WAIT_DONE_S: None)
    monkeypatch.setattr(jobs, "running", lambda session: "training a 2D model")
    assert handlers.field_table_view(trained, 3, "learned", request) == skip
    monkeypatch.undo()
    # the weights moved on while the table was computed: nothing is sent

    def moved(session, **kw):
        table = real(session, **kw)
        session.trainer.step += 1
        return table

    real = wf.field_table
    step = trained.trainer.step
    monkeypatch.setattr(wf, "field_table", moved)
    try:
        assert handlers.field_table_view(trained, 3) == skip
    finally:
        trained.trainer.step = step


def test_the_tab_wires_the_table_in_order():
    import app

    demo = app.build_demo()
    fns = list(demo.fns.values())
    by_name = {getattr(fn, "api_name", None): fn for fn in fns}
    names = [getattr(fn, "api_name", None) for fn in fns]
    # the browser runs a click's events in order and waits for a stream (training) to end:
    # the table is dropped by an event registered before the train event
    assert names.index("toy_field_table_drop") < names.index("toy_train")
    assert by_name["toy_field_table_drop"].fn is None
    table = by_name["toy_field_table"]
    assert table.fn is handlers.field_table_view
    assert table.concurrency_id == "toy_field_table"
    for name in ("toy_field_table", "toy_field_table_drop", "toy_field_table_take"):
        assert by_name[name].api_visibility == "private"
    assert "__dlToyField" in figures.field_fast_js() and "__CONFIG__" not in \
        figures.field_fast_js()
