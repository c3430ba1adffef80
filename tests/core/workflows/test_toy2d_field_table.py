"""The 2D session's field table (``field_table``): the network's field at many t in one batched
pass, for tab 3's t slider to redraw in the browser. It must be the same field
``vector_field`` computes one t at a time (same grid, same ε̂), and bounded in cost."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from diffusion_core import presets
from diffusion_core.sampling.spacing import evenly_spaced
from diffusion_core.schedule import ScheduleConfig
from diffusion_core.workflows import toy2d as wf

SCHEDULE = ScheduleConfig(kind="cosine", T=60)
MODEL = replace(presets.TOY.model, hidden=32, depth=2, num_timesteps=SCHEDULE.T)
TRAIN = replace(presets.TOY.train, batch_size=128, steps=40, report_every=10)


MOONS = wf.DataSpec("moons", 500, 0.05, 0)


def session(spec=MOONS, schedule=SCHEDULE, model=MODEL):
    return wf.Toy2DSession.create(spec, schedule, model, TRAIN)


@pytest.fixture(scope="module")
def trained() -> wf.Toy2DSession:
    s = session()
    for _ in s.train(40):
        pass
    return s


def test_the_table_is_vector_fields_field_at_every_t(trained):
    table = wf.field_table(trained, grid_size=9)
    assert table.T == 60 and table.grid_size == 9 and table.step == 40
    assert table.t.tolist() == list(range(60))  # T = 60: every t
    assert table.pred_eps.shape == (60, 81, 2) and table.pred_eps.dtype == np.float32
    for t in (0, 1, 29, 59):
        vf = wf.vector_field(trained, t, grid_size=9)
        assert table.half[t] == vf.half  # the same view, so the same grid
        np.testing.assert_array_equal(wf.field_grid(table.half[t], 9)[1], vf.grid)
        np.testing.assert_allclose(table.pred_eps[t], vf.pred_eps, rtol=1e-5, atol=1e-5)
    # the field changes with t (a table of one t repeated would pass the lines above at t = 0)
    assert np.abs(table.pred_eps[0] - table.pred_eps[59]).mean() > 0.1


def test_given_timesteps_and_bad_ones(trained):
    table = wf.field_table(trained, grid_size=5, ts=[50, 3, 3, 7])
    assert table.t.tolist() == [3, 7, 50]
    vf = wf.vector_field(trained, 50, grid_size=5)
    np.testing.assert_allclose(table.pred_eps[2], vf.pred_eps, rtol=1e-5, atol=1e-5)
    for bad in ([], [-1, 3], [60], [True]):
        with pytest.raises(ValueError, match="ts must be"):
            wf.field_table(trained, ts=bad)


def test_half_widths_in_chunks_match_one_by_one():
    # 20,000 points: x_t comes in chunks of ≤ 2²² values (209 t), so 256 t in 2 chunks
    s = session(spec=wf.DataSpec("swiss_roll", 20_000, 0.05, 1),
                schedule=ScheduleConfig(kind="linear", T=400),
                model=replace(MODEL, num_timesteps=400))
    ts = evenly_spaced(400, 256)
    half = wf._half_widths(s, ts)
    assert half.shape == (256,)
    for k in (0, 100, 209, 210, 255):  # either side of the chunks' border
        assert half[k] == wf.vector_field(s, ts[k], grid_size=3).half


def test_how_many_t_fit_the_budget():
    # the 2D preset: every one of its 200 t (≈ 0.2 s estimated at FLOPS_PER_S)
    preset = wf.Toy2DSession.create(wf.DataSpec("moons", 500, 0.05, 0), presets.TOY.schedule,
                                    presets.TOY.model, presets.TOY.train)
    assert wf.field_table_steps(preset, grid_size=21) == list(range(200))
    assert wf.forward_seconds(presets.TOY.model, 200 * 441) < wf.FIELD_TABLE_SECONDS
    # a long chain: at most FIELD_TABLE_MAX_T evenly spaced t, both ends included
    long = session(schedule=ScheduleConfig(kind="cosine", T=1000),
                   model=replace(MODEL, num_timesteps=1000))
    ts = wf.field_table_steps(long, grid_size=21)
    assert len(ts) == wf.FIELD_TABLE_MAX_T and ts[0] == 0 and ts[-1] == 999
    # a big network: as many as its forward passes fit, but never fewer than FIELD_TABLE_MIN_T
    big = replace(MODEL, hidden=512, depth=6)
    ts = wf.field_table_steps(session(model=big), grid_size=21)
    fit = int(wf.FIELD_TABLE_SECONDS / wf.forward_seconds(big, 441))
    assert len(ts) == max(wf.FIELD_TABLE_MIN_T, min(fit, 60)) < 60
    assert wf.forward_seconds(big, 441 * len(ts)) <= max(
        wf.FIELD_TABLE_SECONDS, wf.forward_seconds(big, 441 * wf.FIELD_TABLE_MIN_T))


def test_forward_cost_is_a_third_of_a_training_steps():
    cfg = replace(presets.TOY.train, target="eps", batch_size=512)
    assert wf.forward_seconds(presets.TOY.model, 512) == pytest.approx(
        wf.step_seconds(presets.TOY.model, cfg) / 3)
