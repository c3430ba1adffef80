"""β schedules: end points, monotonicity, hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.schedule import (
    BUILTIN_KINDS,
    NoiseSchedule,
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

