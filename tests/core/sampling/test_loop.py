"""The streaming loop: exact-model moments, streamed records, Stop, stored values, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.sampling import (
    sample,
    sample_final,
    time_pairs,
    timesteps,
)
from diffusion_core.schedule import NoiseSchedule
from tests.helpers import MU, SIGMA, GaussianEps


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


# Recorded from this implementation on 2026-11-23 (torch 2.13 CPU) after the analytic tests
# above passed; they pin the exact noise consumption order and step formulas.
STORED_DDPM = [[2.1365709305, -0.7739561796], [1.6828305721, -0.2177672684]]


STORED_DDIM = [[1.0707311630, -0.4195476770], [1.0308872461, -0.3799781799]]


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
    calls = []

    def counting(x, t):
        calls.append(int(t[0]))
        return model(x, t)

    gen = sample(counting, sched, x_T, sampler="ddpm")
    first = next(gen)
    assert first.index == 0 and calls == [99]  # the chain runs lazily: one call per step
    gen.close()  # the UI's Stop
    with pytest.raises(StopIteration):
        next(gen)
    assert calls == [99]  # no more model calls after Stop


def test_option_of_another_sampler_is_refused(sched):
    model = GaussianEps(sched)
    x_T = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="eta = 0.5 does not apply to DDPM"):
        next(sample(model, sched, x_T, sampler="ddpm", eta=0.5))
    with pytest.raises(ValueError, match="variance = 'beta' does not apply to DDIM"):
        next(sample(model, sched, x_T, sampler="ddim", variance="beta"))
    with pytest.raises(ValueError, match="unknown sampler option"):
        next(sample(model, sched, x_T, sampler="ddim", churn=1.0))
    # neutral values of the other sampler's options are accepted (a full settings dict)
    a = sample_final(model, sched, x_T, sampler="ddpm", eta=0.0, steps=5,
                     generator=torch.Generator().manual_seed(1))
    b = sample_final(model, sched, x_T, sampler="ddpm", steps=5,
                     generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_every_registered_sampler_has_a_step_with_the_uniform_signature(sched):
    from diffusion_core.sampling import SAMPLERS, step_function

    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    for name in SAMPLERS:
        out = step_function(name)(sched, x, 50, 40, torch.zeros_like(x), clip_x0=False,
                                  generator=torch.Generator().manual_seed(0))
        assert out.prev_sample.shape == x.shape and out.pred_x0.shape == x.shape


def test_full_loop_against_stored_values():
    """A whole DDPM and DDIM loop with a fixed seed (regression values, computed once)."""
    s = NoiseSchedule(kind="cosine", T=10)
    model = GaussianEps(s)
    x_T = torch.randn(2, 2, generator=torch.Generator().manual_seed(42))
    ddpm = sample_final(model, s, x_T, sampler="ddpm", generator=torch.Generator().manual_seed(7))
    ddim = sample_final(model, s, x_T, sampler="ddim", steps=5, eta=0.0)
    assert torch.allclose(ddpm, torch.tensor(STORED_DDPM), atol=1e-5), ddpm.tolist()
    assert torch.allclose(ddim, torch.tensor(STORED_DDIM), atol=1e-5), ddim.tolist()


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

