"""GaussianOracle: its closed forms against sampling and against the forward process."""

import math

import pytest
import torch

from diffusion_core.forward import q_sample
from diffusion_core.oracles import GaussianOracle
from diffusion_core.schedule import NoiseSchedule


@pytest.fixture(scope="module")
def oracle():
    return GaussianOracle(NoiseSchedule(kind="linear", T=100, scale_to_T=True),
                          mean=torch.tensor([0.5, -1.0]), std=0.3)


@pytest.mark.parametrize("t", [0, 10, 50, 99])
def test_eps_and_x0_are_posterior_means_by_regression(oracle, t):
    """E[ε | x_t] is linear in x_t: a least-squares fit on forward draws finds the oracle's line."""
    g = torch.Generator().manual_seed(t)
    x0 = oracle.sample_data(200_000, (2,), generator=g).double()
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    x_t = q_sample(oracle.schedule, x0, t, eps)
    design = torch.cat([x_t, torch.ones(len(x_t), 1, dtype=torch.float64)], 1)
    for target, predict in ((eps, oracle), (x0, oracle.pred_x0)):
        coef = torch.linalg.lstsq(design, target).solution
        fitted = design @ coef
        exact = predict(x_t, t)
        assert (fitted - exact).pow(2).mean().sqrt() < 0.01 * target.std()
    # the posterior variance of x0 is the residual variance of that regression
    resid = (x0 - oracle.pred_x0(x_t, t)).var(0)
    assert torch.allclose(resid, torch.full((2,), oracle.x0_var(t), dtype=torch.float64),
                          rtol=0.02, atol=1e-6)


def test_eps_and_x0_agree_with_eq4(oracle):
    """x_t = √ᾱ E[x0|x_t] + √(1−ᾱ) E[ε|x_t] (eq. 4 holds for the conditional means too)."""
    x = torch.randn(16, 2, dtype=torch.float64)
    for t in (0, 37, 99):
        ab = oracle.alpha_bar(t)
        back = math.sqrt(ab) * oracle.pred_x0(x, t) + math.sqrt(1 - ab) * oracle(x, t)
        assert torch.allclose(back, x, atol=1e-12)


def test_flow_maps_marginals_and_composes(oracle):
    g = torch.Generator().manual_seed(0)
    x0 = oracle.sample_data(100_000, (2,), generator=g)
    x_T = oracle.flow(x0.double(), -1, 99)
    assert torch.allclose(x_T.mean(0), math.sqrt(oracle.alpha_bar(99)) * oracle.mean, atol=0.01)
    assert torch.allclose(x_T.var(0), torch.full((2,), oracle.marginal_var(99),
                                                 dtype=torch.float64), rtol=0.02)
    x = torch.randn(5, 2, dtype=torch.float64)
    assert torch.allclose(oracle.flow(oracle.flow(x, 80, 30), 30, -1), oracle.flow(x, 80, -1))
    assert torch.allclose(oracle.flow(oracle.flow(x, 80, -1), -1, 80), x)


def test_flow_is_the_ode_solution(oracle):
    """d x/d σ along the DDIM-parameterised ODE, x̄ = x/√ᾱ, σ = √((1−ᾱ)/ᾱ): dx̄/dσ = ε(x, t).

    Check the derivative of the exact map against the oracle's ε by a finite difference in ᾱ
    between neighbouring steps of a fine schedule.
    """
    fine = GaussianOracle(NoiseSchedule(kind="linear", T=4000, scale_to_T=True),
                          mean=oracle.mean, std=oracle.std)
    x = torch.randn(8, 2, dtype=torch.float64)
    t = 2000
    xbar = lambda s, y: y / math.sqrt(fine.alpha_bar(s))  # noqa: E731
    sig = lambda s: math.sqrt((1 - fine.alpha_bar(s)) / fine.alpha_bar(s))  # noqa: E731
    up, dn = fine.flow(x, t, t + 1), fine.flow(x, t, t - 1)
    deriv = (xbar(t + 1, up) - xbar(t - 1, dn)) / (sig(t + 1) - sig(t - 1))
    assert torch.allclose(deriv, fine(x, t), atol=1e-5)


def test_nll_is_the_entropy(oracle):
    g = torch.Generator().manual_seed(1)
    x0 = oracle.sample_data(200_000, (2,), generator=g).double()
    logp = torch.distributions.Normal(oracle.mean, oracle.std).log_prob(x0).sum(1)
    assert abs(-logp.mean().item() - oracle.nll_nats(2)) < 0.01


def test_bad_std_refused():
    with pytest.raises(ValueError, match="std"):
        GaussianOracle(NoiseSchedule(kind="linear", T=10), std=0.0)
