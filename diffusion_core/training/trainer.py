"""Training: DDPM's objective (Algorithm 1, eq. 14) for any model and data shape, predicting ε, x0
or v (``TrainConfig.prediction``).

Index convention: t ∈ {0, …, T−1}, drawn per example: uniformly (DDPM), or as ⌊T·u^p⌋ to
favour low noise (``TrainConfig.timestep_power``).

One loop serves the 2D MLP and the image U-Net. :class:`Trainer` keeps the optimizer and
optional EMA between calls, so a UI can train, stop, look, and train more. Its
:meth:`Trainer.run` is a generator that yields a :class:`TrainProgress` every
``report_every`` steps; the caller stops it by closing the generator or through
``should_stop``. A NaN/inf loss raises :class:`TrainingDiverged` *before* the bad update, so
the model keeps its last good weights.

Code name ↔ paper symbol: ``x0`` x_0, ``noise`` ε, ``x_t`` √ᾱ_t x0 + √(1−ᾱ_t) ε (eq. 4),
``pred_eps`` ε_θ(x_t, t); loss ‖ε − ε_θ‖² ("L_simple", eq. 14). With ``target="stf"`` the ε in
the loss is replaced by the Stable Target Field's lower-variance estimate of E[ε | x_t]
(:func:`stf_target`; Xu et al. 2023). With ``prediction="x0"`` or ``"v"`` the network regresses
on x0 or v = √ᾱ_t ε − √(1−ᾱ_t) x0 instead (:func:`regression_targets`), and
:meth:`Trainer.sampling_model` converts its output to ε̂ for the samplers.

Class-conditional training (``labels`` given, a model with ``num_classes = K > 0``): the network
is called ``model(x_t, t, y)``; each example's label is replaced by the null class K with
probability ``TrainConfig.p_uncond`` (label dropout), so the same network also learns the
unconditional ε(x_t, t, ∅) that classifier-free guidance needs
(:mod:`diffusion_core.sampling.guidance`). With the STF target a labelled example's posterior
runs over the reference examples of its own class, a dropped one's over all of them.

Data-parallel (``rank``/``world_size``, under torchrun; :mod:`.distributed`): ``batch_size`` is
the global batch; every rank draws it whole from the same seeded generator and trains on its
slice under ``DistributedDataParallel``, with the STF reference set, the reported loss and the
per-t bins taken over the global batch, so W processes make the 1-process update.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..forward import as_eps_predictor, eps_from_prediction, prediction_target, q_sample
from ..oracles.ideal import posterior_mean_x0
from ..schedule import NoiseSchedule
from . import distributed
from .config import LossKind, TrainConfig


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the offending update was not applied."""


@dataclass(frozen=True)
class TrainProgress:
    """A report from the training loop.

    ``loss`` is the mean loss over the steps since the last report; ``losses`` the per-step
    values of those steps. ``timestep_loss[i]`` is the mean per-example loss (the objective,
    in the units of ``config.prediction``) for t in ``[timestep_edges[i], timestep_edges[i+1])``
    over the whole run so far (NaN if unseen); ``timestep_eps_loss[i]`` the same loss measured
    in ε units (the output converted to ε̂ against the ε target), which puts the three
    predictions on one axis (equal to ``timestep_loss`` for ``"eps"``).
    """

    step: int  # steps done in total (this run and earlier ones)
    run_step: int  # steps done in this call of run()
    run_steps: int  # steps this call of run() will do
    loss: float
    losses: tuple[float, ...]
    timestep_edges: tuple[int, ...]
    timestep_loss: tuple[float, ...]
    timestep_eps_loss: tuple[float, ...]
    lr: float
    elapsed_s: float
    done: bool


def _per_example_loss(kind: LossKind, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Loss per example ``[B]``: the mean over every non-batch dimension."""
    if kind == "l2":
        err = F.mse_loss(pred, target, reduction="none")
    elif kind == "l1":
        err = F.l1_loss(pred, target, reduction="none")
    else:
        err = F.huber_loss(pred, target, reduction="none", delta=1.0)
    return err.flatten(1).mean(1)


def stf_target(x_t: torch.Tensor, alpha_bar: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """The Stable Target Field's ε target (Xu et al. 2023, written for ε rather than the score).

    For each noisy example x_t (with ᾱ = ``alpha_bar``) it returns
    ``E[ε | x_t] = (x_t − √ᾱ · Σ_j w_j r_j) / √(1 − ᾱ)``, the posterior mean over the reference
    examples r_j with weights ``w_j ∝ q(x_t | x0 = r_j) ∝ exp(−‖x_t − √ᾱ r_j‖² / (2(1 − ᾱ)))``
    (eq. 4 of DDPM). The reference set must contain each example's own x0 (the caller puts the batch
    first): the estimate is then a self-normalised importance sample of the ideal target. At
    small t the weights collapse onto the example's own x0 and the target is its drawn ε.

    Shapes: ``x_t [B, ...]``, ``alpha_bar [B]``, ``ref [R, ...]`` (same trailing shape) →
    ``[B, ...]``. The posterior mean is the ideal denoiser's kernel
    (:func:`diffusion_core.oracles.ideal.posterior_mean_x0`: the squared distance expanded so
    the weights are one matmul, the softmax in log space); pass a float64 ``alpha_bar`` so
    1 − ᾱ_t keeps its precision near t = 0.
    """
    return _stf(x_t, alpha_bar, ref)[0]


def _stf(x_t: torch.Tensor, alpha_bar: torch.Tensor,
         ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`stf_target`'s ε target and its posterior mean of x0 (both ``[B, ...]``).

    The pair satisfies x_t = √ᾱ x0_mean + √(1 − ᾱ) ε_STF, so x0_mean is the x0 target that goes
    with ε_STF, obtained without dividing by √ᾱ (tiny near t = T−1).
    """
    b = x_t.shape[0]
    if alpha_bar.shape != (b,) or ref.shape[1:] != x_t.shape[1:]:
        raise ValueError(f"stf_target: x_t {list(x_t.shape)}, alpha_bar {list(alpha_bar.shape)}"
                         f" and ref {list(ref.shape)} do not match")
    # The ideal denoiser's kernel over the reference set (one matmul per block, log space).
    x0_mean = posterior_mean_x0(x_t, alpha_bar, ref)
    ab = alpha_bar.to(torch.float64).reshape(b, *([1] * (x_t.ndim - 1)))
    eps = (x_t - ab.sqrt().to(x_t.dtype) * x0_mean) / (1.0 - ab).sqrt().to(x_t.dtype)
    return eps, x0_mean


def _stf_by_class(x_t: torch.Tensor, alpha_bar: torch.Tensor, ref: torch.Tensor,
                  y: torch.Tensor, ref_labels: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_stf` with each example's posterior over the reference examples of class ``y``
    (``y < 0``: over all of them): the STF target of a class-conditional model."""
    eps, x0_mean = torch.empty_like(x_t), torch.empty_like(x_t)
    for c in torch.unique(y).tolist():
        rows = torch.nonzero(y == c).flatten()
        cols = ref if c < 0 else ref[ref_labels == c]
        eps[rows], x0_mean[rows] = _stf(x_t[rows], alpha_bar[rows], cols)
    return eps, x0_mean


def regression_targets(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor,
                       t: torch.Tensor, noise: torch.Tensor, prediction: str,
                       stf_ref: torch.Tensor | None = None, *,
                       stf_classes: tuple[torch.Tensor, torch.Tensor] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target, eps_target)``: what a ``prediction`` network regresses on, and its ε form.

    x_t = q_sample(schedule, x0, t, noise) (eq. 4). Without ``stf_ref`` the ε target is the drawn
    ``noise`` and the x0 target is ``x0``; with it (``[R, ...]``, the batch's x0 first) they are
    the Stable Target Field's posterior means (:func:`stf_target`). ``target`` is then
    :func:`~diffusion_core.forward.prediction_target` of that (x0, ε) pair: ε, x0 or
    v = √ᾱ_t ε − √(1 − ᾱ_t) x0 — a linear and exact conversion of the ε target, since the pair
    reproduces x_t. Shapes ``[B, ...]``; ``t`` int64 ``[B]``.

    ``stf_classes = (y [B], ref_labels [R])`` (class-conditional training): each example's
    posterior runs over the reference examples of its class y only (its own x0 among them), or
    over all of them where ``y < 0`` (the label was dropped).
    """
    eps, x0_target = noise, x0
    if stf_ref is not None:
        # float64 ᾱ: the kernel forms 1 − ᾱ_t (≈ 1e-4 at t = 0) without float32 rounding
        alpha_bar = schedule.float64["alphas_cumprod"].to(t.device)[t]
        if stf_classes is None:
            eps, x0_target = _stf(x_t, alpha_bar, stf_ref)
        else:
            eps, x0_target = _stf_by_class(x_t, alpha_bar, stf_ref, *stf_classes)
    return prediction_target(schedule, x0_target, t, eps, prediction), eps


class Trainer:
    """Trains a network on ``data`` with ``schedule``; keeps state between runs.

    Args:
        model: ``model(x_t, t)`` → its prediction of ε, x0 or v (``config.prediction``);
            trained in place (on its own device). :meth:`sampling_model` gives an ε-predictor.
        schedule: the noise schedule (the model never sees it).
        data: ``[N, ...]`` float tensor of training examples (2D points or images in [−1, 1]).
        config: optimisation settings.
        labels: ``[N]`` integer class of each example, in 0..K−1, for a class-conditional
            model (``num_classes = K > 0``; then required). The model is called
            ``model(x_t, t, y)`` with each label dropped to the null class K with probability
            ``config.p_uncond``.
        rank, world_size: this process's place in a data-parallel job (default: 1 process).
            With ``world_size`` > 1 a process group of that size must be up
            (:func:`.distributed.setup`); ``config.batch_size`` is the global batch, split
            evenly, and the model is trained through ``DistributedDataParallel``. Every rank
            must call :meth:`run` alike (same steps; ``should_stop`` answering the same).
    """

    def __init__(self, model: nn.Module, schedule: NoiseSchedule, data: torch.Tensor,
                 config: TrainConfig | None = None, *,
                 labels: torch.Tensor | None = None, rank: int = 0,
                 world_size: int = 1) -> None:
        config = config or TrainConfig()
        if not isinstance(data, torch.Tensor) or data.ndim < 2 or len(data) < 1:
            raise ValueError("data must be a float tensor of shape [N, ...] with N ≥ 1")
        if not torch.isfinite(data).all():
            raise ValueError("data contains NaN or inf")
        device = next(model.parameters()).device
        self.model = model
        self.schedule = schedule.to(device)
        self.data = data.to(device=device, dtype=torch.float32)
        self.null_class: int | None = getattr(model, "null_class", None)
        self.labels = _check_labels(labels, len(data), self.null_class, device)
        self.config = config
        self.step = 0
        self.rank, self.world_size = rank, world_size
        self._net: nn.Module = model  # what the step calls: the model, or its DDP wrapper
        if world_size != 1 or rank != 0:
            distributed.World(rank=rank, world_size=world_size,
                              local_world_size=world_size)  # validates the pair
            distributed.per_rank_batch(config.batch_size, world_size)
            distributed.check_process_group(rank, world_size)
            self._rows = distributed.rank_rows(config.batch_size, rank, world_size)
            self._net = distributed.wrap_ddp(model)  # rank 0's weights, before the EMA copy
        # fused: one kernel for all parameters (CPU and CUDA); on one CPU thread it took a
        # 3×128 MLP's optimiser step from ~0.52 to ~0.16 ms, ~10 % of a 512-point step.
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay,
                                           fused=device.type in ("cpu", "cuda"))
        self.ema = None
        if config.ema_decay > 0:
            self.ema = copy.deepcopy(model).eval().requires_grad_(False)
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        bins = min(config.timestep_bins, schedule.T)
        self.edges = tuple(round(i * schedule.T / bins) for i in range(bins + 1))
        self._bin_of_t = torch.bucketize(torch.arange(schedule.T), torch.tensor(self.edges[1:]),
                                         right=True).to(device)
        self._bin_sum = torch.zeros(bins, dtype=torch.float64)
        self._bin_eps_sum = torch.zeros(bins, dtype=torch.float64)
        self._bin_count = torch.zeros(bins, dtype=torch.float64)

    def sampling_network(self) -> nn.Module:
        """The trained network itself (the EMA copy when EMA is on): what a checkpoint stores.

        It predicts ``config.prediction``; samplers want :meth:`sampling_model`.
        """
        return self.ema if self.ema is not None else self.model

    def sampling_model(self) -> nn.Module:
        """The ε-predictor to sample from: :meth:`sampling_network`, converted to ε̂ when it
        predicts x0 or v (:func:`~diffusion_core.forward.as_eps_predictor`; for ``"eps"`` the
        network itself)."""
        return as_eps_predictor(self.sampling_network(), self.schedule, self.config.prediction)

    def lr_at(self, step: int, total: int) -> float:
        c = self.config
        lr = c.lr
        if c.warmup_steps and step < c.warmup_steps:
            return lr * (step + 1) / c.warmup_steps
        if c.lr_schedule == "cosine":
            p = min(1.0, (step - c.warmup_steps) / max(1, total - c.warmup_steps))
            lr = c.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
        return lr

    def _draw_t(self, n: int, device: torch.device) -> torch.Tensor:
        """``[n]`` int64 timesteps ``⌊T·u^p⌋``, u ~ U[0, 1), p = ``config.timestep_power``."""
        T, p = self.schedule.T, self.config.timestep_power
        if p == 1:  # uniform: the draw DDPM (and earlier versions of this loop) used
            return torch.randint(0, T, (n,), generator=self.generator, device=device)
        u = torch.rand(n, generator=self.generator, device=device, dtype=torch.float64)
        return (u.pow(p) * T).long().clamp_(max=T - 1)

    def train_step(self, lr: float) -> float:
        """One optimisation step (DDPM Algorithm 1); returns the batch loss."""
        c, g = self.config, self.generator
        # the global batch (every rank draws all of it: the same data order for any world size)
        idx = torch.randint(0, len(self.data), (c.batch_size,), generator=g,
                            device=self.data.device)
        x0 = self.data[idx]
        t = self._draw_t(c.batch_size, x0.device)
        noise = torch.randn(x0.shape, generator=g, device=x0.device)
        y = None
        if self.labels is not None:  # label dropout: the null class with probability p_uncond
            y = self.labels[idx]
            drop = torch.rand(c.batch_size, generator=g, device=x0.device) < c.p_uncond
            y = torch.where(drop, torch.full_like(y, self.null_class), y)
        ref, ref_classes = None, None
        if c.target == "stf":
            ref = x0
            ref_labels = None if y is None else self.labels[idx]
            if c.stf_extra:
                extra = torch.randint(0, len(self.data), (c.stf_extra,), generator=g,
                                      device=x0.device)
                ref = torch.cat((x0, self.data[extra]))
                if y is not None:
                    ref_labels = torch.cat((ref_labels, self.labels[extra]))
        if self.world_size > 1:  # this rank's rows; the STF reference set stays the global one
            rows = self._rows
            x0, t, noise = x0[rows], t[rows], noise[rows]
            y = None if y is None else y[rows]
        x_t = q_sample(self.schedule, x0, t, noise)  # eq. (4)
        if ref is not None and y is not None:
            ref_classes = (torch.where(y == self.null_class, -1, y), ref_labels)
        target, eps_target = regression_targets(self.schedule, x0, x_t, t, noise,
                                                c.prediction, ref, stf_classes=ref_classes)
        self.model.train()
        output = self._net(x_t, t) if y is None else self._net(x_t, t, y)
        per_example = _per_example_loss(c.loss, output, target)  # eq. (14)
        loss = per_example.mean()
        with torch.no_grad():
            per_example_eps = per_example.detach()
            if c.prediction != "eps":  # the same loss on ε̂ = the output converted
                pred_eps = eps_from_prediction(self.schedule, x_t, t, output.detach(),
                                               c.prediction)
                per_example_eps = _per_example_loss(c.loss, pred_eps, eps_target)
            bins = self._bin_of_t[t].cpu()
        step_sums = None
        if self.world_size > 1:  # the global batch's loss and t-bin sums, on every rank
            loss_value, step_sums = self._global_sums(per_example.detach(), per_example_eps,
                                                      bins)
        else:
            loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"the loss became {loss_value} at step {self.step + 1}; the model keeps its "
                "last good weights. Lower the learning rate or turn on gradient clipping."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        if self.ema is not None:
            with torch.no_grad():
                decay = min(c.ema_decay, (1 + self.step) / (10 + self.step))  # EMA warm-up
                torch._foreach_lerp_(list(self.ema.parameters()),
                                     [p.detach() for p in self.model.parameters()], 1 - decay)
                for be, b in zip(self.ema.buffers(), self.model.buffers(), strict=True):
                    be.copy_(b)
        with torch.no_grad():
            if step_sums is None:
                self._bin_sum.index_add_(0, bins, per_example.detach().double().cpu())
                self._bin_eps_sum.index_add_(0, bins, per_example_eps.double().cpu())
                self._bin_count.index_add_(0, bins, torch.ones_like(bins, dtype=torch.float64))
            else:
                self._bin_sum += step_sums[0]
                self._bin_eps_sum += step_sums[1]
                self._bin_count += step_sums[2]
        self.step += 1
        return loss_value

    def _global_sums(self, per_example: torch.Tensor, per_example_eps: torch.Tensor,
                     bins: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(global batch loss, ``[3, bins]`` float64 sums of the loss, ε-loss and count per t
        bin over the global batch): this rank's ``[B/W]`` values summed over all ranks in one
        all-reduce."""
        k = len(self._bin_sum)
        local = torch.zeros(1 + 3 * k, dtype=torch.float64)
        local[0] = per_example.double().sum().cpu()
        sums = local[1:].view(3, k)
        sums[0].index_add_(0, bins, per_example.double().cpu())
        sums[1].index_add_(0, bins, per_example_eps.double().cpu())
        sums[2].index_add_(0, bins, torch.ones_like(bins, dtype=torch.float64))
        total = distributed.all_reduce_sum(local)
        return float(total[0]) / self.config.batch_size, total[1:].view(3, k)

    def timestep_loss(self) -> tuple[float, ...]:
        """Mean per-example loss (the objective, in ``config.prediction``'s units) per t bin."""
        mean = self._bin_sum / self._bin_count
        return tuple(float(v) for v in mean)

    def timestep_eps_loss(self) -> tuple[float, ...]:
        """The same loss in ε units (ε̂ from the converted output vs the ε target) per t bin.

        One axis for all three predictions; equal to :meth:`timestep_loss` for ``"eps"``.
        """
        mean = self._bin_eps_sum / self._bin_count
        return tuple(float(v) for v in mean)

    def run(self, steps: int | None = None, *,
            should_stop: Callable[[], bool] | None = None) -> Iterator[TrainProgress]:
        """Train ``steps`` more steps (default: ``config.steps``), yielding progress reports.

        Stops early, after a final report, when ``should_stop()`` turns true; closing the
        generator stops it at once. Either way the model keeps the weights trained so far.
        """
        steps = self.config.steps if steps is None else steps
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer ≥ 1; got {steps!r}")
        start = time.perf_counter()
        window: list[float] = []
        for i in range(steps):
            lr = self.lr_at(i, steps)
            window.append(self.train_step(lr))
            stop = should_stop is not None and should_stop()
            last = i + 1 == steps or stop
            if last or (i + 1) % self.config.report_every == 0:
                yield TrainProgress(
                    step=self.step, run_step=i + 1, run_steps=steps,
                    loss=sum(window) / len(window), losses=tuple(window),
                    timestep_edges=self.edges, timestep_loss=self.timestep_loss(),
                    timestep_eps_loss=self.timestep_eps_loss(), lr=lr,
                    elapsed_s=time.perf_counter() - start, done=last,
                )
                window = []
            if stop:
                return


def _check_labels(labels: torch.Tensor | None, n: int, null_class: int | None,
                  device: torch.device) -> torch.Tensor | None:
    """Validate the Trainer's ``labels`` against the data size and the model's classes."""
    if labels is None:
        if null_class is not None:
            raise ValueError(f"the model is class-conditional (num_classes = {null_class}): "
                             "give the Trainer labels [N] (or build it with num_classes = 0)")
        return None
    if null_class is None:
        raise ValueError("labels were given, but the model is unconditional (num_classes = 0); "
                         "build it with num_classes = the number of classes")
    if (not isinstance(labels, torch.Tensor) or labels.shape != (n,)
            or labels.is_floating_point() or labels.dtype == torch.bool):
        shape = list(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an integer tensor of shape [N] = [{n}]; got {shape}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= null_class):
        raise ValueError(f"labels must lie in 0..{null_class - 1} (num_classes = {null_class}); "
                         f"got values in {int(labels.min())}..{int(labels.max())}")
    return labels.to(device=device, dtype=torch.long)


def train(model: nn.Module, schedule: NoiseSchedule, data: torch.Tensor,
          config: TrainConfig | None = None, *, labels: torch.Tensor | None = None,
          should_stop: Callable[[], bool] | None = None) -> Iterator[TrainProgress]:
    """Convenience: ``Trainer(model, schedule, data, config, labels=...).run(...)``."""
    yield from Trainer(model, schedule, data, config, labels=labels).run(
        should_stop=should_stop)
