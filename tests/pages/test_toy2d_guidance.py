"""Tab 3's Guidance sub-tab (``pages/toy2d/guide.py``) and the "Train with class labels" box,
called as handlers. The workflow underneath is tested in
``tests/core/workflows/test_guidance2d.py``.

Convention: ε̃ = ε_u + s·(ε_c − ε_u); s = 0 unconditional, s = 1 conditional, s > 1 harder.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import inspect  # noqa: E402
import math  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diffusion_core.data.toy2d_spec import LABELLED_TOY_DATASETS  # noqa: E402
from diffusion_core.sampling.config import GUIDANCE_DEFAULT, GUIDANCE_MAX  # noqa: E402
from diffusion_core.workflows import guidance2d as gd  # noqa: E402
from pages import toy2d as tab  # noqa: E402
from pages.toy2d import guide  # noqa: E402
from pages.widgets.sweep import RUNNING  # noqa: E402

BASE = dict(dataset="moons", n=1000, noise=0.05, seed=0, source="preset", kind="cosine", T=100,
            shared={}, hidden=64, depth=2, time_embedding="sinusoidal", activation="silu",
            lr=1e-2, batch_size=256, steps=150)


def run_train(state=None, **overrides):
    return list(tab.train(state, **{**BASE, **overrides}))[-1]


@pytest.fixture(scope="module")
def trained():
    """A class-conditional model of the two moons, trained through the ▶ Train handler."""
    return run_train(conditional=True)[0]


def _xy(trace):
    return np.asarray(trace.x, dtype=np.float64), np.asarray(trace.y, dtype=np.float64)


# --- the "Train with class labels" box -------------------------------------------------------


def test_train_takes_conditional_last_and_defaults_to_off():
    params = [p for p in inspect.signature(tab.train).parameters.values()
              if p.name != "request"]
    names = [p.name for p in params]
    i = names.index("conditional")
    assert params[i].default is False
    assert names[i - 1] == "prediction"  # scripts calling /toy_train by keyword still work
    # parameters added after it (the drawing, …) have defaults, so positional calls still work
    assert all(p.default is not inspect.Parameter.empty for p in params[i:])


def test_train_with_labels_makes_a_conditional_model_and_says_so(trained):
    assert trained.conditional and trained.num_classes == 2
    assert trained.class_names == ("upper moon", "lower moon")
    assert trained.trainer.step == 150
    # unticking the box starts a new (unconditional) model; ticking it again another one
    plain, _, text, *_ = run_train(trained, steps=5)
    assert not plain.conditional and "class labels changed" in text
    again, _, text, *_ = run_train(plain, steps=5, conditional=True)
    assert again.conditional and "class labels changed" in text
    assert "with class labels: upper moon / lower moon" in text
    same, _, text, *_ = run_train(again, steps=5, conditional=True)
    assert same is again and "Continuing the model" in text


def test_class_labels_on_a_set_without_classes_is_a_readable_error():
    for name in ("swiss_roll", "s_curve"):
        with pytest.raises(gr.Error) as e:
            next(tab.train(None, **{**BASE, "dataset": name, "conditional": True}))
        assert name in str(e.value)
        assert all(s in str(e.value) for s in LABELLED_TOY_DATASETS)
    with pytest.raises(gr.Error, match="true or false"):
        next(tab.train(None, **{**BASE, "conditional": "yes"}))
    # unticked, a set without classes trains as always
    state = run_train(dataset="swiss_roll", noise=0.03, steps=3)[0]
    assert not state.conditional


# --- the live view -----------------------------------------------------------------------------


def test_no_conditional_model_yet_says_train_with_class_labels_first():
    fig, text = guide.guide_view(None, 0, 2.0, 10, "network")
    assert "Train with class labels first" in text and "checkerboard" in text
    assert "Train with class labels first" in fig.layout.annotations[0].text
    plain = run_train(steps=3)[0]
    fig, text = guide.guide_view(plain, 0, 2.0, 10, "network")
    assert "without class labels" in text and "Train with class labels first" in text
    skip = gr.skip()
    assert guide.after_train(plain, 0, 2.0, 10, "network") == (skip,) * 4
    assert guide.after_train(None, 0, 2.0, 10, "network") == (skip,) * 4
    _, _, fig, text = guide.guide_refresh(plain, 0, 2.0, 10, "network")
    assert "without class labels" in text
    # the trade-off button answers the same way (a warning, no error trace)
    out = list(guide.tradeoff(None, 2.0, "network"))
    assert out == [(skip, guide.NO_MODEL.format(sets=", ".join(LABELLED_TOY_DATASETS)), skip)]


@pytest.mark.parametrize("args", [
    (0, GUIDANCE_MAX + 0.5, 10, "network"), (0, -1, 10, "network"), (0, "abc", 10, "network"),
    (0, float("nan"), 10, "network"), (2, 2.0, 10, "network"), (-1, 2.0, 10, "network"),
    (0.5, 2.0, 10, "network"), ("upper moon", 2.0, 10, "network"), (0, 2.0, 200, "network"),
    (0, 2.0, -1, "network"), (0, 2.0, 3.5, "network"), (0, 2.0, 10, "oracle"),
    (0, 2.0, 10, None)])
def test_bad_view_input_is_a_readable_error(trained, args):
    with pytest.raises(gr.Error) as e:
        guide.guide_view(trained, *args)
    assert len(str(e.value)) < 300


def test_view_draws_the_three_fields_and_the_samples(trained):
    fig, text = guide.guide_view(trained, 1, 2.5, 20, "network")
    view = gd.guided_view(trained, klass=1, scale=2.5, t=20, n=guide.N_SAMPLES, seed=guide.SEED)
    arrows = [tr for tr in fig.data if tr.mode == "lines"]
    assert [tr.xaxis for tr in arrows] == ["x", "x2", "x3"]
    n_grid = gd.GRID_SIZE ** 2
    for tr, eps in zip(arrows, (view.field.eps_uncond, view.field.eps_cond, view.field.eps),
                       strict=True):
        x, y = _xy(tr)
        assert len(x) == 7 * n_grid  # shaft, gap, head, gap per arrow
        shafts = np.stack([x[1::7] - x[0::7], y[1::7] - y[0::7]], 1)
        cos = (shafts * -eps).sum(1) / (np.linalg.norm(shafts, axis=1)
                                        * np.linalg.norm(eps, axis=1))
        assert np.all(cos > 0.999)  # each arrow points along −ε
    samples = [tr for tr in fig.data if tr.xaxis == "x4" and tr.name in trained.class_names]
    assert sorted(tr.name for tr in samples) == sorted(trained.class_names)
    assert samples[-1].name == "lower moon"  # the chosen class is drawn on top
    for tr in samples:
        k = trained.class_names.index(tr.name)
        want = view.samples.samples[view.samples.labels == k].numpy()
        np.testing.assert_allclose(np.stack(_xy(tr), 1), want, atol=1e-6)
    titles = [a.text for a in fig.layout.annotations]
    assert "lower moon" in titles[1] and "s = 2.5" in titles[2] and "s = 2.5" in titles[3]
    sc = view.samples.scores
    assert f"accuracy {100 * sc.accuracy:.1f} %" in text
    assert f"spread {sc.spread:.2f}" in text and "chance 50 %" in text
    assert "s > 1" in text and "ms" in text
    # s = 0: the guided field is the unconditional one, the arrows of panels 1 and 3 agree
    fig0, text0 = guide.guide_view(trained, 0, 0.0, 20, "network")
    a0 = [tr for tr in fig0.data if tr.mode == "lines"]
    np.testing.assert_allclose(_xy(a0[0])[0], _xy(a0[2])[0], atol=1e-5, equal_nan=True)
    assert "s = 0: the unconditional model" in text0


def test_view_of_the_ideal_denoiser_and_empty_boxes(trained):
    fig, text = guide.guide_view(trained, 0, None, None, "ideal")  # empty: the defaults
    assert f"s = {GUIDANCE_DEFAULT:g}" in text and "ideal denoiser" in text
    assert f"t = {trained.T // guide.T_FRACTION}**" in text
    assert "ε*_c" in fig.layout.annotations[1].text


def test_refresh_fills_the_class_picker_and_the_t_range(trained):
    klass, t, fig, text = guide.guide_refresh(trained, 7, "x", 10_000, "nope")
    assert klass["choices"] == [("upper moon", 0), ("lower moon", 1)] and klass["value"] == 0
    assert t["maximum"] == trained.T - 1 and t["value"] == trained.T - 1
    assert f"s = {GUIDANCE_DEFAULT:g}" in text and len(fig.data) > 10
    assert guide.after_train(trained, 1, 3.0, 5, "network")[0]["value"] == 1


# --- the trade-off curve -----------------------------------------------------------------------


def test_tradeoff_streams_the_curve_then_a_table(trained):
    out = list(guide.tradeoff(trained, 3.0, "network"))
    assert out[0][1].startswith(RUNNING)
    fig, md, record = out[-1]
    assert isinstance(record, guide.CurveRecord)
    assert [r.scale for r in record.rows] == list(guide.TRADEOFF_SCALES)
    assert record.step == trained.trainer.step and record.denoiser == "network"
    for c, key in enumerate(("accuracy", "spread", "class_sw1")):
        y = np.asarray(fig.data[c].y, dtype=np.float64)
        want = [getattr(r.scores, key) for r in record.rows]
        np.testing.assert_allclose(y, np.asarray(want) * (100 if key == "accuracy" else 1))
    # the current s is marked; spread falls from s = 0 to s = 10; accuracy rises
    assert sum(1 for s in fig.layout.shapes if s.x0 == 3.0) == 3
    acc = [r.scores.accuracy for r in record.rows]
    spread = [r.scores.spread for r in record.rows]
    assert acc[-1] > acc[0] + 0.3 and spread[-1] < spread[0] - 0.3
    assert "| s | 0 | 0.5 | 1 |" in md and "| accuracy |" in md and "| spread |" in md
    assert all(not line.startswith(RUNNING) for line in md.splitlines())
    # the s slider moves the marker without computing
    moved = guide.tradeoff_mark(record, 7.0)
    assert sum(1 for s in moved.layout.shapes if s.x0 == 7.0) == 3
    assert guide.tradeoff_mark(None, 7.0) == gr.skip()
    with pytest.raises(gr.Error):
        guide.tradeoff_mark(record, 12)
    # ... and the view at the same s shows the same accuracy as the curve's point
    _, text = guide.guide_view(trained, 0, 1.0, 10, "network")
    assert f"accuracy {100 * record.rows[2].scores.accuracy:.1f} %" in text


def test_tradeoff_can_be_stopped_and_says_so(trained):
    gen = guide.tradeoff(trained, 2.0, "ideal")
    first = next(gen)
    assert first[1].startswith(RUNNING)
    gen.close()  # ■ Stop closes the generator
    fig, text = guide.tradeoff_finished(first[1])
    assert fig == gr.skip() and text.startswith("Stopped")
    assert guide.tradeoff_finished("**Fidelity–diversity trade-off** …") == (gr.skip(),) * 2
    with pytest.raises(gr.Error):
        next(guide.tradeoff(trained, 2.0, "oracle"))
    with pytest.raises(gr.Error):
        next(guide.tradeoff(trained, math.inf, "network"))


def test_curve_record_and_figure_of_a_partial_curve(trained):
    rows = list(gd.tradeoff_curve(trained, scales=(0.0, 1.0), n=200))
    rec = guide.CurveRecord(rows=tuple(rows), denoiser="ideal", dataset="moons",
                            class_names=trained.class_names, step=0, n=200)
    fig = guide.curve_figure(rec)
    assert len(fig.data) == 3 and list(fig.data[0].x) == [0.0, 1.0]
    assert "ideal denoiser" in guide.curve_md(rec)
    assert guide.TRADEOFF_SCALES == gd.TRADEOFF_SCALES  # the page's copy (built without torch)


# --- the sub-tab builds -------------------------------------------------------------------------


def test_render_builds_the_guidance_sub_tab_with_named_events():
    with gr.Blocks() as demo:
        tab.render(gr.State({}))
    fns = {getattr(fn, "api_name", None): fn for fn in demo.fns.values()}
    for name in ("toy_guide_view", "toy_guide_tradeoff", "toy_guide_tradeoff_stop",
                 "toy_guide_tradeoff_finished", "toy_guide_mark", "toy_guide_after_train",
                 "toy_guide_on_select"):
        assert name in fns, name
    live = fns["toy_guide_view"]
    assert live.trigger_mode == "always_last" and live.concurrency_limit == 8
    assert fns["toy_guide_tradeoff"].concurrency_id == "sample"
    for name in ("toy_guide_tradeoff_stop", "toy_guide_tradeoff_finished", "toy_guide_mark",
                 "toy_guide_after_train", "toy_guide_on_select"):
        assert fns[name].api_visibility == "private", name
    # ▶ Train's input after Prediction is the "Train with class labels" box (inputs added
    # later, such as the drawing's state, come after it)
    train = fns["toy_train"]
    box = train.inputs[17]
    assert isinstance(box, gr.Checkbox) and "class labels" in box.label
    assert train.inputs[16].label == "Prediction"


def test_explanation_states_the_convention():
    text = tab.common.explanation("toy2d_guidance")
    for needle in ("Ho & Salimans", "p_\\text{uncond}", "s = 0", "s = 1", "s > 1",
                   "p(y \\mid x_t)^{s}", "\\sqrt{1-\\bar\\alpha_t}"):
        assert needle in text, needle


def test_served_train_with_labels_then_the_live_view():
    """Through the served app (gradio_client): ▶ Train with the box ticked, then the live view
    and a bad class, each answered in words. (The class picker's choices follow the trained set
    through the browser's chained events, which a client does not run: moons here.)"""
    from gradio_client import Client

    from tests.helpers import serving

    with gr.Blocks() as demo:
        tab.render(gr.State({}))
    with serving(demo) as url:
        client = Client(url, download_files=False, verbose=False)
        _, text, *_ = client.predict("moons", 1000, 0.05, 0, "preset", "cosine", 100, 64, 2,
                                     "sinusoidal", "silu", 1e-2, 256, 60, "eps", True,
                                     api_name="/toy_train")
        assert "with class labels" in text
        _, md = client.predict(1, 3.0, 20, "network", api_name="/toy_guide_view")
        assert "**s = 3**" in md and "class *lower moon*" in md and "accuracy" in md
        with pytest.raises(Exception, match="not one of the choices"):
            client.predict(5, 3.0, 20, "network", api_name="/toy_guide_view")
        with pytest.raises(Exception, match="from 0 to 10"):
            client.predict(0, 11, 20, "network", api_name="/toy_guide_view")
