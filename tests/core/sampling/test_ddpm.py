"""DDPM's step (Ho et al. 2020, eq. 11) against the posterior route (eq. 7)."""

from __future__ import annotations

import torch

from diffusion_core.sampling import (
    ddpm_step,
)


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

