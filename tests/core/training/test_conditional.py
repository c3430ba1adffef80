"""Class-conditional training: labels, label dropout (p_uncond), the per-class STF target, an
unchanged unconditional run, and a conditional 2D model that samples the requested moon."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from diffusion_core.data.toy2d import make_2d
from diffusion_core.models import MLPConfig, build_model
from diffusion_core.presets import TOY
from diffusion_core.sampling import GuidedModel, sample_final
from diffusion_core.schedule import NoiseSchedule
from diffusion_core.training import TrainConfig, Trainer, stf_target
from diffusion_core.training.config import P_UNCOND_DEFAULT
from diffusion_core.training.trainer import regression_targets
from tests.helpers import ACROSS_CPUS

# The per-step losses of these runs recorded with the code BEFORE class labels existed (commit
# 1556a7e, one thread): an unconditional run must draw the same random numbers as then (equal
# to float32 rounding on another CPU: tests.helpers.ACROSS_CPUS).
TOY_STF_LOSSES = [0.6647088527679443, 0.5339111089706421, 0.4093334972858429,
                  0.29464325308799744, 0.3301844596862793]
V_EPS_LOSSES = [0.6641488075256348, 0.692134439945221, 0.6912744045257568, 0.5992268919944763,
                0.6444900631904602]


def _losses(**train) -> list[float]:
    torch.manual_seed(0)
    trainer = Trainer(build_model(TOY.model), NoiseSchedule(TOY.schedule),
                      make_2d("moons", 500, seed=0),
                      replace(TOY.train, steps=5, report_every=1, **train))
    return [p.loss for p in trainer.run()]


def test_unconditional_training_is_unchanged():
    torch.testing.assert_close(torch.tensor(_losses()), torch.tensor(TOY_STF_LOSSES),
                               **ACROSS_CPUS)
    torch.testing.assert_close(torch.tensor(_losses(target="eps", prediction="v")),
                               torch.tensor(V_EPS_LOSSES), **ACROSS_CPUS)


def test_p_uncond_field():
    assert TrainConfig().p_uncond == P_UNCOND_DEFAULT and 0.1 <= P_UNCOND_DEFAULT <= 0.2
    assert TrainConfig(p_uncond=0).p_uncond == 0 and TrainConfig(p_uncond=1.0).p_uncond == 1
    for bad in (-0.1, 1.5, "0.1", True, float("nan")):
        with pytest.raises(ValueError, match="p_uncond"):
            TrainConfig(p_uncond=bad)
    old = TrainConfig().to_dict()
    del old["p_uncond"]  # a checkpoint's training config from before the field
    assert TrainConfig.from_dict(old) == TrainConfig()


def _conditional(num_classes=3, **train):
    torch.manual_seed(0)
    model = build_model(MLPConfig(hidden=32, depth=2, num_timesteps=50, num_classes=num_classes))
    data = torch.randn(300, 2, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(300) % num_classes
    cfg = TrainConfig(**{"steps": 20, "batch_size": 200, "report_every": 20, **train})
    return model, NoiseSchedule(kind="cosine", T=50), data, labels, cfg


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_label_dropout_rate(p):
    model, sched, data, labels, cfg = _conditional(p_uncond=p, target="eps")
    seen = []
    model.register_forward_hook(lambda m, args, out: seen.append(args[2].clone()))
    trainer = Trainer(model, sched, data, cfg, labels=labels)
    for _ in trainer.run():
        pass
    y = torch.cat(seen)
    assert len(y) == 20 * 200 and int(y.min()) >= 0 and int(y.max()) <= 3
    null = float((y == 3).double().mean())
    assert abs(null - p) < 0.03  # binomial sd at p = 0.3, n = 4000: 0.007


def test_labels_are_checked():
    model, sched, data, labels, cfg = _conditional()
    with pytest.raises(ValueError, match="needs labels|give the Trainer labels"):
        Trainer(model, sched, data, cfg)
    with pytest.raises(ValueError, match="0..2"):
        Trainer(model, sched, data, cfg, labels=labels + 1)
    with pytest.raises(ValueError, match=r"\[N\] = \[300\]"):
        Trainer(model, sched, data, cfg, labels=labels[:10])
    with pytest.raises(ValueError, match="integer"):
        Trainer(model, sched, data, cfg, labels=labels.float())
    plain = build_model(MLPConfig(hidden=8, depth=1, num_timesteps=50))
    with pytest.raises(ValueError, match="unconditional"):
        Trainer(plain, sched, data, cfg, labels=labels)


def test_stf_target_by_class():
    """A labelled example's STF posterior runs over its own class's references; y < 0: all."""
    sched = NoiseSchedule(kind="cosine", T=50)
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(40, 2, generator=g)
    ref_labels = torch.arange(40) % 4
    x0, y = ref[:8], torch.tensor([0, 1, 2, 3, -1, -1, 1, 2])
    t = torch.tensor([5, 10, 20, 30, 40, 45, 25, 49])
    noise = torch.randn(8, 2, generator=g)
    x_t = (sched.float64["sqrt_alphas_cumprod"][t, None] * x0
           + sched.float64["sqrt_one_minus_alphas_cumprod"][t, None] * noise).float()
    _, eps = regression_targets(sched, x0, x_t, t, noise, "eps", ref,
                                stf_classes=(y, ref_labels))
    ab = sched.float64["alphas_cumprod"][t]
    for i in range(8):
        sub = ref if y[i] < 0 else ref[ref_labels == y[i]]
        want = stf_target(x_t[i:i + 1], ab[i:i + 1], sub)
        torch.testing.assert_close(eps[i:i + 1], want, atol=1e-5, rtol=1e-5)
    all_refs = stf_target(x_t, ab, ref)
    assert not torch.allclose(eps[:4], all_refs[:4], atol=1e-3)  # the class matters


@pytest.mark.parametrize("target", ["eps", "stf"])
def test_conditional_training_runs_and_learns(target):
    model, sched, data, labels, cfg = _conditional(target=target, stf_extra=16, steps=40)
    trainer = Trainer(model, sched, data, cfg, labels=labels)
    reports = list(trainer.run())
    assert reports[-1].done and reports[-1].loss < 1.0
    assert model.class_embed.embedding.weight.abs().sum() > 0  # the class table moved


def _moon_of(points: torch.Tensor) -> torch.Tensor:
    """Which moon (0 upper, 1 lower) each point is nearer to: nearest noise-free curve point."""
    curve, which = make_2d("moons", 20_000, noise=0.0, seed=7, return_labels=True)
    return which[torch.cdist(points, curve).argmin(1)]


def test_conditional_moons_sample_the_requested_moon_at_scale_3():
    """The TOY recipe (300 steps) with two-class labels: at s = 3, ≥ 90 % of the samples for
    class k lie nearer to moon k than to the other (measured 100 %); at s = 0 the labels are
    ignored, so about half do (the check can fail)."""
    torch.manual_seed(0)
    sched = NoiseSchedule(TOY.schedule)
    x, y = make_2d("moons", 4000, seed=0, return_labels=True)
    trainer = Trainer(build_model(replace(TOY.model, num_classes=2)), sched, x, TOY.train,
                      labels=y)
    for _ in trainer.run():
        pass
    model = trainer.sampling_model()
    labels = torch.arange(1000) % 2
    x_T = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
    share = {}
    for s in (0.0, 3.0):
        samples = sample_final(GuidedModel(model, labels, s), sched, x_T, sampler="ddim",
                               steps=50, spacing="trailing")
        hit = _moon_of(samples) == labels
        share[s] = [float(hit[labels == k].double().mean()) for k in (0, 1)]
    assert min(share[3.0]) >= 0.9, share
    assert all(0.3 < v < 0.7 for v in share[0.0]), share
