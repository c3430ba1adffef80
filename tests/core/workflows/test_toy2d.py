"""The 2D toy session (tab 3's workflow): training, restart rule, step cost, vector field,
sampling with frames and quality, forward-diffusion frames."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion_core import presets
from diffusion_core.data.toy2d import make_2d
from diffusion_core.evaluation.toy2d import toy2d_quality
from diffusion_core.forward import q_sample
from diffusion_core.sampling import SamplerSettings, sample_final
from diffusion_core.sampling.spacing import evenly_spaced
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig
from diffusion_core.training import TrainingDiverged
from diffusion_core.workflows import toy2d as wf
from tests.helpers import diverge_at_step

ROOT = Path(__file__).resolve().parents[3]
SPEC = wf.DataSpec("moons", 1000, 0.05, 0)
SCHEDULE = presets.TOY.schedule
MODEL = replace(presets.TOY.model, hidden=64, depth=2, num_timesteps=SCHEDULE.T)
TRAIN = replace(presets.TOY.train, lr=3e-3, batch_size=128, steps=200, report_every=1)


def params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in model.parameters()])


def new_session(spec=SPEC, schedule=SCHEDULE, model=MODEL, train=TRAIN) -> wf.Toy2DSession:
    return wf.Toy2DSession.create(spec, schedule, model, train)


@pytest.fixture(scope="module")
def trained() -> wf.Toy2DSession:
    session = new_session()
    for _ in session.train(300):
        pass
    return session


def test_workflow_imports_no_ui_library():
    code = ("import sys, diffusion_core.workflows.toy2d\n"
            "print('UI', sorted(m for m in ('gradio', 'plotly') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "UI []" in out.stdout
    import diffusion_core.workflows as package

    assert package.Toy2DSession is wf.Toy2DSession  # the lazy re-export


# --- the session and training ----------------------------------------------------------------


def test_create_draws_the_data_and_a_fixed_noise():
    session = new_session()
    assert torch.equal(session.data, make_2d("moons", 1000, noise=0.05, seed=0))
    assert torch.equal(session.eps, wf.fixed_noise(1000, 0))
    assert session.eps.shape == (1000, 2) and session.T == SCHEDULE.T
    assert session.losses == [] and session.trainer.step == 0 and session.runs == 0
    assert not torch.equal(wf.fixed_noise(1000, 1), session.eps)
    # the ε every picture of x_t uses is pinned (generator seeded with data seed + 1)
    assert torch.equal(wf.fixed_noise(5, 7),
                       torch.randn(5, 2, generator=torch.Generator().manual_seed(8)))
    # same settings ⇒ same initial weights, whatever the global RNG did in between
    torch.manual_seed(123)
    again = new_session()
    torch.testing.assert_close(params(again.trainer.model), params(session.trainer.model),
                               rtol=0, atol=0)


def test_training_records_every_loss_and_lowers_it():
    session = new_session()
    reports = list(session.train(200))
    assert session.trainer.step == 200 and len(session.losses) == 200
    assert session.losses == [v for p in reports for v in p.losses]
    assert reports[-1].done and not reports[0].done
    assert np.mean(session.losses[-50:]) < 0.8 * np.mean(session.losses[:20])
    # a second run appends to the same record
    list(session.train(30))
    assert session.trainer.step == 230 and len(session.losses) == 230
    # reports that bundle several steps still record each step's loss
    sparse = new_session(train=replace(TRAIN, report_every=10))
    assert len(list(sparse.train(30))) == 3 and len(sparse.losses) == 30


def test_training_is_deterministic_and_stops_when_closed():
    a, b = new_session(), new_session()
    for session in (a, b):
        gen = session.train(1000)  # the lr schedule spans the run: stop both at the same step
        for p in gen:
            if p.step == 40:
                break
        gen.close()  # what a Stop button does
    assert b.trainer.step == 40 and len(b.losses) == 40
    assert b.losses == a.losses  # bit-identical losses
    torch.testing.assert_close(params(a.trainer.model), params(b.trainer.model))


def test_divergence_propagates_and_keeps_the_losses_so_far(monkeypatch):
    diverge_at_step(monkeypatch, 30)
    session = new_session()
    with pytest.raises(TrainingDiverged):
        list(session.train(100))
    assert session.trainer.step == 30 and len(session.losses) == 30


def test_restart_rule():
    session = new_session()
    assert wf.restart_reason(None, SPEC, SCHEDULE, MODEL) == "new model"
    assert wf.restart_reason(session, SPEC, SCHEDULE, MODEL) is None
    circles = replace(SPEC, name="circles")
    assert wf.restart_reason(session, circles, SCHEDULE, MODEL) == (
        "new model: the data set changed")
    other_schedule = ScheduleConfig(kind="linear", T=SCHEDULE.T)
    assert wf.restart_reason(session, SPEC, other_schedule, replace(MODEL, hidden=128)) == (
        "new model: the schedule and model changed")
    assert wf.restart_reason(session, replace(SPEC, seed=1), SCHEDULE, MODEL) is not None

    # the same settings continue the model with the new optimiser settings ...
    faster = replace(TRAIN, lr=1e-3, batch_size=64, steps=7)
    kept, reason = wf.start_or_continue(session, SPEC, SCHEDULE, MODEL, faster)
    assert kept is session and reason is None and session.trainer.config == faster
    assert session.runs == 1
    # ... anything else starts a new one
    fresh, reason = wf.start_or_continue(session, circles, SCHEDULE, MODEL, TRAIN)
    assert fresh is not session and "data set changed" in reason and fresh.runs == 1
    assert fresh.spec == circles
    first, reason = wf.start_or_continue(None, SPEC, SCHEDULE, MODEL, TRAIN)
    assert isinstance(first, wf.Toy2DSession) and reason == "new model"


def test_step_cost_guard():
    seconds = wf.check_step_cost(MODEL, TRAIN)
    assert 0 < seconds < wf.MAX_STEP_S and seconds == wf.step_seconds(MODEL, TRAIN)
    huge = replace(MODEL, hidden=512, depth=6)
    with pytest.raises(ValueError, match=r"Width 512 × depth 6 with batch 4096 is too big for "
                                         r"a CPU: one step would take about \d+\.\d s\. Lower"):
        wf.check_step_cost(huge, replace(TRAIN, batch_size=4096))
    # the STF target's [batch × (batch + extra)] softmax is counted
    eps_target = replace(TRAIN, target="eps")
    assert wf.step_seconds(MODEL, TRAIN) > wf.step_seconds(MODEL, eps_target)


# --- vector field ----------------------------------------------------------------------------


def test_vector_field_record(trained):
    t = 20
    vf = wf.vector_field(trained, t, grid_size=21)
    assert vf.grid.shape == (21 * 21, 2) and vf.pred_eps.shape == (21 * 21, 2)
    assert vf.axis.shape == (21,) and vf.grid.dtype == np.float64
    assert vf.t == t and vf.alpha_bar == trained.schedule.alpha_bar(t)
    # the grid covers ±0.95 of a square view that holds the data and x_t
    assert vf.half >= 1.25 and vf.axis[0] == pytest.approx(-0.95 * vf.half)
    np.testing.assert_array_equal(np.unique(vf.grid[:, 0]), vf.axis)
    # the cloud is eq. 4 with the session's fixed ε; the arrows are −model(grid, t)
    torch.testing.assert_close(vf.x_t, q_sample(trained.schedule, trained.data, t, trained.eps),
                               rtol=0, atol=0)
    with torch.inference_mode():
        want = trained.model(torch.tensor(vf.grid, dtype=torch.float32),
                             torch.full((len(vf.grid),), t)).double().numpy()
    np.testing.assert_array_equal(-vf.pred_eps, -want)
    other = wf.vector_field(trained, 150)
    assert not np.allclose(other.pred_eps, vf.pred_eps)
    for bad in (trained.T, -1, 2.5):
        with pytest.raises(ValueError):
            wf.vector_field(trained, bad)


# --- sampling --------------------------------------------------------------------------------


def test_sampling_record(trained):
    settings = SamplerSettings(sampler="ddpm", steps=50, spacing="trailing")
    run = wf.sample_session(trained, settings, 300, 3, max_frames=10)
    assert len(run.frames) == len(run.frame_t) == 10
    assert run.frame_t[0] == trained.T - 1 and run.frame_t[-1] == -1
    assert list(run.frame_t) == sorted(run.frame_t, reverse=True)
    assert run.frames[-1] is run.samples and run.frames[0] is run.x_T
    assert torch.equal(run.x_T, torch.randn(300, 2, generator=torch.Generator().manual_seed(3)))
    # the same chain as the sampling loop with the settings' own keyword arguments
    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(300, 2, generator=g)
    want = sample_final(trained.model, trained.schedule, x_T, generator=g,
                        **settings.sample_kwargs(trained.T))
    assert torch.equal(run.samples, want)
    # the tab's quality score
    assert run.quality == toy2d_quality(run.samples, "moons", noise=0.05, data_seed=0,
                                        train_data=trained.data, projection_seed=3,
                                        floor_pairs=4)
    assert run.quality.bad == 0 and run.quality.n == 300
    # a short chain keeps every step; frames never exceed max_frames
    short = wf.sample_session(trained, replace(settings, steps=4), 50, 0, max_frames=10)
    assert len(short.frames) == 5
    # the full chain: 60 frames by default, and samples near the data (the score can tell)
    full = wf.sample_session(trained, replace(settings, steps=None), 800, 1)
    assert full.frame_t[0] == trained.T - 1 and len(full.frames) == 60
    assert 0 < full.quality.floor < full.quality.sw1 < 0.5
    noise = torch.randn(800, 2, generator=torch.Generator().manual_seed(0))
    assert toy2d_quality(noise, "moons", noise=0.05, train_data=trained.data,
                         projection_seed=1, floor_pairs=4).sw1 > 2 * full.quality.sw1


def test_sampling_is_deterministic_for_a_seed(trained):
    settings = SamplerSettings(sampler="ddim", steps=20, eta=0.5, spacing="trailing")
    a = wf.sample_session(trained, settings, 200, 5)
    b = wf.sample_session(trained, settings, 200, 5)
    c = wf.sample_session(trained, settings, 200, 6)
    assert torch.equal(a.samples, b.samples) and a.quality == b.quality
    assert all(torch.equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert not torch.equal(a.samples, c.samples)


def test_eta_under_ddpm_is_not_passed_to_the_sampler(trained):
    # The sampling loop refuses η ≠ 0 for DDPM; the settings drop it, so the result is DDPM's.
    plain = SamplerSettings(sampler="ddpm", steps=10, spacing="trailing")
    with_eta = replace(plain, eta=0.7)
    a = wf.sample_session(trained, plain, 100, 1)
    b = wf.sample_session(trained, with_eta, 100, 1)
    assert torch.equal(a.samples, b.samples)


def test_sampling_run_streams_and_can_stop(trained):
    settings = SamplerSettings(sampler="ddpm", steps=30, spacing="trailing")
    run = wf.Toy2DSampling(trained, settings, 100, 0, max_frames=8)
    with pytest.raises(RuntimeError, match="not finished"):
        run.result()
    steps = []
    for step in run:
        steps.append(step)
        if step.index == 2:
            break
    assert [s.index for s in steps] == [0, 1, 2] and steps[0].num_steps == 30
    with pytest.raises(RuntimeError):
        run.result()
    with pytest.raises(ValueError):
        wf.Toy2DSampling(trained, settings, 100, 0, max_frames=1)
    with pytest.raises(ValueError):
        wf.Toy2DSampling(trained, settings, 0, 0)


# --- forward diffusion -----------------------------------------------------------------------


def test_forward_frames_are_eq4_with_one_fixed_noise():
    cfg = ScheduleConfig(kind="linear", T=100, beta_start=1e-4, beta_end=0.02, scale_to_T=True)
    spec = wf.DataSpec("moons", 500, 0.05, 0)
    ff = wf.forward_frames(spec, cfg, frames=30)
    sched = NoiseSchedule(cfg)
    eps = wf.fixed_noise(500, 0)
    assert list(ff.timesteps) == evenly_spaced(100, 30) and ff.timesteps[-1] == 99
    assert len(ff.x_t) == len(ff.alpha_bar) == 30
    assert torch.equal(ff.data, make_2d("moons", 500, noise=0.05, seed=0))
    assert torch.equal(ff.eps, eps)
    for t, ab, x in zip(ff.timesteps, ff.alpha_bar, ff.x_t, strict=True):
        assert torch.equal(x, q_sample(sched, ff.data, t, eps)) and ab == sched.alpha_bar(t)
    # a short chain shows every t
    short = replace(cfg, T=12, scale_to_T=False)
    assert wf.forward_frames(spec, short).timesteps == tuple(range(12))
