"""The streaming reverse chain: any registered sampler, any ε-predictor, any schedule.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. The chain visits the decreasing timesteps of
:func:`~diffusion_core.sampling.spacing.timesteps`, walking ``(t, t_prev)`` pairs whose last
``t_prev`` is −1, and yields a :class:`SampleStep` after every step (k-diffusion's callback,
as a generator), so the UI animates and stops without a second code path. Models and schedules
stay separate: the model is called as ``model(x_t, t)`` with ``t`` int64 ``[B]``.

Class-conditional sampling and classifier-free guidance need no option here: wrap the model,
``GuidedModel(model, y, scale)`` (:mod:`.guidance`; ε̃ = ε_u + s·(ε_c − ε_u), s = 0
unconditional, s = 1 conditional, s > 1 guides harder), and every sampler runs it as it is. A
conditional network called plainly (``model(x_t, t)``) is its unconditional (null-class) model.

Steps are stateless functions. For a multistep sampler (registry ``multistep=True``, e.g.
DPM-Solver++ 2M) the loop is the one that remembers: after each step it keeps
``PreviousStep(t, pred_x0)`` and passes it as ``previous=`` to the next step (``None`` first).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ..schedule import NoiseSchedule
from .config import SamplerName, Spacing, check_options, sampler_info
from .spacing import time_pairs, timesteps
from .step import PreviousStep


@dataclass(frozen=True)
class SampleStep:
    """What the streaming sampler yields after each reverse step.

    ``x_t`` is the input at timestep ``t``; ``x_prev`` the output at ``t_prev`` (−1 on the
    last step: the final sample). Tensors ``[B, ...]``; ``index`` counts 0..num_steps−1.
    """

    index: int
    num_steps: int
    t: int
    t_prev: int
    x_t: torch.Tensor
    x_prev: torch.Tensor
    pred_x0: torch.Tensor
    pred_eps: torch.Tensor


def step_function(name: str) -> Callable:
    """The ``step`` function of a registered sampler (uniform signature, see ``ddpm.step``)."""
    return importlib.import_module(sampler_info(name).module, __package__).step


def sample(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    sampler: SamplerName = "ddpm",
    steps: int | None = None,
    spacing: Spacing = "leading",
    clip_x0: bool = False,
    generator: torch.Generator | None = None,
    **options,
) -> Iterator[SampleStep]:
    """Run the reverse chain from x_T, yielding a :class:`SampleStep` after every step.

    Args:
        model: ε-predictor, ``model(x_t [B, ...], t int64 [B]) -> [B, ...]``; for a class
            and a guidance scale, a :class:`~diffusion_core.sampling.guidance.GuidedModel`.
        x_T: ``[B, ...]`` starting noise (usually ``torch.randn``).
        sampler: a name in :data:`~diffusion_core.sampling.config.SAMPLERS`: ``"ddpm"``
            (ancestral, eq. 11; respaced when steps < T), ``"ddim"`` (eq. 12) or
            ``"dpmpp_2m"`` (DPM-Solver++ 2M, deterministic, second order).
        steps: number of visited timesteps, 1..T (None = T, the full chain; a UI's "default
            steps" come from ``SamplerSettings.sample_kwargs``).
        spacing: how the visited timesteps are chosen (see ``timesteps``).
        clip_x0: clamp x̂0 to [−1, 1] (for images; off for 2D points).
        generator: all randomness comes from it: fixed generator ⇒ identical run.
        **options: the sampler's own options — DDPM ``variance`` (σ² = β̃ ``"beta_tilde"`` or
            β ``"beta"``), DDIM ``eta`` (η ∈ [0, 1]). An option another sampler uses is
            refused unless it has its neutral value (η = 0, variance β̃).

    The loop stops early if the consumer stops iterating (the UI's Stop button).
    """
    if not isinstance(x_T, torch.Tensor) or x_T.ndim < 2 or not x_T.is_floating_point():
        raise ValueError("x_T must be a float tensor of shape [B, ...]")
    if not torch.isfinite(x_T).all():
        raise ValueError("x_T contains NaN or inf")
    info = sampler_info(sampler)
    check_options(sampler, options)
    from .config import SamplerSettings  # validates each option's value once, up front

    SamplerSettings(sampler=sampler, steps=steps, spacing=spacing, clip_x0=bool(clip_x0),
                    **options)
    own = {k: (float(v) if k == "eta" else v) for k, v in options.items() if k in info.options}
    step_fn = step_function(sampler)
    ts = timesteps(schedule.T, schedule.T if steps is None else steps, spacing)
    pairs = time_pairs(ts)
    x = x_T
    batch = x.shape[0]
    previous = None  # a multistep sampler's memory of the step before
    for i, (t, t_prev) in enumerate(pairs):
        t_batch = torch.full((batch,), t, dtype=torch.long, device=x.device)
        state = {"previous": previous} if info.multistep else {}
        with torch.inference_mode():
            pred_eps = model(x, t_batch)
            out = step_fn(schedule, x, t, t_prev, pred_eps, clip_x0=clip_x0,
                          generator=generator, **own, **state)
        yield SampleStep(index=i, num_steps=len(pairs), t=t, t_prev=t_prev, x_t=x,
                         x_prev=out.prev_sample, pred_x0=out.pred_x0, pred_eps=pred_eps)
        x = out.prev_sample
        if info.multistep:
            previous = PreviousStep(t=t, pred_x0=out.pred_x0)


def sample_final(model, schedule: NoiseSchedule, x_T: torch.Tensor, **kwargs) -> torch.Tensor:
    """Run :func:`sample` to the end and return the final sample ``[B, ...]``."""
    x = x_T
    for step in sample(model, schedule, x_T, **kwargs):
        x = step.x_prev
    return x
