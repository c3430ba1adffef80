"""Classifier-free guidance (Ho & Salimans 2022) for every sampler, with one convention.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. A class-conditional network (``num_classes =
K > 0``) is two models in one: ε(x_t, t, y) for a class y ∈ {0, …, K−1} and ε(x_t, t, ∅) for the
null class K ("no label"), which training shows with probability ``TrainConfig.p_uncond``.
Guidance mixes them:

    ε̃ = ε_u + s · (ε_c − ε_u),    ε_c = ε(x_t, t, y),  ε_u = ε(x_t, t, ∅)

=========  =========================================================================
``scale``  s, the guidance scale (diffusers' ``guidance_scale``; Ho & Salimans' w is s − 1)
s = 0      the unconditional model: samples of the whole data set, whatever y is
s = 1      the conditional model: samples of class y, as trained
s > 1      guides harder: further from the other classes, less varied within the class
=========  =========================================================================

:class:`GuidedModel` wraps a model as an ε-predictor ``(x_t, t) → ε̃``, so every registered
sampler (DDPM, DDIM, DPM-Solver++ 2M, and DDIM inversion) runs it unchanged. ε_c and ε_u come
from ONE batched forward pass: the batch is concatenated with itself, the second half labelled
with the null class (2B examples, one call), then split. At a single scale of exactly 0 or 1
only the selected model runs (B examples): the result is then the plain model's, bit for bit.
(The batched pass agrees with separate calls to float32 rounding — ~1e-6 per U-Net prediction,
since convolution kernels round differently at another batch size.)

x0- and v-networks (an :class:`~diffusion_core.forward.EpsPredictor`) are guided in ε space:
the network's two outputs are converted to ε̂ first (``eps_from_prediction``), then mixed. For a
fixed x_t and t that conversion is affine in the output, so the result equals guiding the x0 or
v outputs with the same s and converting once; stating it in ε keeps one formula for all three.

Any other callable ``model(x_t, t, y=None)`` (e.g. the class-conditional
:class:`~diffusion_core.oracles.ideal.IdealDenoiser`, whose ``y = None`` is its unconditional
form) is guided with two calls, ``model(x_t, t, y)`` and ``model(x_t, t)``: its exact guided
field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..forward import EpsPredictor, eps_from_prediction

__all__ = ["GuidedEps", "GuidedModel", "guidance_mix"]


@dataclass(frozen=True)
class GuidedEps:
    """The three noise predictions at one (x_t, t), shapes ``[B, ...]`` like x_t.

    ``eps_uncond`` ε_u (null class), ``eps_cond`` ε_c (class y), ``eps`` ε̃ = ε_u + s(ε_c − ε_u).
    """

    eps_uncond: torch.Tensor
    eps_cond: torch.Tensor
    eps: torch.Tensor


def guidance_mix(eps_uncond: torch.Tensor, eps_cond: torch.Tensor,
                 scale: float | torch.Tensor) -> torch.Tensor:
    """ε̃ = ε_u + s · (ε_c − ε_u); ``scale`` a number or a per-sample tensor ``[B]``."""
    if isinstance(scale, torch.Tensor):
        scale = scale.to(eps_cond.device, eps_cond.dtype).reshape(
            -1, *([1] * (eps_cond.ndim - 1)))
    return eps_uncond + scale * (eps_cond - eps_uncond)


def _check_scale(scale: float | torch.Tensor) -> float | torch.Tensor:
    if isinstance(scale, torch.Tensor):
        if scale.ndim != 1 or (not scale.is_floating_point() and scale.dtype != torch.long):
            raise ValueError(f"a per-sample guidance scale must be a tensor [B]; got "
                             f"{list(scale.shape)} {scale.dtype}")
        if not torch.isfinite(scale.double()).all():
            raise ValueError("guidance scale contains NaN or inf")
        return scale.detach().to(torch.float64)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"guidance scale s must be a finite number (0 = unconditional, "
                         f"1 = conditional, > 1 guides harder); got {scale!r}")
    return float(scale)


class GuidedModel:
    """``model`` with classifier-free guidance toward ``y``: an ε-predictor ``(x_t, t) → ε̃``.

    ε̃ = ε_u + s · (ε_c − ε_u): s = 0 is the unconditional model, s = 1 the conditional one,
    s > 1 guides harder (see the module docstring).

    Args:
        model: a class-conditional network (``MLP2D`` / ``UNet`` with ``num_classes > 0``), the
            same wrapped as an ε-predictor (``EpsPredictor`` of an x0- or v-network; guided in ε
            space), or any callable ``model(x_t, t, y=None) → ε`` (two calls per step).
        y: the class, an int (every sample) or an int64 tensor ``[B]`` (one per sample), in
            0..K−1.
        scale: s, a finite number or a per-sample tensor ``[B]`` (e.g. a digit × scale grid in
            one chain). Negative s pushes away from y.

    Call it as samplers do, under ``torch.inference_mode()``: ``x_t [B, ...]``, ``t`` int64
    ``[B]`` (or an int) → ``[B, ...]``. :meth:`parts` returns ε_u, ε_c and ε̃ from the same pass
    (the three fields a view draws). Tensors follow x_t's device.
    """

    def __init__(self, model: Callable, y: int | torch.Tensor,
                 scale: float | torch.Tensor = 1.0) -> None:
        self.model = model
        self.scale = _check_scale(scale)
        network, prediction, schedule = model, "eps", None
        if isinstance(model, EpsPredictor):
            network, prediction, schedule = model.network, model.prediction, model.schedule
        self.network, self.prediction, self.schedule = network, prediction, schedule
        null = getattr(network, "null_class", _GENERIC)
        if null is None:
            raise ValueError("the model is unconditional (num_classes = 0): classifier-free "
                             "guidance needs a class-conditional model (train with labels)")
        self.null_class: int | None = None if null is _GENERIC else int(null)
        if isinstance(y, bool) or not isinstance(y, (int, torch.Tensor)):
            raise ValueError(f"y must be an int or an int64 tensor [B]; got {type(y).__name__}")
        if isinstance(y, torch.Tensor):
            if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool:
                raise ValueError(f"y must be an int or an integer tensor [B]; got "
                                 f"{list(y.shape)} {y.dtype}")
            y = y.detach().to(torch.long)
            lo, hi = (int(y.min()), int(y.max())) if y.numel() else (0, 0)
        else:
            lo = hi = int(y)
        if lo < 0 or (self.null_class is not None and hi >= self.null_class):
            top = "K − 1" if self.null_class is None else str(self.null_class - 1)
            raise ValueError(f"y must be a class in 0..{top}; got values in {lo}..{hi}")
        self.y = y

    @property
    def batched(self) -> bool:
        """Whether ε_c and ε_u come from one forward pass (a network with a null class)."""
        return self.null_class is not None

    def _labels(self, batch: int, device: torch.device) -> torch.Tensor:
        y = self.y
        if isinstance(y, int):
            return torch.full((batch,), y, dtype=torch.long, device=device)
        if y.shape != (batch,):
            raise ValueError(f"y has {y.shape[0]} labels but x_t has {batch} samples")
        return y.to(device)

    def parts(self, x_t: torch.Tensor, t: int | torch.Tensor) -> GuidedEps:
        """ε_u, ε_c and ε̃ at ``(x_t [B, ...], t)`` from one batched forward pass."""
        if not isinstance(x_t, torch.Tensor) or x_t.ndim < 2:
            raise ValueError("x_t must be a tensor of shape [B, ...]")
        b = x_t.shape[0]
        if isinstance(t, int) and not isinstance(t, bool):
            t = torch.full((b,), t, dtype=torch.long, device=x_t.device)
        y = self._labels(b, x_t.device)
        if isinstance(self.scale, torch.Tensor) and self.scale.shape != (b,):
            raise ValueError(f"scale has {self.scale.shape[0]} values but x_t has {b} samples")
        if self.null_class is None:  # a generic callable: two calls
            eps_c, eps_u = self.model(x_t, t, y), self.model(x_t, t)
        else:
            x2, t2 = torch.cat((x_t, x_t)), torch.cat((t, t))
            y2 = torch.cat((y, torch.full_like(y, self.null_class)))  # second half: no label
            out = self.network(x2, t2, y2)
            if self.prediction != "eps":  # x0 / v network: guide in ε space
                out = eps_from_prediction(self.schedule, x2, t2, out, self.prediction)
            eps_c, eps_u = out[:b], out[b:]
        return GuidedEps(eps_uncond=eps_u, eps_cond=eps_c,
                         eps=guidance_mix(eps_u, eps_c, self.scale))

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """ε̃ = ε_u + s · (ε_c − ε_u) ``[B, ...]``.

        With one scale of exactly 0 or 1 only the model that s selects is run (B examples, not
        2B): ε̃ is then ε_u or ε_c bit for bit — what the plain call computes — in half the
        time. Any other s, and a per-sample tensor of scales, runs the batched pass.
        """
        if isinstance(self.scale, float) and self.scale in (0.0, 1.0):
            return self._one(x_t, t, conditional=self.scale == 1.0)
        return self.parts(x_t, t).eps

    def _one(self, x_t: torch.Tensor, t: int | torch.Tensor, *, conditional: bool
             ) -> torch.Tensor:
        """ε_c (``conditional``) or ε_u alone, exactly as the unguided model computes it."""
        b = x_t.shape[0]
        if isinstance(t, int) and not isinstance(t, bool):
            t = torch.full((b,), t, dtype=torch.long, device=x_t.device)
        if not conditional:
            return self.model(x_t, t)  # the null class (or a generic model's y = None)
        y = self._labels(b, x_t.device)
        if self.null_class is None:
            return self.model(x_t, t, y)
        out = self.network(x_t, t, y)
        if self.prediction != "eps":
            out = eps_from_prediction(self.schedule, x_t, t, out, self.prediction)
        return out

    def __repr__(self) -> str:
        s = (f"per-sample [{self.scale.shape[0]}]" if isinstance(self.scale, torch.Tensor)
             else f"{self.scale:g}")
        y = self.y if isinstance(self.y, int) else f"[{self.y.shape[0]} labels]"
        return f"GuidedModel(y={y}, scale={s}, batched={self.batched})"


_GENERIC = object()  # marker: the model has no ``null_class`` attribute (a generic callable)
