"""Tab 3's live views (issue #14, item 1): the field follows every change of t, "▶ Play over t",
particle paths through the reverse chain, and the field and a sample preview while ▶ Train runs
(also from a worker process's live weights). Handlers and the workflow called directly; the
browser side is ``test_toy2d_live_browser.py``.

Index convention: t ∈ {0, …, T−1}; the reverse chain goes from t = T−1 to t = −1 (the sample).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import json  # noqa: E402
from dataclasses import replace  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diffusion_core.presets import TOY  # noqa: E402
from diffusion_core.sampling.config import SamplerSettings  # noqa: E402
from diffusion_core.workflows import toy2d as wf  # noqa: E402
from diffusion_core.workflows.remote import WorkerPool  # noqa: E402
from pages import jobs  # noqa: E402
from pages import toy2d as tab  # noqa: E402
from pages.toy2d import handlers  # noqa: E402
from pages.toy2d.figures import ANIM_POINTS, FIELD_FRAMES, GRID, subset  # noqa: E402
from pages.widgets.animated import AnimatedFigure  # noqa: E402

SHARED = {"kind": "cosine", "T": 1000}
BASE = dict(dataset="moons", n=1000, noise=0.05, seed=0, source="preset", kind="cosine", T=100,
            shared=SHARED, hidden=64, depth=2, time_embedding="sinusoidal", activation="silu",
            lr=3e-3, batch_size=128, steps=200)
SPEC = wf.DataSpec("moons", 512, 0.05, 0)
TRAIN = replace(TOY.train, batch_size=128, report_every=10)


def session() -> wf.Toy2DSession:
    return wf.Toy2DSession.create(SPEC, TOY.schedule, TOY.model, TRAIN)


@pytest.fixture(scope="module")
def trained():
    return list(tab.train(None, **{**BASE, "steps": 300}))[-1][0]


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(1)
    yield p
    p.close()


def _xy(trace):
    return np.asarray(trace.x, dtype=np.float64), np.asarray(trace.y, dtype=np.float64)


# --- the field at every t, and played over t --------------------------------------------------


def test_field_frames_walk_t_down_on_one_grid(trained):
    frames = wf.field_frames(trained, frames=FIELD_FRAMES, grid_size=GRID)
    ts = [f.t for f in frames]
    assert ts[0] == trained.T - 1 and ts[-1] == 0 and len(ts) == FIELD_FRAMES
    assert all(a > b for a, b in zip(ts, ts[1:], strict=False))  # the reverse chain's order
    for f in frames[1:]:
        np.testing.assert_array_equal(f.grid, frames[0].grid)  # arrows stay put
    # each frame is the t slider's field at its t (the grid pinned to the frames' view)
    k = len(frames) // 2
    one = wf.vector_field(trained, ts[k], grid_size=GRID, half=frames[0].half)
    np.testing.assert_allclose(one.pred_eps, frames[k].pred_eps, atol=1e-6)
    # the view holds the widest cloud (x_T is N(0, I)) and the data
    assert frames[0].half >= wf.half_width(frames[0].x_t, trained.data) - 1e-9
    with pytest.raises(ValueError):
        wf.field_frames(trained, frames=1)


def test_play_over_t_sends_client_side_frames(trained):
    fig = tab.field_animation(trained, "learned")
    assert isinstance(fig, AnimatedFigure) and len(fig.frames) == FIELD_FRAMES
    steps = fig.layout.sliders[0].steps
    assert steps[0].label.startswith(f"t = {trained.T - 1} · ᾱ = ")
    assert steps[-1].label.startswith("t = 0 · ᾱ = ")
    # frame k's arrows are the field at its t: shaft directions = −ε̂ there
    frames = wf.field_frames(trained, frames=FIELD_FRAMES, grid_size=GRID)
    k = 7
    cloud, lines = fig.frames[k].data
    lx, ly = _xy(lines)
    shafts = np.stack([lx[1::7] - lx[0::7], ly[1::7] - ly[0::7]], 1)
    eps = frames[k].pred_eps
    cos = (shafts * -eps).sum(1) / (np.linalg.norm(shafts, axis=1) * np.linalg.norm(eps, axis=1))
    assert np.all(cos > 0.999)
    shown = subset(len(trained.data), ANIM_POINTS, trained.spec.seed)
    np.testing.assert_allclose(np.stack(_xy(cloud), 1), frames[k].x_t.numpy()[shown],
                               atol=1e-5)
    # "Both" moves both arrow sets; the frames ride in layout.meta through gr.Plot
    both = tab.field_animation(trained, "both")
    assert len(both.frames[0].data) == 3 and list(both.frames[0].traces) == [0, 1, 2]
    meta = json.loads(both.to_json())["layout"]["meta"]
    assert len(meta["dl_frames"]) == FIELD_FRAMES
    with pytest.raises(gr.Error):
        tab.field_animation(trained, "arrows")
    with pytest.warns(UserWarning, match="Train a model first"):
        assert tab.field_animation(None) == gr.skip()


def test_the_slider_field_is_light_and_still_exact(trained):
    fig = tab.vector_field(trained, 20)
    text = fig.to_json()
    # float32 base64 arrays, no long lists of decimals, ≤ 500 points of x_t: ≈ 71 kB (it was
    # 103 kB with all of the default 2,000 points)
    assert len(text) < 74_000, len(text)
    d = json.loads(text)
    for trace in d["data"]:
        for key in ("x", "y"):
            assert isinstance(trace[key], dict) and trace[key]["dtype"] == "f4"
    assert d["data"][2]["customdata"]["dtype"] == "f4"
    assert "t = 20" in d["layout"]["title"]["text"]
    # the hover values are still ε̂ at the grid
    grid = np.stack(_xy(fig.data[2]), 1)
    with torch.inference_mode():
        eps = trained.model(torch.tensor(grid, dtype=torch.float32),
                            torch.full((GRID**2,), 20)).double().numpy()
    np.testing.assert_allclose(np.asarray(fig.data[2].customdata)[:, :2], eps, atol=1e-5)


# --- live views while training ---------------------------------------------------------------


def test_live_preview_mid_run_is_computed_by_the_worker_from_its_live_weights(pool):
    local, remote = session(), session()
    run_l = local.train(40)
    run_r = remote.train(40, pool=pool)
    next(run_l), next(run_r)
    next(run_l), next(run_r)  # 20 steps each
    before = remote.trainer.sampling_network().state_dict()
    live = wf.live_preview(remote, 50, n_samples=64, seed=3)  # computed in the worker
    want = wf.live_preview(local, 50, n_samples=64, seed=3)  # the local EMA after 20 steps
    assert live.step == want.step == 20
    assert torch.equal(live.samples, want.samples)
    np.testing.assert_array_equal(live.field.pred_eps, want.field.pred_eps)
    # the caller's own copy is still at step 0: its field differs
    with torch.inference_mode():
        grid = torch.from_numpy(live.field.grid).float()
        own = remote.model(grid, torch.full((len(grid),), 50)).double().numpy()
    assert not np.allclose(own, live.field.pred_eps, atol=1e-4)
    assert all(torch.equal(v, before[k])
               for k, v in remote.trainer.sampling_network().state_dict().items())
    assert [p.step for p in run_r] == [30, 40]  # the preview did not advance the run
    assert [p.step for p in run_l] == [30, 40]
    assert remote._run is None  # ended: the preview comes from the session's own weights
    after = wf.live_preview(remote, 50, n_samples=64, seed=3)
    np.testing.assert_array_equal(after.field.pred_eps, wf.live_preview(local, 50, n_samples=64,
                                                                        seed=3).field.pred_eps)


def test_live_preview_is_deterministic_and_lands_on_the_data(trained):
    a = wf.live_preview(trained, 50, n_samples=300, seed=0)
    b = wf.live_preview(trained, 50, n_samples=300, seed=0)
    assert a.samples.shape == (300, 2) and a.step == trained.trainer.step == 300
    assert torch.equal(a.samples, b.samples) and a.field.t == 50
    # 300 DDIM-20 samples of the trained model sit on the moons (their nearest training
    # point is close; pure noise would be ~0.3 away)
    d = torch.cdist(a.samples.double(), trained.data.double()).min(dim=1).values
    assert float(d.median()) < 0.08, float(d.median())
    noise = torch.randn(300, 2, generator=torch.Generator().manual_seed(1))
    assert float(torch.cdist(noise.double(), trained.data.double()).min(dim=1).values
                 .median()) > 0.15


def test_training_yields_live_field_and_samples(monkeypatch):
    monkeypatch.setattr(handlers, "LIVE_EVERY_S", 0.0)  # a preview at every step's report
    out = list(tab.train(None, **{**BASE, "steps": 12}, t=30))
    assert all(len(o) == 7 for o in out)
    live = [o for o in out if o[5] != gr.skip()]
    state = out[-1][0]
    assert len(live) >= 2 and live[-1] is out[-1]  # mid-run previews, and one at the end
    steps = [int(o[5].layout.title.text.split("step ")[1].replace(",", "")) for o in live]
    assert steps == sorted(steps) and steps[-1] == state.trainer.step == 12 and steps[0] < 12
    field, samples = out[-1][5], out[-1][6]
    # a new model looks at its middle t, where its t slider moves (T = 200: t = 100)
    assert f"t = {state.T // 2}," in field.layout.title.text
    assert len(field.data[1].x) == 7 * GRID**2
    assert len(samples.data[1].x) == handlers.PREVIEW_SAMPLES
    # continuing the model: the live field looks at the t given (clamped into 0..T−1)
    again = list(tab.train(state, **{**BASE, "steps": 2}, t=10_000))[-1]
    assert f"t = {state.T - 1}," in again[5].layout.title.text
    # the default cadence (2.5 s) gives a short run only the final preview
    monkeypatch.setattr(handlers, "LIVE_EVERY_S", 2.5)
    quick = list(tab.train(state, **{**BASE, "steps": 5}, t=5))
    assert [o[5] != gr.skip() for o in quick].count(True) == 1


def test_live_views_in_a_worker_show_the_weights_of_that_moment(monkeypatch, pool):
    monkeypatch.setattr(handlers, "LIVE_EVERY_S", 0.0)
    monkeypatch.setattr(jobs, "train_pool", lambda: pool)
    out = list(tab.train(None, **{**BASE, "steps": 10}, t=40))
    state = out[-1][0]
    live = [o for o in out if o[5] != gr.skip()]
    titles = [o[5].layout.title.text for o in live]
    assert len(live) >= 3, titles
    # the mid-run fields differ from each other: they are the worker's weights, not the
    # caller's copy (which stays at the run's start until the run ends)
    arrows = [np.asarray(o[5].data[1].x, dtype=np.float64) for o in live]
    assert not np.allclose(arrows[0], arrows[1], equal_nan=True)
    # the last preview is the trained model's own field (a new model: at its middle t)
    vf = wf.vector_field(state, state.T // 2, grid_size=GRID)
    np.testing.assert_allclose(arrows[-1][0::7], vf.grid[:, 0], atol=1e-5)
    shafts = arrows[-1][1::7] - arrows[-1][0::7]
    assert np.all(np.sign(shafts[np.abs(shafts) > 1e-3])
                  == np.sign(-vf.pred_eps[:, 0][np.abs(shafts) > 1e-3]))
    assert state.trainer.step == 10 and len(state.losses) == 10


# --- particle paths through the reverse chain -------------------------------------------------


def test_traced_points_keep_every_step_and_change_nothing_else(trained, pool):
    settings = SamplerSettings(sampler="ddim", steps=30, eta=0.0, spacing="trailing")
    plain = wf.sample_session(trained, settings, 400, 3, x0_box=True)
    traced = wf.sample_session(trained, settings, 400, 3, x0_box=True, trace=6)
    assert plain.paths is None and plain.path_t == ()
    assert torch.equal(plain.samples, traced.samples)  # tracing does not change the chain
    assert traced.paths.shape == (31, 6, 2)
    assert torch.equal(traced.paths[0], traced.x_T[:6])
    assert torch.equal(traced.paths[-1], traced.samples[:6])
    assert traced.path_t[0] == trained.T - 1 and traced.path_t[-1] == -1
    assert len(traced.path_t) == 31 and all(a > b for a, b in zip(traced.path_t,
                                                                    traced.path_t[1:],
                                                                    strict=False))
    # the paths' frames agree with the cloud's kept frames at the same t
    for frame, t in zip(traced.frames, traced.frame_t, strict=True):
        i = traced.path_t.index(t)
        assert torch.equal(traced.paths[i], frame[:6])
    # in a worker process (the served app): the same paths come back
    run = wf.Toy2DSampling(trained, settings, 400, 3, x0_box=True, trace=6)
    for _ in pool.iterate(run, returns=wf.Toy2DSampling.STATE):
        pass
    assert torch.equal(run.result().paths, traced.paths)
    with pytest.raises(ValueError, match="trace"):
        wf.Toy2DSampling(trained, settings, 10, 0, trace=wf.MAX_TRACE + 1)


def test_sample_draws_the_paths_under_the_samples_and_their_ends_over_them(trained):
    fig, md = list(tab.sample(trained, "ddpm", 50, 0.0, 500, 0, False, "network", 3))[-1]
    names = [tr.name for tr in fig.data]
    assert names[0] == "training data" and names[-1] == "samples"
    lines = [tr for tr in fig.data if (tr.name or "").startswith("path of point")]
    assert len(lines) == 3 and all(len(tr.x) == 51 for tr in lines)  # x_{T−1} … x_{−1}
    start = next(tr for tr in fig.data if tr.name == "start (pure noise)")
    end = next(tr for tr in fig.data if tr.name == "end (sample)")
    for j, tr in enumerate(lines):
        assert (tr.x[0], tr.y[0]) == (start.x[j], start.y[j])
        assert (tr.x[-1], tr.y[-1]) == (end.x[j], end.y[j])
    # the paths end on the samples the animation shows at its last frame
    last = fig.frames[-1].data[0]
    np.testing.assert_allclose([end.x[0], end.y[0]], [last.x[0], last.y[0]], atol=1e-6)
    assert list(fig.frames[0].traces) == [len(fig.data) - 1]  # frames move the samples only
    # the lines lie under the samples, the start and end markers over them
    assert start.zorder == end.zorder == 1 and not fig.data[-1].zorder
    assert all(not tr.zorder for tr in lines)
    assert "paths of 3 points through all 50 steps" in md
    # no paths asked (0 or an empty box): none drawn
    fig0, _ = list(tab.sample(trained, "ddpm", 50, 0.0, 500, 0, False, "network", None))[-1]
    assert len(fig0.data) == 2
    for bad in (-1, 21, 2.5, "many"):
        with pytest.raises(gr.Error, match="Trace paths"):
            list(tab.sample(trained, "ddpm", 50, 0.0, 500, 0, False, "network", bad))


# --- wiring ------------------------------------------------------------------------------------


def test_the_tab_wires_live_events():
    import app

    demo = app.build_demo()
    fns = {getattr(fn, "api_name", None): fn for fn in demo.fns.values()}
    field = fns["toy_vector_field"]
    triggers = {(demo.blocks[i].label if i in demo.blocks else None, name)
                for i, name in field.targets}
    assert ("t", "input") in triggers and ("t", "release") not in triggers
    assert field.trigger_mode == "always_last"
    train = fns["toy_train"]
    assert [getattr(c, "label", None) for c in train.inputs][-1] == "t"
    assert len(train.outputs) == 7
    assert fns["toy_field_play"].inputs[-1].label == "Show"
    assert fns["toy_field_play_start"].api_visibility == "private"
    assert [getattr(c, "label", None) for c in fns["toy_sample"].inputs][-1] == (
        "Trace paths of N points")
