"""Forward process: closed form vs iterative, posterior formulas, x0/ε conversions."""

from __future__ import annotations

import pytest
import torch

from diffusion_core.forward import (
    pred_eps_from_x0,
    pred_x0_from_eps,
    q_posterior,
    q_sample,
    q_sample_iterative,
)
from diffusion_core.schedule import NoiseSchedule


@pytest.fixture(scope="module")
def sched():
    return NoiseSchedule(kind="linear", T=100, scale_to_T=True)


@pytest.mark.parametrize("shape", [(64, 2), (4, 3, 8, 8)])
@pytest.mark.parametrize("dtype, t_max", [(torch.float64, 100), (torch.float32, 50)])
def test_q_sample_then_pred_x0_recovers_x0(sched, shape, dtype, t_max):
    """Exact in float64 at every t; float32 loses ~1/√ᾱ_t · 6e-8, so it is checked for t < 50."""
    g = torch.Generator().manual_seed(0)
    x0 = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    noise = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    t = torch.randint(0, t_max, (shape[0],), generator=g)
    t[0] = t_max - 1
    x_t = q_sample(sched, x0, t, noise)
    assert (pred_x0_from_eps(sched, x_t, t, noise) - x0).abs().max() <= 1e-5
    assert (pred_eps_from_x0(sched, x_t, t, x0) - noise).abs().max() <= 1e-4


def test_q_sample_formula(sched):
    x0 = torch.tensor([[1.0, -2.0]])
    noise = torch.tensor([[0.5, 0.25]])
    ab = sched.alpha_bar(40)
    expected = ab**0.5 * x0 + (1 - ab) ** 0.5 * noise
    assert torch.allclose(q_sample(sched, x0, 40, noise), expected, atol=1e-6)


def test_posterior_against_formulas(sched):
    g = torch.Generator().manual_seed(1)
    x0, x_t = torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)
    t = torch.tensor([0, 10, 99])
    mean, var = q_posterior(sched, x0, x_t, t)
    b = sched.float64["betas"]
    for i, ti in enumerate(t.tolist()):
        ab, ab_prev = sched.alpha_bar(ti), sched.alpha_bar(ti - 1)
        beta = b[ti].item()
        m = (beta * ab_prev**0.5 / (1 - ab)) * x0[i] + ((1 - ab_prev) * (1 - beta) ** 0.5
                                                       / (1 - ab)) * x_t[i]
        assert torch.allclose(mean[i], m, atol=1e-5)
        assert var[i].item() == pytest.approx((1 - ab_prev) / (1 - ab) * beta, rel=1e-5)
    # t = 0: x_{−1} = x0 with certainty
    assert var[0].item() == 0.0
    assert torch.allclose(mean[0], x0[0], atol=1e-5)


def test_posterior_mean_is_conditional_mean_statistically(sched):
    """E[x_{t−1} | x0] via the posterior equals √ᾱ_{t−1} x0 (tower rule), checked by sampling."""
    t = 30
    g = torch.Generator().manual_seed(2)
    x0 = torch.full((20000, 2), 0.7)
    x_t = q_sample(sched, x0, t, generator=g)
    mean, var = q_posterior(sched, x0, x_t, t)
    x_prev = mean + var.sqrt() * torch.randn(mean.shape, generator=g)
    ab_prev = sched.alpha_bar(t - 1)
    assert x_prev.mean().item() == pytest.approx(ab_prev**0.5 * 0.7, abs=0.01)
    assert x_prev.var().item() == pytest.approx(1 - ab_prev, rel=0.03)


@pytest.mark.parametrize("t", [0, 5, 60, 99])
def test_iterative_matches_closed_form_in_distribution(sched, t):
    """Eq. 2 iterated t+1 times vs eq. 4: same mean √ᾱ_t x0 and variance 1 − ᾱ_t."""
    n = 20000
    x0 = torch.tensor([[0.8, -0.5]]).expand(n, 2).contiguous()
    g = torch.Generator().manual_seed(3)
    it = q_sample_iterative(sched, x0, t, generator=g)
    cf = q_sample(sched, x0, t, generator=g)
    ab = sched.alpha_bar(t)
    se_mean = ((1 - ab) / n) ** 0.5
    for x in (it, cf):
        assert torch.allclose(x.mean(0), ab**0.5 * x0[0], atol=5 * se_mean + 1e-6)
        assert torch.allclose(x.var(0), torch.full((2,), 1 - ab), rtol=0.05, atol=1e-9)


def test_iterative_per_sample_t(sched):
    x0 = torch.zeros(2, 2)
    out = q_sample_iterative(sched, x0, torch.tensor([0, 50]),
                             generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 2) and not torch.equal(out[0], out[1])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s: q_sample(s, torch.zeros(2, 2), 100, torch.zeros(2, 2)),
         r"t must be in \[0, 99\]"),
        (lambda s: q_sample(s, torch.zeros(2, 2), -1, torch.zeros(2, 2)), "t must be in"),
        (lambda s: q_sample(s, torch.zeros(2, 2), 3, torch.zeros(3, 2)), "noise must"),
        (lambda s: q_sample(s, torch.tensor([[float("nan"), 0.0]]), 3), "NaN"),
        (lambda s: q_sample(s, torch.zeros(2, 2), torch.tensor([1, 2, 3])), r"shape \[B\]"),
        (lambda s: q_sample(s, torch.zeros(2), 1), "x0 must"),
    ],
)
def test_bad_input(sched, call, match):
    with pytest.raises(ValueError, match=match):
        call(sched)
