"""Schedules: end points, monotonicity, hand-computed values, derived buffers, validation."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.schedule import (
    BUILTIN_KINDS,
    NoiseSchedule,
    ScheduleConfig,
    make_betas,
)


def test_linear_hand_values_T10():
    b = make_betas("linear", 10)
    # β_t = 1e-4 + t · (0.02 − 1e-4) / 9
    assert b[0].item() == pytest.approx(1e-4, abs=1e-15)
    assert b[3].item() == pytest.approx(0.0067333333333, rel=1e-9)
    assert b[9].item() == pytest.approx(0.02, abs=1e-15)


def test_linear_scaled_range():
    b = make_betas("linear", 100, scale_to_T=True)
    assert b[0].item() == pytest.approx(1e-3)
    assert b[-1].item() == pytest.approx(0.2)
    with pytest.raises(ValueError, match="scaling"):
        make_betas("linear", 10, scale_to_T=True)  # β_end would be 2.0


def test_cosine_hand_values_T10():
    b = make_betas("cosine", 10)
    # f(u) = cos²((u + 0.008)/1.008 · π/2); β_t = 1 − f((t+1)/10) / f(t/10)
    assert b[0].item() == pytest.approx(0.02790726288603096, rel=1e-12)
    assert b[4].item() == pytest.approx(0.23728153019052478, rel=1e-12)
    assert b[8].item() == pytest.approx(0.743829366895427, rel=1e-12)
    assert b[9].item() == pytest.approx(0.999)  # clipped: f(1) = 0 would give β = 1


def test_cosine_alpha_bar_matches_f_ratio():
    s = NoiseSchedule(kind="cosine", T=1000)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 10, 500, 900):
        assert s.alpha_bar(t) == pytest.approx(f((t + 1) / 1000) / f(0), rel=1e-9)


def test_quadratic_really_adds_noise():
    b = make_betas("quadratic", 10)
    # √β linear from 0.01 to √0.02: t = 3 is one third of the way
    assert b[3].item() == pytest.approx(0.002895206027721375, rel=1e-12)
    assert b[-1].item() == pytest.approx(0.02, rel=1e-12)
    s = NoiseSchedule(kind="quadratic", T=1000)
    assert s.health().alpha_bar_last < 1e-3  # ends near pure noise at T = 1000


def test_sigmoid_and_polynomial_values():
    b = make_betas("sigmoid", 10, beta_start=0.001, beta_end=0.1)
    sig = 1 / (1 + math.exp(-(-6 + 12 * 4 / 9)))
    assert b[4].item() == pytest.approx(0.001 + 0.099 * sig, rel=1e-12)
    p = make_betas("polynomial", 10, power=3.0)
    assert p[3].item() == pytest.approx(1e-4 + 0.0199 * (3 / 9) ** 3, rel=1e-12)
    lin = make_betas("linear", 10)
    assert torch.allclose(make_betas("polynomial", 10, power=1.0), lin, atol=1e-15)


@pytest.mark.parametrize("kind", BUILTIN_KINDS)
def test_monotone_and_in_range(kind):
    b = make_betas(kind, 200)
    assert ((b > 0) & (b < 1)).all()
    assert (b[1:] >= b[:-1] - 1e-15).all(), "β_t should not decrease"
    s = NoiseSchedule(kind=kind, T=200)
    ac = s.float64["alphas_cumprod"]
    assert (ac[1:] < ac[:-1]).all(), "ᾱ_t must strictly decrease"


def test_derived_buffers_against_formulas():
    s = NoiseSchedule(kind="linear", T=10)
    b = s.float64["betas"]
    ac = torch.cumprod(1 - b, 0)
    assert torch.allclose(s.float64["alphas_cumprod"], ac, rtol=0, atol=1e-15)
    assert s.alphas_cumprod_prev[0].item() == 1.0
    t = 5
    expected = b[t] * (1 - ac[t - 1]) / (1 - ac[t])
    assert s.float64["posterior_variance"][t].item() == pytest.approx(expected.item(), rel=1e-12)
    assert s.posterior_variance[0].item() == 0.0  # β̃_0 = 0: x_{−1} = x0 is known exactly
    clipped = s.float64["posterior_log_variance_clipped"]
    assert torch.isfinite(clipped).all()
    assert clipped[0].item() == pytest.approx(math.log(s.float64["posterior_variance"][1].item()))
    assert s.float64["snr"][t].item() == pytest.approx((ac[t] / (1 - ac[t])).item(), rel=1e-12)
    assert s.betas.dtype == torch.float32 and s.float64["betas"].dtype == torch.float64


def test_health_flags_short_unscaled_linear():
    h = NoiseSchedule(kind="linear", T=50).health()
    assert h.alpha_bar_last == pytest.approx(0.602951597329715, rel=1e-9)
    assert h.warning is not None and "pure noise" in h.warning
    assert NoiseSchedule(kind="linear", T=1000).health().warning is None
    assert NoiseSchedule(kind="linear", T=50, scale_to_T=True).health().warning is None


def test_schedule_is_immutable_and_to_copies():
    s = NoiseSchedule(kind="cosine", T=20)
    with pytest.raises(AttributeError):
        s.betas = torch.zeros(20)
    c = s.to("cpu")
    assert c is not s and torch.equal(c.alphas_cumprod, s.alphas_cumprod)


def test_custom_schedule_and_config_roundtrip():
    cfg = ScheduleConfig(kind="custom", T=3, custom_betas=(0.1, 0.2, 0.3))
    s = NoiseSchedule(cfg)
    assert s.alpha_bar(2) == pytest.approx(0.9 * 0.8 * 0.7)
    assert ScheduleConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="linear", T=0), "T must"),
        (dict(kind="linear", T=10, beta_start=0.0), "beta_start"),
        (dict(kind="linear", T=10, beta_end=1.5), "beta_end"),
        (dict(kind="linear", T=10, beta_start=0.02, beta_end=0.01), "beta_end must be"),
        (dict(kind="wavy", T=10), "schedule kind"),
        (dict(kind="custom", T=2, custom_betas=(0.1, 1.0)), "custom_betas"),
        (dict(kind="custom", T=3, custom_betas=(0.1, 0.2)), "custom_betas"),
        (dict(kind="linear", T=10, beta_end=float("nan")), "beta_end"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScheduleConfig(**kwargs)
    with pytest.raises(ValueError):
        ScheduleConfig.from_dict({**kwargs, "bogus": 1})
