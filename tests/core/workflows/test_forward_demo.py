"""The forward-noising demo (tab 2's workflow): parts, x_t, SNR, the strip, eq. 2 vs eq. 4."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from diffusion_core import forward
from diffusion_core.sampling.spacing import evenly_spaced
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig
from diffusion_core.workflows import forward_demo as fd

COSINE = ScheduleConfig(kind="cosine", T=1000)
LINEAR = ScheduleConfig(kind="linear", T=200)


@pytest.fixture(scope="module")
def gradient():
    """x0 ``[1, 3, 64, 64]`` (the colour gradient) and its ε from seed 2."""
    x0 = fd.builtin_image("gradient").unsqueeze(0).contiguous()
    return x0, fd.draw_eps(x0, 2)


def test_workflow_imports_no_ui_library():
    import diffusion_core.workflows.forward_demo  # noqa: F401

    src = open(fd.__file__, encoding="utf-8").read()
    assert "gradio" not in src and "plotly" not in src
    assert fd.ForwardParts is sys.modules["diffusion_core.workflows"].ForwardParts  # lazy


@pytest.mark.parametrize("key, shape", [("china", (3, 256, 256)), ("digit", (1, 64, 64)),
                                        ("gradient", (3, 64, 64))])
def test_builtin_images(key, shape):
    x0 = fd.builtin_image(key)
    assert tuple(x0.shape) == shape and x0.dtype == torch.float32
    assert -1 <= float(x0.min()) and float(x0.max()) <= 1
    with pytest.raises(ValueError, match="Unknown image"):
        fd.builtin_image("moon")


def test_same_seed_same_eps(gradient):
    x0, eps = gradient
    assert torch.equal(eps, fd.draw_eps(x0, 2))
    assert not torch.equal(eps, fd.draw_eps(x0, 3))
    assert eps.shape == x0.shape and abs(float(eps.std()) - 1) < 0.05
    assert fd.chain_seed(2) != 2 and fd.chain_seed(2**31 - 1) == fd.CHAIN_SEED_OFFSET - 1


def test_schedule_is_built_once_per_config():
    assert fd.noise_schedule(COSINE) is fd.noise_schedule(ScheduleConfig(kind="cosine"))
    assert fd.noise_schedule(LINEAR) is not fd.noise_schedule(COSINE)


@pytest.mark.parametrize("config", [COSINE, LINEAR, ScheduleConfig(kind="sigmoid", T=7)])
def test_parts_add_up_to_x_t_and_x_t_is_q_sample(gradient, config):
    x0, eps = gradient
    schedule = fd.noise_schedule(config)
    for t in sorted({0, 1, config.T // 2, config.T - 1}):
        p = fd.forward_parts(schedule, x0, eps, t)
        assert p.t == t and p.x_t.shape == x0.shape[1:]
        assert torch.equal(p.signal + p.noise, p.x_t)  # exactly, not approximately
        assert torch.equal(p.x_t, forward.q_sample(schedule, x0, t, eps)[0])
        ab = schedule.alpha_bar(t)
        torch.testing.assert_close(p.signal, math.sqrt(ab) * x0[0])
        torch.testing.assert_close(p.noise, math.sqrt(1 - ab) * eps[0])
    with pytest.raises(ValueError, match="t must be"):
        fd.forward_parts(schedule, x0, eps, config.T)
    with pytest.raises(ValueError, match="eps"):
        fd.forward_parts(schedule, x0, eps[..., :5], 0)


@pytest.mark.parametrize("t", [0, 10, 500, 999])
def test_frame_stats_read_the_schedule(gradient, t):
    x0, eps = gradient
    schedule = fd.noise_schedule(COSINE)
    p = fd.forward_parts(schedule, x0, eps, t)
    st = fd.frame_stats(schedule, x0, p, bins=80, value_range=4.0)
    ab = float(NoiseSchedule(COSINE).float64["alphas_cumprod"][t])
    assert st.t == t and st.T == 1000 and st.alpha_bar == ab
    assert st.snr == pytest.approx(ab / (1 - ab), rel=1e-12)
    assert st.snr_db == pytest.approx(10 * math.log10(ab / (1 - ab)), rel=1e-12)
    assert st.signal == pytest.approx(math.sqrt(ab), rel=1e-15)
    assert st.noise == pytest.approx(math.sqrt(1 - ab), rel=1e-12)
    mse = float(((p.x_t - x0[0]) ** 2).mean())
    assert st.psnr_db == pytest.approx(10 * math.log10(4 / mse), rel=1e-6)
    assert st.mean == pytest.approx(float(p.x_t.mean())) and st.std == pytest.approx(
        float(p.x_t.std()))
    h = st.histogram
    assert len(h.centers) == len(h.counts) == 80 and h.width == pytest.approx(0.1)
    inside = int(((p.x_t >= -4) & (p.x_t <= 4)).sum())
    assert int(h.counts.sum()) == inside
    assert float(np.sum(h.density) * h.width) == pytest.approx(inside / p.x_t.numel(), abs=1e-6)


def test_psnr_infinite_when_x_t_is_x0(gradient):
    x0, _ = gradient
    schedule = fd.noise_schedule(LINEAR)
    p = fd.ForwardParts(t=0, signal=x0[0], noise=torch.zeros_like(x0[0]), x_t=x0[0])
    assert fd.frame_stats(schedule, x0, p, bins=10, value_range=1.0).psnr_db == math.inf


def test_strip_ts_are_evenly_spaced_with_one_eps():
    x0 = fd.builtin_image("china").unsqueeze(0).contiguous()  # 256×256 → subsampled by 2
    eps = fd.draw_eps(x0, 0)
    for config, n in ((COSINE, 8), (LINEAR, 5), (ScheduleConfig(kind="linear", T=5), 8)):
        schedule = fd.noise_schedule(config)
        s = fd.strip(schedule, x0, eps, frames=n, max_side=128)
        assert list(s.ts) == evenly_spaced(config.T, n)
        assert s.frames.shape == (len(s.ts), 3, 128, 128)
        for i, t in enumerate(s.ts):
            exp = forward.q_sample(schedule, x0[..., ::2, ::2], t, eps[..., ::2, ::2])[0]
            assert torch.equal(s.frames[i], exp)
    assert fd.strip(fd.noise_schedule(COSINE), x0, eps, frames=8, max_side=256).frames.shape[
        -1] == 256  # no subsampling needed


def test_eq2_and_eq4_agree_in_mean_and_variance(gradient):
    """Statistics that can fail: the two routes give the same distribution (fixed seeds)."""
    x0, eps = gradient
    schedule = fd.noise_schedule(LINEAR)
    for t in (20, 120, 199):
        c = fd.compare(schedule, x0, eps, t, seed=2)
        ab = schedule.alpha_bar(t)
        assert c.t == t and c.seconds >= 0
        assert torch.equal(c.x_closed, forward.q_sample(schedule, x0, t, eps)[0])
        g = torch.Generator().manual_seed(fd.chain_seed(2))
        assert torch.equal(c.x_iter, forward.q_sample_iterative(schedule, x0, t, generator=g)[0])
        st = c.stats
        target = math.sqrt(1 - ab)
        assert st.theory.resid_std == pytest.approx(target)
        assert st.theory.mean == pytest.approx(math.sqrt(ab) * float(x0.mean()), abs=1e-6)
        for route in (st.iterative, st.closed):  # 12 288 values: se(mean) ≈ 0.009·target
            assert route.resid_mean == pytest.approx(0, abs=0.04 * target)
            assert route.resid_std == pytest.approx(target, rel=0.03)
            assert route.mean == pytest.approx(st.theory.mean, abs=0.04 * target)
        # Variances agree with each other (F-test scale: rel. s.e. of a variance ≈ 1.3 %).
        assert st.iterative.resid_std**2 == pytest.approx(st.closed.resid_std**2, rel=0.06)
        assert abs(st.noise_correlation) < 0.05  # independent draws
        assert st.rms_difference == pytest.approx(math.sqrt(2) * target, rel=0.05)


def test_compare_stats_would_see_a_wrong_variance(gradient):
    """The check above can fail: noise scaled by 1.2 is caught."""
    x0, eps = gradient
    schedule = fd.noise_schedule(LINEAR)
    ab = schedule.alpha_bar(120)
    x_closed = forward.q_sample(schedule, x0, 120, eps)[0]
    wrong = math.sqrt(ab) * x0[0] + 1.2 * math.sqrt(1 - ab) * eps[0]
    st = fd.compare_stats(wrong, x_closed, x0[0], ab)
    assert st.iterative.resid_std != pytest.approx(st.theory.resid_std, rel=0.03)
