"""Samplers: timestep lists, DDIM/DDPM identities, statistics with an exact ε-model, regression."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.sampling import (
    ddim_step,
    ddpm_step,
    sample,
    sample_final,
    time_pairs,
    timesteps,
)
from diffusion_core.schedule import NoiseSchedule

MU = torch.tensor([1.0, -0.5])
SIGMA = 0.5


class GaussianEps(torch.nn.Module):
    """The exact ε-predictor for data x0 ~ N(MU, SIGMA² I): E[ε | x_t] in closed form.

    x_t = √ᾱ x0 + √(1−ᾱ) ε is Gaussian, so E[ε | x_t] = √(1−ᾱ)(x_t − √ᾱ μ) / (ᾱ σ² + 1 − ᾱ).
    """

    def __init__(self, schedule: NoiseSchedule):
        super().__init__()
        self.ab = schedule.float64["alphas_cumprod"]

    def forward(self, x_t, t):
        ab = self.ab[t].to(x_t.dtype)[:, None]
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * MU) / (ab * SIGMA**2 + 1 - ab)


@pytest.fixture(scope="module")
def sched():
    return NoiseSchedule(kind="linear", T=100, scale_to_T=True)


def test_timesteps_known_lists():
    assert timesteps(10, 5, "leading") == [8, 6, 4, 2, 0]
    assert timesteps(10, 5, "trailing") == [9, 7, 5, 3, 1]
    assert timesteps(10, 4, "linspace") == [9, 6, 3, 0]
    assert timesteps(1000, 1000, "leading") == list(range(999, -1, -1))
    for spacing in ("leading", "trailing", "linspace"):
        for n in (1, 3, 7, 333, 1000):
            ts = timesteps(1000, n, spacing)
            assert len(ts) == n and all(a > b for a, b in zip(ts, ts[1:], strict=False))
    assert time_pairs([8, 4, 0]) == [(8, 4), (4, 0), (0, -1)]


@pytest.mark.parametrize("bad", [dict(num_steps=11), dict(num_steps=0), dict(spacing="odd")])
def test_timesteps_bad_input(bad):
    with pytest.raises(ValueError):
        timesteps(10, **{"num_steps": 5, "spacing": "leading", **bad})


def test_ddim_eta1_full_chain_equals_ddpm(sched):
    model = GaussianEps(sched)
    x_T = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    ddpm = sample_final(model, sched, x_T, sampler="ddpm",
                        generator=torch.Generator().manual_seed(1))
    ddim = sample_final(model, sched, x_T, sampler="ddim", eta=1.0,
                        generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ddpm, ddim, atol=1e-4)


def test_ddim_eta1_variance_is_beta_tilde(sched):
    x = torch.zeros(1, 2)
    for t in (1, 50, 99):
        out = ddim_step(sched, x, t, t - 1, x, eta=1.0)
        assert out.std**2 == pytest.approx(sched.float64["posterior_variance"][t].item(), rel=1e-9)


def test_ddim_eta0_deterministic(sched):
    model = GaussianEps(sched)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    a = sample_final(model, sched, x_T, sampler="ddim", steps=20, eta=0.0,
                     generator=torch.Generator().manual_seed(1))
    b = sample_final(model, sched, x_T, sampler="ddim", steps=20, eta=0.0,
                     generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_ddpm_eq11_equals_posterior_route(sched):
    """Eq. 11 (from ε̂) and eq. 7 with x̂0 (the clip path) give the same mean when x̂0 ∈ [−1, 1]."""
    x_t = torch.full((4, 2), 0.3)
    eps = torch.full((4, 2), 0.1)
    for t in (0, 1, 40):
        a = ddpm_step(sched, x_t, t, t - 1, eps, variance="beta", clip_x0=False,
                      generator=torch.Generator().manual_seed(0))
        b = ddpm_step(sched, x_t, t, t - 1, eps, variance="beta", clip_x0=True,
                      generator=torch.Generator().manual_seed(0))
        if a.pred_x0.abs().max() <= 1:
            assert torch.allclose(a.prev_sample, b.prev_sample, atol=1e-5)
    # no noise on the last step, whatever the variance choice
    assert ddpm_step(sched, x_t, 0, -1, eps, variance="beta").std == 0.0


def analytic_moments(schedule, kw, mu):
    """Exact final mean/variance (per dimension) of the chain driven by GaussianEps.

    Every step is affine in x plus Gaussian noise, so N(m, v) stays Gaussian; this walks the
    same (t, t_prev) pairs with the paper formulas in float64, independently of samplers.py.
    """
    m, v = 0.0, 1.0
    pairs = time_pairs(timesteps(schedule.T, kw.get("steps") or schedule.T,
                                 kw.get("spacing", "leading")))
    for t, tp in pairs:
        ab, abp = schedule.alpha_bar(t), schedule.alpha_bar(tp)
        c = math.sqrt(1 - ab) / (ab * SIGMA**2 + 1 - ab)

        def step(x, ab=ab, abp=abp, c=c):
            eps = c * (x - math.sqrt(ab) * mu)
            if kw["sampler"] == "ddpm":
                beta = 1 - ab / abp
                return (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
            x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
            var = kw.get("eta", 0.0) ** 2 * (1 - abp) / (1 - ab) * (1 - ab / abp)
            return math.sqrt(abp) * x0 + math.sqrt(1 - abp - var) * eps

        if kw["sampler"] == "ddpm":
            beta = 1 - ab / abp
            noise_var = 0.0 if tp == -1 else (1 - abp) / (1 - ab) * beta  # β̃'
        else:
            noise_var = kw.get("eta", 0.0) ** 2 * (1 - abp) / (1 - ab) * (1 - ab / abp)
        a, b = step(1.0) - step(0.0), step(0.0)
        m, v = a * m + b, a * a * v + noise_var
    return m, v


@pytest.mark.parametrize("kw", [dict(sampler="ddpm"), dict(sampler="ddpm", steps=25),
                                dict(sampler="ddim", steps=50, eta=0.0),
                                dict(sampler="ddim", steps=20, eta=1.0, spacing="trailing")])
def test_exact_model_samples_match_analytic_moments(sched, kw):
    """With the exact ε for N(μ, σ²) the chain is linear-Gaussian: its output moments are known.

    Sampled mean/std must match the analytic ones (statistical tolerance), and those must be
    close to the data's (μ, σ): the discretisation bias of a 100-step chain is a few percent.
    """
    n = 20000
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    out = sample_final(GaussianEps(sched), sched, x_T,
                       generator=torch.Generator().manual_seed(1), **kw)
    for d in range(2):
        m, v = analytic_moments(sched, kw, MU[d].item())
        se = math.sqrt(v / n)
        assert out[:, d].mean().item() == pytest.approx(m, abs=5 * se)
        assert out[:, d].std().item() == pytest.approx(math.sqrt(v), rel=0.03)
        assert m == pytest.approx(MU[d].item(), abs=0.02)
        assert math.sqrt(v) == pytest.approx(SIGMA, rel=0.25)


def test_stream_records_and_early_stop(sched):
    model = GaussianEps(sched)
    x_T = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    steps = list(sample(model, sched, x_T, sampler="ddim", steps=10))
    assert [s.t for s in steps] == timesteps(100, 10)
    assert steps[-1].t_prev == -1 and steps[0].x_t is x_T
    assert all(s.index == i and s.num_steps == 10 for i, s in enumerate(steps))
    assert torch.equal(steps[3].x_prev, steps[4].x_t)
    gen = sample(model, sched, x_T, sampler="ddpm")
    first = next(gen)
    gen.close()  # the UI's Stop: no more model calls after this
    assert first.index == 0


def test_full_loop_against_stored_values():
    """A whole DDPM and DDIM loop with a fixed seed (regression values, computed once)."""
    s = NoiseSchedule(kind="cosine", T=10)
    model = GaussianEps(s)
    x_T = torch.randn(2, 2, generator=torch.Generator().manual_seed(42))
    ddpm = sample_final(model, s, x_T, sampler="ddpm", generator=torch.Generator().manual_seed(7))
    ddim = sample_final(model, s, x_T, sampler="ddim", steps=5, eta=0.0)
    assert torch.allclose(ddpm, torch.tensor(STORED_DDPM), atol=1e-5), ddpm.tolist()
    assert torch.allclose(ddim, torch.tensor(STORED_DDIM), atol=1e-5), ddim.tolist()


# Recorded from this implementation on 2026-11-23 (torch 2.13 CPU) after the analytic tests
# above passed; they pin the exact noise consumption order and step formulas.
STORED_DDPM = [[2.1365709305, -0.7739561796], [1.6828305721, -0.2177672684]]
STORED_DDIM = [[1.0707311630, -0.4195476770], [1.0308872461, -0.3799781799]]


@pytest.mark.parametrize(
    "kw, match",
    [(dict(sampler="ddim", eta=1.5), "eta"), (dict(steps=101), "steps"),
     (dict(sampler="euler"), "sampler"), (dict(variance="big"), "variance")],
)
def test_bad_input(sched, kw, match):
    with pytest.raises(ValueError, match=match):
        next(sample(GaussianEps(sched), sched, torch.zeros(2, 2), **kw))
    with pytest.raises(ValueError, match="NaN"):
        next(sample(GaussianEps(sched), sched, torch.full((2, 2), float("nan"))))
