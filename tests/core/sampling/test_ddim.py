"""DDIM's step (Song et al. 2020, eqs. 12 and 16) against DDPM and its own identities."""

from __future__ import annotations

import pytest
import torch

from diffusion_core.sampling import (
    ddim_step,
    sample_final,
)
from tests.helpers import GaussianEps


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

