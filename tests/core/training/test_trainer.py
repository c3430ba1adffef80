"""Training loop: learning happens, progress reports, stop, NaN handling, EMA, STF target."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.models import MLP2D, MLPConfig
from diffusion_core.schedule import NoiseSchedule
from diffusion_core.training import (
    TrainConfig,
    Trainer,
    TrainingDiverged,
    stf_target,
    train,
)


def _setup(seed=0, **cfg):
    torch.manual_seed(seed)
    sched = NoiseSchedule(kind="linear", T=50, scale_to_T=True)
    model = MLP2D(MLPConfig(hidden=64, depth=2, num_timesteps=50))
    data = torch.randn(512, 2, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.5
    return model, sched, data, TrainConfig(**{"steps": 200, "batch_size": 128, **cfg})


def _brute_stf(x_t, ab, ref):
    x, r, ab = x_t.flatten(1).double(), ref.flatten(1).double(), ab.double()[:, None]
    d2 = ((x[:, None, :] - ab.sqrt()[:, :, None] * r[None]) ** 2).sum(-1)
    w = torch.softmax(-d2 / (2 * (1 - ab)), dim=1)
    return ((x - ab.sqrt() * (w @ r)) / (1 - ab).sqrt()).view(x_t.shape)


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


@pytest.mark.parametrize("shape", [(2,), (3, 4, 4)])
def test_stf_target_matches_the_posterior_mean(shape):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(32, *shape, generator=g)
    ref = torch.cat((x0, torch.randn(50, *shape, generator=g)))
    ab = torch.linspace(0.02, 0.98, 32)
    noise = torch.randn(x0.shape, generator=g)
    x_t = ab.sqrt().view(-1, *[1] * len(shape)) * x0 + (1 - ab).sqrt().view(
        -1, *[1] * len(shape)) * noise
    got = stf_target(x_t, ab, ref)
    assert got.shape == x_t.shape
    torch.testing.assert_close(got, _brute_stf(x_t, ab, ref).float(), atol=1e-4, rtol=1e-4)


def test_stf_target_limits():
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(16, 2, generator=g) * 4 - 2
    noise = torch.randn(16, 2, generator=g)
    # little noise: the weights collapse onto each example's own x0, so the target is its ε
    ab = torch.full((16,), 1 - 1e-4)
    x_t = ab.sqrt()[:, None] * x0 + (1 - ab).sqrt()[:, None] * noise
    torch.testing.assert_close(stf_target(x_t, ab, x0), noise, atol=1e-3, rtol=1e-3)
    # almost pure noise: every reference weighs the same, x0's estimate is their mean
    ab = torch.full((16,), 1e-6)
    x_t = ab.sqrt()[:, None] * x0 + (1 - ab).sqrt()[:, None] * noise
    want = (x_t - ab.sqrt()[:, None] * x0.mean(0)) / (1 - ab).sqrt()[:, None]
    torch.testing.assert_close(stf_target(x_t, ab, x0), want, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="do not match"):
        stf_target(x_t, ab[:3], x0)


def test_stf_target_has_less_noise_than_eps():
    # Mid-range noise on a two-cluster set: both targets scatter around the ideal E[ε | x_t]
    # (the posterior over the whole data set); STF's batch-sized reference scatters far less.
    g = torch.Generator().manual_seed(2)
    data = torch.cat((torch.randn(2000, 2, generator=g) * 0.1 - 1,
                      torch.randn(2000, 2, generator=g) * 0.1 + 1))
    x0 = data[torch.randint(0, len(data), (512,), generator=g)]
    ab = torch.full((512,), 0.3)
    noise = torch.randn(x0.shape, generator=g)
    x_t = ab.sqrt()[:, None] * x0 + (1 - ab).sqrt()[:, None] * noise
    ideal = stf_target(x_t, ab, data)
    err_eps = (noise - ideal).pow(2).sum(1).mean()
    err_stf = (stf_target(x_t, ab, x0) - ideal).pow(2).sum(1).mean()
    assert err_stf < 0.1 * err_eps, (float(err_stf), float(err_eps))


def test_timestep_power_draws_low_noise_more_often():
    T, n = 200, 20_000
    sched = NoiseSchedule(kind="cosine", T=T)
    data = torch.zeros(8, 2)
    model = MLP2D(MLPConfig(hidden=8, depth=1, num_timesteps=T))
    uniform = Trainer(model, sched, data, TrainConfig(seed=3))
    t1 = uniform._draw_t(n, torch.device("cpu"))
    # p = 1 is exactly the uniform draw of earlier versions (same generator stream)
    assert torch.equal(t1, torch.randint(0, T, (n,), generator=torch.Generator().manual_seed(3)))
    skewed = Trainer(model, sched, data, TrainConfig(seed=3, timestep_power=2.0))
    t2 = skewed._draw_t(n, torch.device("cpu"))
    assert t2.dtype == torch.long and int(t2.min()) >= 0 and int(t2.max()) <= T - 1
    low1, low2 = float((t1 < T // 10).float().mean()), float((t2 < T // 10).float().mean())
    assert abs(low1 - 0.1) < 0.01 and abs(low2 - 0.1 ** 0.5) < 0.015  # P(u² < 0.1) = √0.1


def test_stf_training_learns_and_is_seeded():
    a = _setup(seed=4, target="stf", stf_extra=64, timestep_power=1.5, report_every=100)
    b = _setup(seed=4, target="stf", stf_extra=64, timestep_power=1.5, report_every=100)
    ra, rb = list(train(*a)), list(train(*b))
    assert ra[-1].loss < 0.8 * ra[0].losses[0]
    assert [r.loss for r in ra] == [r.loss for r in rb]


def test_bad_data():
    model, sched, _, cfg = _setup()
    with pytest.raises(ValueError, match="NaN"):
        Trainer(model, sched, torch.tensor([[float("nan"), 0.0]]), cfg)

