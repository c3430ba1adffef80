"""Classifier-free guidance: ε̃ = ε_u + s·(ε_c − ε_u) for every registered sampler.

The conditional MLP gets a random (non-zero) class table, so ε_c and ε_u differ a lot; the
checks are against the plain network called with and without labels, from the same x_T and
the same sampler noise. Scale 0 must give the unconditional chain and scale 1 the conditional
one (≤ 1e-6), for DDPM, DDIM (η = 0 and η = 1: noise) and DPM-Solver++ 2M, and for x0 / v
networks wrapped as ε-predictors — through the one-model shortcut a single scale of 0 or 1
takes, and through the batched pass (a per-sample tensor of scales).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from diffusion_core.data.toy2d import make_2d
from diffusion_core.forward import as_eps_predictor, eps_from_prediction
from diffusion_core.models import MLPConfig, build_model
from diffusion_core.oracles.ideal import IdealDenoiser
from diffusion_core.sampling import (
    SAMPLER_NAMES,
    GuidedEps,
    GuidedModel,
    guidance_mix,
    sample,
    sample_final,
)

from ..models.common import small_unet

CFG = MLPConfig(hidden=32, depth=2, num_timesteps=100, num_classes=3)
RUNS = [("ddpm", {}), ("ddim", {"eta": 0.0}), ("ddim", {"eta": 1.0}), ("dpmpp_2m", {})]
assert {s for s, _ in RUNS} == set(SAMPLER_NAMES)  # every registered sampler is covered


def _network(cfg=CFG, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_model(cfg).eval()
    with torch.no_grad():
        net.class_embed.embedding.weight.normal_(0.0, 2.0)
    return net


def _chain(model, sched, sampler, options, steps=12):
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(3))
    return sample_final(model, sched, x_T, sampler=sampler, steps=steps, spacing="trailing",
                        generator=torch.Generator().manual_seed(4), **options)


Y = torch.arange(16) % 3


@pytest.mark.parametrize(("sampler", "options"), RUNS)
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_scale_0_is_unconditional_and_scale_1_conditional(sched, sampler, options, prediction):
    net = _network()
    model = as_eps_predictor(net, sched, prediction)

    def conditional(x, t):
        return eps_from_prediction(sched, x, t, net(x, t, Y), prediction)

    uncond = _chain(model, sched, sampler, options)  # plain call: the null class
    cond = _chain(conditional, sched, sampler, options)
    assert (uncond - cond).abs().max() > 0.1  # the two models really differ
    s0 = _chain(GuidedModel(model, Y, 0.0), sched, sampler, options)
    s1 = _chain(GuidedModel(model, Y, 1.0), sched, sampler, options)
    torch.testing.assert_close(s0, uncond, atol=1e-6, rtol=0)
    torch.testing.assert_close(s1, cond, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("sampler", "options"), RUNS)
def test_the_batched_pass_also_gives_scale_0_and_1(sched, sampler, options):
    """A per-sample scale tensor always runs the one batched pass (2B examples); all zeros and
    all ones must still give the unconditional and conditional chains, to float32 rounding (a
    batch of 2B may go through other matrix kernels than one of B: bit-identical on an AVX-512
    CPU, ≤ 3e-7 relative on AVX2)."""
    net = _network()
    uncond = _chain(net, sched, sampler, options)
    cond = _chain(lambda x, t: net(x, t, Y), sched, sampler, options)
    zeros, ones = torch.zeros(16), torch.ones(16)
    torch.testing.assert_close(_chain(GuidedModel(net, Y, zeros), sched, sampler, options),
                               uncond, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(_chain(GuidedModel(net, Y, ones), sched, sampler, options),
                               cond, atol=1e-6, rtol=1e-6)


def test_scale_0_and_1_run_one_model_only(sched):
    """A single scale of exactly 0 or 1 runs B examples (the selected model), bit-identical to
    the plain call; the U-Net's batched pass agrees with it to float32 rounding."""
    net = _network(small_unet(num_classes=3))
    sizes = []
    net.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    x = torch.randn(4, 1, 8, 8)
    t = torch.tensor([3, 50, 80, 99])
    y = torch.tensor([0, 1, 2, 0])
    with torch.inference_mode():
        assert torch.equal(GuidedModel(net, y, 0.0)(x, t), net(x, t))
        assert torch.equal(GuidedModel(net, y, 1.0)(x, t), net(x, t, y))
        assert sizes == [4, 4, 4, 4]
        parts = GuidedModel(net, y, 1.0).parts(x, t)  # always the batched pass
        assert sizes[-1] == 8
        torch.testing.assert_close(parts.eps_uncond, net(x, t), atol=5e-6, rtol=0)
        torch.testing.assert_close(parts.eps_cond, net(x, t, y), atol=5e-6, rtol=0)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_guided_eps_is_the_mix_in_eps_space(sched, prediction):
    net = _network()
    model = as_eps_predictor(net, sched, prediction)
    x = torch.randn(16, 2)
    t = torch.randint(0, 100, (16,), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        eps_u = eps_from_prediction(sched, x, t, net(x, t), prediction)
        eps_c = eps_from_prediction(sched, x, t, net(x, t, Y), prediction)
        for s in (0.0, 1.0, 3.0, 7.5, -1.0, torch.linspace(0, 5, 16)):
            parts = GuidedModel(model, Y, s).parts(x, t)
            w = s[:, None] if isinstance(s, torch.Tensor) else s
            assert isinstance(parts, GuidedEps)
            torch.testing.assert_close(parts.eps_uncond, eps_u, atol=1e-6, rtol=0)
            torch.testing.assert_close(parts.eps_cond, eps_c, atol=1e-6, rtol=0)
            want = eps_u + w * (eps_c - eps_u)
            torch.testing.assert_close(parts.eps, want, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(GuidedModel(model, Y, s)(x, t), want, atol=1e-5,
                                       rtol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "unet"])
def test_one_batched_forward_pass_per_step(sched, kind):
    cfg = CFG if kind == "mlp" else small_unet(num_classes=3)
    net = _network(cfg)
    calls = []
    net.register_forward_hook(lambda m, args, out: calls.append(
        (args[0].shape[0], args[2].tolist())))
    shape = (5, 2) if kind == "mlp" else (5, 1, 8, 8)
    x_T = torch.randn(shape)
    steps = list(sample(GuidedModel(net, 2, 3.0), sched, x_T, sampler="ddim", steps=4))
    assert len(steps) == 4 and len(calls) == 4
    for batch, labels in calls:  # ε_c and ε_u together: the class, then the null class 3
        assert batch == 10 and labels == [2] * 5 + [3] * 5


def test_per_sample_scales_and_labels_equal_separate_runs(sched):
    net = _network()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    scales = torch.tensor([0.0, 1.0, 3.0, 5.0, 2.0, 0.5])
    x_T = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    grid = sample_final(GuidedModel(net, labels, scales), sched, x_T, sampler="ddim", steps=10)
    for i in range(6):
        one = sample_final(GuidedModel(net, int(labels[i]), float(scales[i])), sched,
                           x_T[i:i + 1], sampler="ddim", steps=10)
        torch.testing.assert_close(grid[i:i + 1], one, atol=1e-5, rtol=1e-5)


def test_generic_callable_is_guided_with_two_calls(sched):
    """The class-conditional ideal denoiser (y = None: all points) gets its exact guided field."""
    x0, labels = make_2d("moons", 200, seed=0, return_labels=True)
    ideal = IdealDenoiser(x0, sched, labels=labels)
    x = torch.randn(8, 2)
    y = torch.tensor([0, 1] * 4)
    guided = GuidedModel(ideal, y, 4.0)
    assert not guided.batched
    parts = guided.parts(x, 30)
    t = torch.full((8,), 30)
    torch.testing.assert_close(parts.eps_cond, ideal(x, t, y))
    torch.testing.assert_close(parts.eps_uncond, ideal(x, t))
    torch.testing.assert_close(parts.eps, guidance_mix(ideal(x, t), ideal(x, t, y), 4.0))


def test_guidance_pushes_samples_toward_the_class(sched):
    """With s > 1 the samples sit farther into their class than at s = 1 (2D ideal denoiser)."""
    x0, labels = make_2d("gaussians8", 400, seed=0, return_labels=True)
    ideal = IdealDenoiser(x0, sched, labels=labels)
    y = torch.zeros(200, dtype=torch.long)  # the Gaussian at (1, 0) in model coordinates
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    far = {}
    for s in (0.0, 1.0, 4.0):
        x = sample_final(GuidedModel(ideal, y, s), sched, x_T, sampler="ddim", steps=20)
        far[s] = float((x - torch.tensor([1.0, 0.0])).norm(dim=1).gt(0.5).double().mean())
    assert far[0.0] > 0.7 and far[1.0] < 0.05 and far[4.0] <= far[1.0]


def test_bad_arguments_are_refused(sched):
    net = _network()
    with pytest.raises(ValueError, match="unconditional"):
        GuidedModel(build_model(replace(CFG, num_classes=0)), 0, 2.0)
    with pytest.raises(ValueError, match="0..2"):
        GuidedModel(net, 3, 2.0)  # 3 is the null class, not a class to guide toward
    with pytest.raises(ValueError, match="0..2"):
        GuidedModel(net, torch.tensor([0, -1]), 2.0)
    for bad in (float("nan"), float("inf"), "3", True):
        with pytest.raises(ValueError, match="scale"):
            GuidedModel(net, 0, bad)
    with pytest.raises(ValueError, match="int"):
        GuidedModel(net, 1.0, 2.0)
    guided = GuidedModel(net, torch.tensor([0, 1]), 2.0)
    with pytest.raises(ValueError, match="2 labels"):
        guided(torch.randn(3, 2), torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match="scale has 2"):
        GuidedModel(net, 0, torch.tensor([1.0, 2.0]))(torch.randn(3, 2), torch.tensor([1, 1, 1]))
