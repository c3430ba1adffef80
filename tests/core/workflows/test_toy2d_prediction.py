"""The 2D session with an x0- or v-predicting network: the restart rule, the ε-predictor the
tab looks at and samples from, and the vector field in ε̂."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from diffusion_core import presets
from diffusion_core.forward import EpsPredictor, eps_from_prediction
from diffusion_core.sampling import SamplerSettings
from diffusion_core.workflows import toy2d as wf

SPEC = wf.DataSpec("moons", 500, 0.05, 0)
SCHEDULE = presets.TOY.schedule
MODEL = replace(presets.TOY.model, hidden=32, depth=2, num_timesteps=SCHEDULE.T)
TRAIN = replace(presets.TOY.train, batch_size=64, steps=30, report_every=10)


@pytest.fixture(scope="module", params=["x0", "v"])
def trained(request) -> wf.Toy2DSession:
    session = wf.Toy2DSession.create(SPEC, SCHEDULE, MODEL,
                                     replace(TRAIN, prediction=request.param))
    for _ in session.train():
        pass
    return session


def test_a_changed_prediction_is_a_new_model():
    session, reason = wf.start_or_continue(None, SPEC, SCHEDULE, MODEL, TRAIN)
    assert reason == "new model" and session.prediction == "eps"
    assert wf.restart_reason(session, SPEC, SCHEDULE, MODEL) is None
    assert wf.restart_reason(session, SPEC, SCHEDULE, MODEL, prediction="v") == (
        "new model: the prediction changed")
    assert wf.restart_reason(session, SPEC, SCHEDULE, replace(MODEL, hidden=64),
                             prediction="x0") == "new model: the model and prediction changed"
    v_cfg = replace(TRAIN, prediction="v")
    fresh, reason = wf.start_or_continue(session, SPEC, SCHEDULE, MODEL, v_cfg)
    assert fresh is not session and reason == "new model: the prediction changed"
    assert fresh.prediction == "v" and fresh.trainer.config.prediction == "v"
    kept, reason = wf.start_or_continue(fresh, SPEC, SCHEDULE, MODEL, replace(v_cfg, lr=1e-3))
    assert kept is fresh and reason is None


def test_the_session_model_is_an_eps_predictor(trained):
    model = trained.model
    assert isinstance(model, EpsPredictor) and model.prediction == trained.prediction
    assert model.network is trained.trainer.sampling_network()
    assert trained.trainer.step == TRAIN.steps
    assert len(trained.losses) == TRAIN.steps


def test_vector_field_shows_the_converted_eps(trained):
    t = 60
    vf = wf.vector_field(trained, t, grid_size=9)
    grid = torch.tensor(vf.grid, dtype=torch.float32)
    tt = torch.full((len(grid),), t)
    with torch.inference_mode():
        raw = trained.trainer.sampling_network()(grid, tt)
        want = eps_from_prediction(trained.schedule, grid, tt, raw, trained.prediction)
    np.testing.assert_array_equal(vf.pred_eps, want.double().numpy())
    assert not np.allclose(vf.pred_eps, raw.double().numpy())


def test_sampling_a_session_runs_through_the_conversion(trained):
    settings = SamplerSettings(sampler="ddim", steps=10, eta=0.0, spacing="trailing")
    out = wf.sample_session(trained, settings, 50, seed=0, max_frames=5)
    assert out.samples.shape == (50, 2) and torch.isfinite(out.samples).all()
    assert out.quality.bad == 0
