"""Two-colour image judges: how well each image fits the gradient model or the two-colour model.

Both are per-image RMS misfits ``[N]`` of an exact generative model of
:mod:`diffusion_core.data.synthetic`:

* :func:`gradient_residual`: ``c0 · (1 − w_d) + c1 · w_d`` with ``w_d`` one of the fixed weight
  maps (``make_gradients``);
* :func:`two_colour_residual`: every pixel's colour on the segment between two free colours,
  ``bg · (1 − m) + fg · m`` (``make_shapes``; gradients fit it too). :func:`_colour_line` is the
  least-squares line through an image's colours that :mod:`.shapes` also uses.
"""

from __future__ import annotations

import torch

from ..data.synthetic import gradient_weight_maps

__all__ = ["gradient_residual", "two_colour_residual"]


def gradient_residual(images: torch.Tensor) -> torch.Tensor:
    """Per-image RMS residual ``[N]`` of the best fit of the two-colour gradient model.

    The model of :func:`diffusion_core.data.make_gradients`: ``x[c] = c0[c]·(1 − w_d) +
    c1[c]·w_d``, i.e. per channel an affine function ``a_c + b_c·w_d`` of one weight map ``w_d``
    shared by all channels. For each direction d the least-squares fit is the projection of every
    channel onto span{1, w_d}; the residual RMS is taken over all C·H·W values, and the smallest
    over the directions is returned. 0 for a true gradient (float rounding aside); ≈ the noise
    std for noise. ``images [N, C, H, W]`` (C usually 3, H, W ≥ 2); float32 result on CPU.
    """
    x = torch.as_tensor(images).detach().to("cpu", torch.float64)
    if x.ndim != 4 or x.shape[0] < 1 or x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"images must be [N, C, H, W] with H, W >= 2, got {tuple(x.shape)}")
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    centred = flat - flat.mean(dim=2, keepdim=True)  # removes the span{1} component
    maps = gradient_weight_maps(h, w).double().reshape(-1, h * w)
    e = maps - maps.mean(dim=1, keepdim=True)
    e = e / e.norm(dim=1, keepdim=True)  # [K, HW], orthogonal to 1
    best = None
    for k in range(e.shape[0]):
        coef = (centred * e[k]).sum(dim=2, keepdim=True)
        rms = (centred - coef * e[k]).pow(2).mean(dim=(1, 2)).sqrt()
        best = rms if best is None else torch.minimum(best, rms)
    return best.float()


def _check_rgb(images: torch.Tensor, *, min_n: int = 1) -> torch.Tensor:
    """``images [N, 3, H, W]`` (H, W ≥ 2, finite) as float64 on the CPU, or a ValueError."""
    x = torch.as_tensor(images).detach().to("cpu", torch.float64)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"images must be [N, 3, H, W] with H, W >= 2, got {tuple(x.shape)}")
    if x.shape[0] < min_n:
        raise ValueError(f"images must hold at least {min_n} image(s), got {x.shape[0]}")
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or infinite values")
    return x


def _colour_line(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image least-squares line through the pixel colours of ``x [N, 3, H, W]`` (float64).

    Returns ``(mean [N, 3], axis [N, 3], eigenvalues [N, 3] ascending)`` of the colours'
    3×3 scatter matrix (divided by H·W); ``axis`` is the principal direction.
    """
    n = x.shape[0]
    pix = x.reshape(n, 3, -1).transpose(1, 2)  # [N, HW, 3]
    mean = pix.mean(dim=1)
    c = pix - mean.unsqueeze(1)
    scatter = c.transpose(1, 2) @ c / pix.shape[1]
    evals, evecs = torch.linalg.eigh(scatter)
    return mean, evecs[:, :, 2], evals.clamp_min(0.0)


def two_colour_residual(images: torch.Tensor) -> torch.Tensor:
    """Per-image RMS misfit ``[N]`` (float32) of the best fit ``bg · (1 − m) + fg · m``.

    The model of :func:`diffusion_core.data.make_shapes`: every pixel's colour lies on the
    segment between two colours ``bg, fg`` (``m ∈ [0, 1]`` its coverage). With ``fg`` and
    ``bg`` free, the best such fit is the least-squares line through the ``H·W`` colours in
    RGB (its end points are the extreme projections, so ``m`` stays in [0, 1]); the residual
    is the RMS distance to that line over all ``3·H·W`` values, ``sqrt((λ₁ + λ₂) / 3)`` with
    ``λ₁ ≤ λ₂`` the two smallest eigenvalues of the colours' scatter matrix. 0 for a real
    (anti-aliased, or blurred) two-colour image; ≈ σ·√(2/3) for added N(0, σ²) noise.
    ``images [N, 3, H, W]`` in [−1, 1] (values are clamped first, as a sample is shown).
    """
    x = _check_rgb(images).clamp(-1.0, 1.0)
    _, _, evals = _colour_line(x)
    return ((evals[:, 0] + evals[:, 1]) / 3.0).sqrt().float()
