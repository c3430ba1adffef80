"""DDIM inversion: the visited timesteps, its ε̂ convention, and the round trip
x0 → ddim_invert → sample(ddim, η = 0) → x0 on Gaussian data (GaussianOracle)."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.oracles.gaussian import GaussianOracle
from diffusion_core.sampling import (
    ddim_invert,
    ddim_invert_steps,
    inversion_pairs,
    sample_final,
    time_pairs,
    timesteps,
)
from diffusion_core.schedule import NoiseSchedule

MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)


def _data(schedule, n=16, seed=0):
    oracle = GaussianOracle(schedule, mean=MEAN, std=0.5)
    return oracle, oracle.sample_data(n, (2,), generator=torch.Generator().manual_seed(seed)
                                      ).double()


def _round_trip_errors(schedule, oracle, x0, n, spacing="trailing"):
    """(RMS, max) of x0 − sample(ddim_invert(x0)) with the same steps and spacing."""
    x_T = ddim_invert(oracle, schedule, x0, steps=n, spacing=spacing)
    back = sample_final(oracle, schedule, x_T, sampler="ddim", eta=0.0, steps=n,
                        spacing=spacing)
    d = back - x0
    return d.pow(2).mean().sqrt().item(), d.abs().max().item()


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_pairs_mirror_the_sampling_chain(spacing):
    for T, n in [(10, 1), (10, 4), (100, 7), (1000, 1000)]:
        pairs = inversion_pairs(T, n, spacing)
        assert pairs == [(tp, t) for t, tp in reversed(time_pairs(timesteps(T, n, spacing)))]
        assert pairs[0][0] == -1 and pairs[-1][1] == timesteps(T, n, spacing)[0]


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [1, 3, 17])
def test_round_trip_is_exact_when_eps_does_not_depend_on_x(sched, spacing, n):
    """ε̂ = c(t) only: the inversion step t → t_next uses ε̂ with the label t_next, exactly what
    the sampling step t_next → t uses, so the round trip is exact for any step count. A label
    off by one visited step (e.g. ε̂(x_t, t)) breaks this."""
    calls = []

    def model(x, t):
        calls.append(int(t[0]))
        c = torch.stack([torch.sin(0.3 * t.double()), torch.cos(0.7 * t.double())], dim=1)
        return c.to(x.dtype)

    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_T = ddim_invert(model, sched, x0, steps=n, spacing=spacing)
    assert calls == timesteps(sched.T, n, spacing)[::-1]  # each visited t once, increasing
    back = sample_final(model, sched, x_T, sampler="ddim", eta=0.0, steps=n, spacing=spacing)
    assert torch.allclose(back, x0, atol=1e-10, rtol=0)
    # the defaults agree too: both spacings default to "leading"
    x_T = ddim_invert(model, sched, x0, steps=n)
    assert torch.allclose(sample_final(model, sched, x_T, sampler="ddim", steps=n), x0,
                          atol=1e-10, rtol=0)


def test_round_trip_error_shrinks_like_one_over_steps():
    """The round trip is exact only in the limit: its error is first order in the step size.

    Measured (linear, T = 1000, trailing, 16 points; RMS / max): 1 step 0.51 / 1.15,
    10 steps 0.21 / 0.48, 100 steps 0.027 / 0.058, 1000 steps 0.0028 / 0.0059 (≈ 2.8 / n RMS).
    """
    schedule = NoiseSchedule(kind="linear", T=1000)
    oracle, x0 = _data(schedule)
    rms = {n: _round_trip_errors(schedule, oracle, x0, n)[0] for n in (10, 100, 1000)}
    assert rms[10] > 0.1  # few steps: visibly not the same points
    assert 7 < rms[10] / rms[100] < 13 and 7 < rms[100] / rms[1000] < 13, rms


def test_many_steps_reconstruct_x0_to_1e_3():
    """Full chain of a 4000-step linear schedule (β range scaled by 1000/T): measured RMS 7.1e-4,
    max 1.5e-3 over 16 points (max ≤ 1e-3 needs about 7000 steps)."""
    schedule = NoiseSchedule(kind="linear", T=4000, scale_to_T=True)
    oracle, x0 = _data(schedule)
    rms, worst = _round_trip_errors(schedule, oracle, x0, schedule.T)
    assert rms <= 1e-3 and worst <= 2.5e-3, (rms, worst)


def test_latent_approaches_the_exact_flow(sched):
    """The latent approximates the probability-flow map x0 → x_{T−1} (GaussianOracle.flow).

    Measured RMS (linear, T = 100 scaled, trailing): 10 steps 0.36, 100 steps 0.045.
    """
    oracle, x0 = _data(sched)
    exact = oracle.flow(x0, -1, sched.T - 1)
    err = {n: (ddim_invert(oracle, sched, x0, steps=n, spacing="trailing") - exact
               ).pow(2).mean().sqrt().item() for n in (10, 100)}
    assert err[100] < 0.06 and err[10] / err[100] > 6, err


def test_stream_records_and_early_stop(sched):
    oracle, x0 = _data(sched, n=4)
    steps = list(ddim_invert_steps(oracle, sched, x0, steps=10, spacing="trailing"))
    ts = timesteps(sched.T, 10, "trailing")[::-1]
    assert [s.t for s in steps] == [-1, *ts[:-1]] and [s.t_next for s in steps] == ts
    assert steps[0].x_t is x0 and torch.equal(steps[0].pred_x0, x0)  # x̂0 = x0 at t = −1
    assert all(s.index == i and s.num_steps == 10 for i, s in enumerate(steps))
    assert torch.equal(steps[3].x_next, steps[4].x_t)
    assert torch.equal(steps[-1].x_next,
                       ddim_invert(oracle, sched, x0, steps=10, spacing="trailing"))
    # each record satisfies DDIM eq. 12 (η = 0) upwards
    s = steps[5]
    ab = sched.alpha_bar(s.t_next)
    assert torch.allclose(s.x_next, math.sqrt(ab) * s.pred_x0 + math.sqrt(1 - ab) * s.pred_eps)
    calls = []

    def counting(x, t):
        calls.append(int(t[0]))
        return oracle(x, t)

    gen = ddim_invert_steps(counting, sched, x0, steps=10)  # default spacing: leading
    next(gen)
    gen.close()  # the UI's Stop
    assert calls == [timesteps(sched.T, 10, "leading")[-1]]


@pytest.mark.parametrize("x0, kw, match", [
    (torch.zeros(2, 2), dict(steps=0), "steps"),
    (torch.zeros(2, 2), dict(steps=101), "steps"),
    (torch.zeros(2, 2), dict(steps=5, spacing="odd"), "spacing"),
    (torch.zeros(2), dict(steps=5), "shape"),
    (torch.full((2, 2), float("nan")), dict(steps=5), "NaN"),
])
def test_bad_input(sched, x0, kw, match):
    with pytest.raises(ValueError, match=match):
        next(ddim_invert_steps(lambda x, t: x, sched, x0, **kw))
