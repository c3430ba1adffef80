"""Training loop: learning happens, progress reports, stop, NaN handling, EMA, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.models import MLP2D, MLPConfig
from diffusion_core.schedules import NoiseSchedule
from diffusion_core.training import TrainConfig, Trainer, TrainingDiverged, train


def _setup(seed=0, **cfg):
    torch.manual_seed(seed)
    sched = NoiseSchedule(kind="linear", T=50, scale_to_T=True)
    model = MLP2D(MLPConfig(hidden=64, depth=2, num_timesteps=50))
    data = torch.randn(512, 2, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.5
    return model, sched, data, TrainConfig(**{"steps": 200, "batch_size": 128, **cfg})


def test_loss_decreases_and_reports():
    model, sched, data, cfg = _setup(report_every=50)
    reports = list(train(model, sched, data, cfg))
    assert [r.run_step for r in reports] == [50, 100, 150, 200]
    assert reports[-1].done and not reports[0].done
    assert len(reports[0].losses) == 50
    assert reports[-1].loss < 0.8 * reports[0].losses[0]
    # the per-timestep summary covers every bin, and early t (little noise) is hardest to
    # predict ε for: its loss is higher than at the noisiest bin.
    tl = reports[-1].timestep_loss
    assert len(tl) == 10 and all(math.isfinite(v) for v in tl)
    assert reports[-1].timestep_edges == (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert tl[0] > tl[-1]


def test_should_stop_and_continue():
    model, sched, data, cfg = _setup()
    trainer = Trainer(model, sched, data, cfg)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 30

    reports = list(trainer.run(should_stop=stop))
    assert reports[-1].run_step == 30 and reports[-1].done and trainer.step == 30
    list(trainer.run(20))
    assert trainer.step == 50


def test_closing_generator_keeps_partial_model():
    model, sched, data, cfg = _setup(report_every=10)
    before = [p.clone() for p in model.parameters()]
    gen = Trainer(model, sched, data, cfg).run()
    next(gen)
    gen.close()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_nan_loss_raises_and_keeps_weights():
    model, sched, data, cfg = _setup()
    trainer = Trainer(model, sched, data, cfg)
    list(trainer.run(5))
    good = [p.clone() for p in model.parameters()]
    with torch.no_grad():
        model.net[0].weight.fill_(float("inf"))
    good[0] = model.net[0].weight.clone()
    with pytest.raises(TrainingDiverged, match="step 6"):
        list(trainer.run(5))
    assert all(torch.equal(a, b) for a, b in zip(good, model.parameters(), strict=True))


def test_seeded_runs_are_identical_and_ema_differs():
    a = _setup(seed=3, ema_decay=0.9)
    b = _setup(seed=3, ema_decay=0.9)
    ta, tb = Trainer(*a), Trainer(*b)
    list(ta.run())
    list(tb.run())
    for p, q in zip(ta.model.parameters(), tb.model.parameters(), strict=True):
        assert torch.equal(p, q)
    ema = ta.sampling_model()
    assert ema is not ta.model
    assert any(not torch.equal(p, q) for p, q in
               zip(ema.parameters(), ta.model.parameters(), strict=True))


@pytest.mark.parametrize("loss", ["l1", "huber"])
def test_other_losses_learn(loss):
    model, sched, data, cfg = _setup(loss=loss, report_every=100)
    reports = list(train(model, sched, data, cfg))
    assert reports[-1].loss < reports[0].losses[0]


@pytest.mark.parametrize("bad", [dict(steps=0), dict(lr=-1.0), dict(lr=float("nan")),
                                 dict(batch_size=0), dict(loss="l3"), dict(ema_decay=1.0)])
def test_bad_config(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_bad_data():
    model, sched, _, cfg = _setup()
    with pytest.raises(ValueError, match="NaN"):
        Trainer(model, sched, torch.tensor([[float("nan"), 0.0]]), cfg)
