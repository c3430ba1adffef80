"""NoiseSchedule: derived buffers against their formulas, health, immutability."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.schedule import (
    NoiseSchedule,
    ScheduleConfig,
)


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

