"""Tests for diffusion_core.evaluation.gradients: the gradient and two-colour misfits."""

from __future__ import annotations

import pytest
import torch

from diffusion_core.data.synthetic import make_gradients, make_shapes
from diffusion_core.evaluation.gradients import gradient_residual, two_colour_residual

from ._images import gaussian_blur


def test_gradient_residual_zero_for_gradients_large_for_noise() -> None:
    g = make_gradients(200, 16, seed=0)
    assert gradient_residual(g).max() < 1e-5
    diag = make_gradients(20, 16, seed=3, directions="diagonal")
    assert gradient_residual(diag).max() < 1e-5
    noise = torch.rand(20, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    r = gradient_residual(noise)
    assert r.shape == (20,) and r.min() > 0.4  # ≈ std of U(−1, 1) = 0.577
    # A smooth image that is not a two-colour gradient still misfits.
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    radial = (xx**2 + yy**2 - 0.7).expand(1, 3, 16, 16)
    assert gradient_residual(radial)[0] > 0.1
    # Slightly noisy gradients score about the noise level.
    noisy = g[:50] + 0.05 * torch.randn(50, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert 0.03 < float(gradient_residual(noisy).mean()) < 0.06


def test_two_colour_residual_zero_for_shapes_about_the_noise_for_noisy_ones() -> None:
    x, _ = make_shapes(200, 16, seed=5)
    assert two_colour_residual(x).max() < 1e-5
    blurred = gaussian_blur(x.reshape(-1, 1, 16, 16), 1.0).reshape(x.shape)
    assert two_colour_residual(blurred).max() < 1e-5  # blur keeps the two-colour line
    g = torch.Generator().manual_seed(0)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    r = float(two_colour_residual(noisy).mean())
    assert 0.06 < r < 0.09  # ≈ 0.1 · √(2/3) = 0.082 (clamping shrinks it a little)
    # Three stripes of red, green, blue: no line through RGB passes near all three colours.
    three = -torch.ones(1, 3, 16, 15)
    for c in range(3):
        three[0, c, :, 5 * c:5 * c + 5] = 1.0
    assert float(two_colour_residual(three)[0]) > 0.3
    with pytest.raises(ValueError, match="images"):
        two_colour_residual(torch.zeros(2, 1, 16, 16))
