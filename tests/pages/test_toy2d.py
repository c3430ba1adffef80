"""Tab 3 (2D toy trainer, ``pages/toy2d``): handlers called directly, state kept per session,
bad input. The workflow underneath is tested in ``tests/core/workflows/test_toy2d.py``."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diffusion_core.data.toy2d import make_2d  # noqa: E402
from diffusion_core.data.toy2d_spec import TOY_SPECS  # noqa: E402
from diffusion_core.evaluation.distances import sliced_wasserstein  # noqa: E402
from diffusion_core.forward import q_sample  # noqa: E402
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig  # noqa: E402
from diffusion_core.workflows.toy2d import Toy2DSession, fixed_noise  # noqa: E402
from pages import common  # noqa: E402
from pages import toy2d as tab  # noqa: E402
from pages.toy2d.figures import (  # noqa: E402
    FIELD_POINTS,
    FORWARD_FRAMES,
    GRID,
    MAX_FRAMES,
    SHOW_POINTS,
    subset,
)
from pages.toy2d.inputs import DATASETS, PRESET  # noqa: E402
from pages.widgets.animated import AnimatedFigure  # noqa: E402
from tests.helpers import (
    diverge_at_step,  # noqa: E402
    serving,  # noqa: E402
)

SHARED = ScheduleConfig(kind="cosine", T=1000).to_dict()
# dataset, n, noise, seed, schedule source, kind, T, shared, width, depth, emb, act, lr, batch
BASE = dict(dataset="moons", n=1000, noise=0.05, seed=0, source="preset", kind="cosine", T=100,
            shared=SHARED, hidden=64, depth=2, time_embedding="sinusoidal", activation="silu",
            lr=3e-3, batch_size=128, steps=200)


def run_train(state=None, **overrides):
    """Run the train generator to the end; return the last yielded tuple."""
    return list(tab.train(state, **{**BASE, **overrides}))[-1]


def params(model):
    return torch.cat([p.detach().flatten().clone() for p in model.parameters()])


@pytest.fixture(scope="module")
def trained():
    return run_train(steps=300)[0]


def _xy(trace):
    return np.asarray(trace.x, dtype=np.float64), np.asarray(trace.y, dtype=np.float64)


# --- data plot -----------------------------------------------------------------------------


def test_data_plot_shows_the_data_set_and_changes_with_it():
    moons = tab.data_plot("moons", 500, 0.05, 0)
    circles = tab.data_plot("circles", 500, 0.05, 0)
    x, y = _xy(moons.data[0])
    want = make_2d("moons", 500, noise=0.05, seed=0).numpy()
    np.testing.assert_allclose(np.stack([x, y], 1), want, atol=1e-6)
    xc, yc = _xy(circles.data[0])
    assert len(xc) == 500 and not np.allclose(xc, x)
    assert "moons" in moons.layout.title.text and "circles" in circles.layout.title.text
    # a different seed or noise changes the points too
    assert not np.allclose(_xy(tab.data_plot("moons", 500, 0.05, 1).data[0])[0], x)
    assert moons.layout.xaxis.title.text and moons.layout.yaxis.title.text


def test_dataset_change_sets_its_default_noise_and_big_sets_are_subsampled():
    fig, noise = tab.dataset_changed("gaussians8", 20_000, 3)
    assert noise == TOY_SPECS["gaussians8"].default_noise
    assert len(fig.data[0].x) == SHOW_POINTS and "showing" in fig.layout.title.text
    assert len(DATASETS) >= 6


# --- training --------------------------------------------------------------------------------


def test_short_training_reduces_the_loss_and_leaves_a_model_in_state():
    out = list(tab.train(None, **BASE))
    state, fig, text = out[-1][0], out[-1][1], out[-1][2]
    assert isinstance(state, Toy2DSession)
    assert state.trainer.step == 200 and len(state.losses) == 200
    assert np.mean(state.losses[-50:]) < 0.8 * np.mean(state.losses[:20])
    assert "200 / 200" in text and "Started a new model" in text
    # every yield carries the same live state; figures show the recorded losses
    assert all(o[0] is state for o in out)
    curve = fig.data[0]
    assert curve.y is not None and len(curve.y) == 200
    np.testing.assert_allclose(np.asarray(curve.y), state.losses, rtol=1e-6)
    assert fig.layout.yaxis.type == "log"
    per_t = fig.data[2]  # the right panel: the loss by t in ε units, this model's line
    np.testing.assert_allclose(np.asarray(per_t.y, dtype=float),
                               state.trainer.timestep_eps_loss(), rtol=1e-6)
    assert len(fig.data) == 3 and "this model" in per_t.name
    # the first yield moves the t slider to the model's T
    assert out[0][3]["maximum"] == state.T - 1 == PRESET.schedule.T - 1


def test_second_press_continues_or_restarts_and_says_which(trained):
    state = run_train(steps=50)[0]
    before = state.trainer
    again, _, text, *_ = run_train(state, steps=60, lr=1e-3, batch_size=64)
    assert again is state and again.trainer is before and state.trainer.step == 110
    assert "Continuing" in text and len(state.losses) == 110
    assert state.trainer.config.lr == 1e-3 and state.trainer.config.batch_size == 64
    other, _, text, *_ = run_train(state, steps=20, dataset="circles")
    assert other is not state and other.trainer.step == 20 and "data set changed" in text
    other2, _, text, *_ = run_train(other, steps=20, dataset="circles", hidden=128)
    assert other2.trainer.step == 20 and "model changed" in text


def test_closing_the_generator_midway_keeps_the_partial_model():
    gen = tab.train(None, **{**BASE, "steps": 20_000})
    last, gaps, t_prev = None, [], time.perf_counter()
    for out in gen:
        now = time.perf_counter()
        gaps.append(now - t_prev)
        t_prev = now
        last = out
        if out[0].trainer.step >= 150:
            break
    gen.close()  # what the Stop button does
    state = last[0]
    done = state.trainer.step
    assert 150 <= done < 20_000 and len(state.losses) == done
    assert max(gaps[1:]) < 0.5  # Stop reacts within half a second
    # the stored model is the trained one: it matches a fresh run of the same steps
    fresh = Toy2DSession.create(state.spec, state.schedule_config, state.model_config,
                                state.trainer.config)
    assert not torch.equal(params(fresh.trainer.model), params(state.trainer.model))
    for p in fresh.trainer.run(20_000):  # same lr schedule (cosine over 20 000 steps)
        if p.step == done:
            break
    torch.testing.assert_close(params(fresh.trainer.model), params(state.trainer.model))


def test_nan_loss_warns_and_keeps_the_model(monkeypatch):
    diverge_at_step(monkeypatch, 30)
    with pytest.warns(UserWarning, match="diverged"):
        out = list(tab.train(None, **BASE))
    state, _, text, *_ = out[-1]
    assert state.trainer.step == 30 and "Diverged" in text
    assert all(math.isfinite(v) for v in params(state.trainer.model).tolist())


def test_schedule_sources(trained):
    shared = ScheduleConfig(kind="linear", T=40, scale_to_T=True).to_dict()
    state = run_train(source="shared", shared=shared, steps=5)[0]
    assert state.schedule_config == ScheduleConfig.from_dict(shared) and state.T == 40
    assert state.model_config.num_timesteps == 40
    state = run_train(source="custom", kind="quadratic", T=30, steps=5)[0]
    assert state.schedule_config.kind == "quadratic" and state.T == 30
    assert state.schedule_config.scale_to_T
    assert trained.schedule_config == PRESET.schedule
    with pytest.raises(gr.Error, match="Tab 1"):
        run_train(source="shared", shared={"kind": "nope"})
    with pytest.raises(gr.Error):
        run_train(source="custom", kind="linear", T=10)  # β_end·1000/T ≥ 1
    upd = tab.shared_schedule_changed(shared, "preset")
    assert upd["value"] == "preset" and "linear, T = 40" in upd["choices"][1][0]


@pytest.mark.parametrize("field,value", [
    ("n", 10**9), ("n", "many"), ("lr", -1), ("lr", float("nan")), ("steps", 0),
    ("steps", 2.5), ("steps", 20_001), ("batch_size", "abc"), ("batch_size", True),
    ("noise", -0.1), ("seed", None),
    ("dataset", "bananas"), ("hidden", 10_000), ("depth", 0), ("time_embedding", "fourier"),
    ("activation", "tanh"), ("T", 10**6), ("seed", -1),
])
def test_bad_training_input_raises_gr_error(field, value):
    overrides = {field: value}
    if field == "T":
        overrides["source"] = "custom"
    with pytest.raises(gr.Error):
        next(tab.train(None, **{**BASE, **overrides}))


def test_empty_recipe_boxes_mean_the_preset():
    out = next(tab.train(None, **{**BASE, "lr": None, "batch_size": "", "steps": " "}))
    cfg = out[0].trainer.config
    p = PRESET.train
    assert (cfg.lr, cfg.batch_size, cfg.steps) == (p.lr, p.batch_size, p.steps)


def test_too_big_model_is_refused_before_it_can_block_stop():
    with pytest.raises(gr.Error, match="too big"):
        next(tab.train(None, **{**BASE, "hidden": 512, "depth": 6, "batch_size": 4096}))


def test_bad_data_plot_input():
    for args in [("moons", 10**9, 0.05, 0), ("moons", 100, "x", 0), ("nope", 100, 0.1, 0)]:
        with pytest.raises(gr.Error):
            tab.data_plot(*args)


def test_two_sessions_stay_independent():
    a = run_train(steps=40)[0]
    b = run_train(steps=40, dataset="circles")[0]
    b_params = params(b.trainer.model)
    a2 = run_train(a, steps=40)[0]
    assert a2 is a and a.trainer.step == 80 and b.trainer.step == 40
    torch.testing.assert_close(params(b.trainer.model), b_params)
    assert a.trainer.model is not b.trainer.model and a.data is not b.data
    # the state's initial value is None and gr.State deep-copies it per session
    assert len(b.losses) == 40


# --- vector field ----------------------------------------------------------------------------


def test_vector_field_draws_one_arrow_per_grid_point(trained):
    t = 20
    fig = tab.vector_field(trained, t)
    cloud, lines, bases = fig.data
    g = GRID * GRID
    assert len(bases.x) == g
    lx, ly = _xy(lines)
    assert len(lx) == 7 * g and np.isnan(lx).sum() == 2 * g and np.isnan(ly).sum() == 2 * g
    # arrow direction = −ε̂_θ(grid, t); hover data = ε̂
    grid = np.stack(_xy(bases), 1)
    with torch.inference_mode():
        eps = trained.model(torch.tensor(grid, dtype=torch.float32),
                            torch.full((g,), t)).double().numpy()
    shafts = np.stack([lx[1::7] - lx[0::7], ly[1::7] - ly[0::7]], 1)
    cos = (shafts * -eps).sum(1) / (np.linalg.norm(shafts, axis=1) * np.linalg.norm(eps, axis=1))
    assert np.all(cos > 0.999)
    np.testing.assert_allclose(np.asarray(bases.customdata)[:, :2], eps, atol=1e-3)
    # the longest arrow spans 0.9 grid cells (normalised lengths)
    cell = grid[1, 0] - grid[0, 0]
    assert np.linalg.norm(shafts, axis=1).max() == pytest.approx(0.9 * cell, rel=1e-4)
    # the cloud is q_sample of the data with the session's fixed ε (a fixed subset of it)
    x_t = q_sample(trained.schedule, trained.data, t, trained.eps).numpy()
    shown = subset(len(x_t), FIELD_POINTS, trained.spec.seed)
    np.testing.assert_allclose(np.stack(_xy(cloud), 1), x_t[shown], atol=1e-5)
    assert "normalised" in fig.layout.title.text
    # another t gives another cloud; the same t gives the same one
    assert not np.allclose(_xy(tab.vector_field(trained, 45).data[0])[0], _xy(cloud)[0])
    np.testing.assert_array_equal(_xy(tab.vector_field(trained, t).data[0])[0], _xy(cloud)[0])
    with pytest.raises(gr.Error):
        tab.vector_field(trained, trained.T)


def test_no_model_warns_instead_of_crashing():
    with pytest.warns(UserWarning, match="Train a model first"):
        out = tab.vector_field(None, 3)
    assert isinstance(out, dict)  # gr.skip(): the plot keeps what it shows
    with pytest.warns(UserWarning, match="Train a model first"):
        outs = list(tab.sample(None, "ddpm", 10, 0.0, 100, 0))
    assert "Train a model first" in outs[-1][1]
    assert tab.vector_field_after_train(None, 3) == gr.skip()


# --- sampling --------------------------------------------------------------------------------


def test_sampling_returns_an_animation_and_quality_numbers(trained):
    outs = list(tab.sample(trained, "ddpm", None, 0.0, 800, 1))
    fig, md = outs[-1]
    assert isinstance(fig, AnimatedFigure)
    T = trained.T
    # one frame for x_T plus one per kept step; long chains are subsampled to MAX_FRAMES
    assert len(fig.frames) == min(T + 1, MAX_FRAMES)
    # learner-facing words at the ends, the index in the points' hover (issue #14)
    assert fig.layout.sliders[0].steps[-1].label == "samples"
    assert fig.layout.sliders[0].steps[0].label == "pure noise"
    assert "t = −1" in fig.frames[-1].data[0].hovertemplate
    assert fig.layout.updatemenus[0].buttons[0].args[0] is None  # ▶ Play
    data_trace, samples = fig.data
    assert data_trace.marker.color == common.DATA_COLOR
    assert samples.marker.color == common.SAMPLE_COLOR
    # the last frame is the final sample; the first one is N(0, I)
    np.testing.assert_array_equal(np.asarray(fig.frames[-1].data[0].x), np.asarray(samples.x))
    first = np.stack(_xy(fig.frames[0].data[0]), 1)
    assert 0.7 < first.std() < 1.3
    # numbers in the text agree with the metric on the final points (recomputed here)
    sw = float(md.split("SW1 = ")[1].split("*")[0])
    floor = float(md.split("· floor ")[1].split(" ")[0])
    assert 0 < floor < sw < 0.5
    fresh = make_2d("moons", 800, noise=0.05, seed=1000)
    pts = np.stack(_xy(samples), 1)
    assert sliced_wasserstein(pts, fresh, seed=1) == pytest.approx(sw, abs=1e-3)
    assert "NN ratio = " in md
    # fixed ranges so the animation does not jump
    assert fig.layout.xaxis.range is not None and fig.layout.yaxis.range is not None


def test_sampling_frames_are_subsampled_and_reach_the_browser(trained):
    fig, md = list(tab.sample(trained, "ddim", 25, 0.5, 200, 0, True))[-1]
    assert len(fig.frames) == 26 and "DDIM, 25 of 200 steps (trailing), η = 0.5" in md
    long_state = run_train(source="custom", kind="cosine", T=300, steps=5)[0]
    fig, _ = list(tab.sample(long_state, "ddpm", None, 0.0, 50, 0))[-1]
    assert len(fig.frames) <= MAX_FRAMES
    payload = json.loads(fig.to_json())
    assert "frames" not in payload  # gr.Plot would drop them ...
    assert len(payload["layout"]["meta"]["dl_frames"]) == len(fig.frames)  # ... so they ride here
    assert payload["layout"]["meta"]["dl_key"]


@pytest.mark.parametrize("args", [
    ("euler", 10, 0.0, 100, 0), ("ddpm", 10**6, 0.0, 100, 0), ("ddim", 10, 2.0, 100, 0),
    ("ddpm", 10, 0.0, 10**9, 0), ("ddpm", "x", 0.0, 100, 0), ("ddpm", 10, 0.0, 100, -5),
])
def test_bad_sampling_input_raises_gr_error(trained, args):
    with pytest.raises(gr.Error):
        list(tab.sample(trained, *args))


def test_sampling_can_be_stopped(trained):
    state = run_train(source="custom", kind="linear", T=2000, steps=2)[0]
    gen = tab.sample(state, "ddpm", None, 0.0, 5000, 0)
    t0 = time.perf_counter()
    first = next(gen)
    assert "Sampling" in first[1]
    next(gen)
    assert time.perf_counter() - t0 < 1.0
    gen.close()


# --- forward animation -----------------------------------------------------------------------


def test_forward_animation_uses_eq4_with_one_fixed_noise():
    fig = tab.forward_animation("moons", 500, 0.05, 0, "custom", "linear", 100, SHARED)
    assert isinstance(fig, AnimatedFigure) and len(fig.frames) == FORWARD_FRAMES + 1
    pts = make_2d("moons", 500, noise=0.05, seed=0)
    eps = fixed_noise(500, 0)
    sched = NoiseSchedule(ScheduleConfig(kind="linear", T=100, beta_start=1e-4, beta_end=0.02,
                                         scale_to_T=True))
    np.testing.assert_allclose(np.stack(_xy(fig.frames[0].data[0]), 1), pts.numpy(), atol=1e-6)
    np.testing.assert_allclose(np.stack(_xy(fig.frames[-1].data[0]), 1),
                               q_sample(sched, pts, 99, eps).numpy(), atol=1e-5)
    # ᾱ_99 ≈ 2e-5 here: the last frame is named "pure noise", its t and ᾱ are in the hover
    assert fig.layout.sliders[0].steps[-1].label == "pure noise"
    assert fig.layout.sliders[0].steps[0].label == "data"
    assert "t = 99 · ᾱ = " in fig.frames[-1].data[0].hovertemplate
    with pytest.raises(gr.Error):
        tab.forward_animation("moons", 500, 0.05, 0, "custom", "linear", 1, SHARED)


# --- the tab builds --------------------------------------------------------------------------


def test_render_builds_with_named_events():
    import app

    demo = app.build_demo()
    names = {getattr(fn, "api_name", None) for fn in demo.fns.values()}
    for name in ("toy_train", "toy_train_stop", "toy_sample", "toy_sample_stop",
                 "toy_vector_field", "toy_train_finished", "toy_sample_finished", "toy_forward",
                 "toy_forward_on_select", "toy_data_plot", "toy_dataset", "toy_shared_schedule",
                 "toy_bound", "toy_bound_finished", "toy_bound_stop",
                 "toy_error_by_t_finished"):
        assert name in names


def test_stop_text_reports_the_kept_model(trained):
    assert "Stopped" in tab.train_stopped(trained)
    assert f"{trained.trainer.step:,} steps" in tab.train_stopped(trained)
    assert "before any training" in tab.train_stopped(None)


def test_after_train_and_after_sample_handlers(trained):
    skip = gr.skip()
    assert tab.train_finished(None, 3, "x") == (skip,) * 5
    # after a Stop the last text still says "Training": it becomes "Stopped", figures refresh
    field, loss, text, *rest = tab.train_finished(trained, 10, "**Training: step 5 / 9** …")
    assert len(field.data[2].x) == GRID**2 and "Stopped" in text and rest == [skip, skip]
    assert len(loss.data[0].y) == len(trained.losses)
    # after success the generator's own final text and figure stay
    field, loss, text, *_ = tab.train_finished(trained, 10, "**Done: step 9 / 9** · loss 1")
    assert len(field.data) == 3 and loss == skip and text == skip
    assert tab.sample_finished("**SW1 = 0.1** · floor 0.01") == (skip, skip)
    fig, text = tab.sample_finished("Sampling (DDPM, 50 steps): step 3 / 50 …")
    assert fig == skip and text == "Sampling stopped: (DDPM, 50 steps): step 3 / 50"


@pytest.fixture(scope="module")
def server():
    with gr.Blocks() as demo:
        tab.render(gr.State(ScheduleConfig().to_dict()))
    with serving(demo) as url:
        yield url


def test_cancelled_training_keeps_the_model_in_the_session(server):
    from gradio_client import Client

    client = Client(server, download_files=False, verbose=False)
    args = ["moons", 1000, 0.05, 0, "preset", "cosine", 100, 64, 2, "sinusoidal", "silu",
            3e-3, 128]
    job = client.submit(*args, 20_000, api_name="/toy_train")
    deadline = time.time() + 20
    while time.time() < deadline and len(job.outputs()) < 3:
        time.sleep(0.05)
    assert len(job.outputs()) >= 3, "training did not stream progress"
    job.cancel()
    time.sleep(0.5)
    # The same session presses Train again: it continues the model that Stop left behind.
    _, text, *_ = client.predict(*args, 10, api_name="/toy_train")
    done_before = int(text.split("Continuing the model from step ")[1].split(" ")[0]
                      .replace(",", ""))
    assert 0 < done_before < 100_000
    # ... and the cancelled generator really stopped: nothing else trains that model
    time.sleep(0.3)
    _, text, *_ = client.predict(*args, 10, api_name="/toy_train")
    assert f"Continuing the model from step {done_before + 10:,} " in text
    # a second client is a second session: it starts from scratch
    other = Client(server, download_files=False, verbose=False)
    _, text2, *_ = other.predict(*args, 10, api_name="/toy_train")
    assert "Started a new model" in text2


@pytest.mark.parametrize("name", DATASETS)
def test_every_data_set_plots_inside_the_view(name):
    fig = tab.data_plot(name, 300, 0.02, 5)
    x, y = _xy(fig.data[0])
    lo, hi = fig.layout.xaxis.range
    assert len(x) == 300 and lo < x.min() and x.max() < hi and lo < y.min() and y.max() < hi


@pytest.mark.parametrize("emb", ["onehot_linear", "scalar"])
@pytest.mark.parametrize("act", ["relu", "gelu", "leaky_relu"])
def test_every_time_embedding_and_activation_trains(emb, act):
    state = run_train(steps=5, time_embedding=emb, activation=act)[0]
    assert state.model_config.time_embedding == emb and state.model_config.activation == act
    assert state.trainer.step == 5 and all(math.isfinite(v) for v in state.losses)
    assert len(tab.vector_field(state, 0).data[2].x) == GRID**2
