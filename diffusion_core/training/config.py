"""Optimisation settings for :class:`diffusion_core.training.Trainer`: torch-free data."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Literal

LossKind = Literal["l2", "l1", "huber"]
Prediction = Literal["eps", "x0", "v"]
PREDICTIONS: tuple[str, ...] = ("eps", "x0", "v")  # what a network may predict (see below)

P_UNCOND_DEFAULT = 0.2
"""Label dropout of class-conditional training (``TrainConfig.p_uncond``), measured in 0.1–0.2
(Ho & Salimans' range). The conditional model did not mind — same class accuracy and class-wise
quality at s = 1 and s = 3 — but the unconditional one (s = 0, the other half of every guided
step) learns from only the dropped labels, and 0.2 gave it twice the examples of 0.1:

* 2D, the TOY recipe (300 steps), 3 seeds, SW1/floor and nearest-neighbour ratio at s = 0 —
  moons 2.27 / 2.28 (p = 0.1), 1.88 / 1.94 (0.15), 1.70 / 1.77 (0.2); 8 Gaussians 3.78 / 5.48,
  2.63 / 4.11, 1.76 / 3.39. Nearest-moon accuracy at s = 1: 99.3 %, 98.8 %, 98.3 %; 100 %
  at s = 3 for all three; class-wise SW1 unchanged (0.027–0.028 at s = 1). (The unconditional
  TOY recipe scores ≈ 0.9–1.3 / 1.1: a 300-step conditional run's null class sees a fifth of
  the examples.)
* digits8, the DIGITS recipe cut to 2000 steps, 500 samples at s = 0: Fréchet distance 0.73
  (p = 0.1) vs 0.52 (0.2), confidence 0.887 vs 0.907; at s = 1 and 3 the requested digit in
  95.6 / 100 % vs 95.4 / 100 % of samples, class-wise Fréchet distance 2.11 / 3.88 vs 2.16 / 3.75.
"""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (AdamW). One UI control maps onto one field.

    Besides the usual optimiser fields:

    - ``timestep_power`` p: each example's t is ``⌊T·u^p⌋`` with u ~ U[0, 1). p = 1 is DDPM's
      uniform t; p > 1 draws low-noise steps more often (p = 1.5 puts 22 % of a batch in the
      lowest tenth of t instead of 10 %). The loss is not reweighted, so p also sets how much
      each noise level counts in the objective. Range [0.25, 4].
    - ``target``: what the network regresses on. ``"eps"`` is the drawn noise ε (DDPM eq. 14).
      ``"stf"`` is the Stable Target Field of Xu et al. 2023 ("Stable Target Field for Reduced
      Variance Score Estimation in Diffusion Models"): the posterior mean of ε given x_t over a
      reference set of clean examples — the batch's own plus ``stf_extra`` more drawn from the
      data each step — weighted by q(x_t | x0_j). Same minimiser as ``"eps"`` as the reference
      set grows (both fit the training set's E[ε | x_t]), with much less gradient noise at
      mid-range t; costs one [batch × reference] softmax per step.
    - ``stf_extra``: size of that extra reference set, 0..65536 (used only with ``"stf"``).
    - ``prediction``: what the network outputs. ``"eps"`` the noise ε mixed into x_t (DDPM);
      ``"x0"`` the clean sample itself; ``"v"`` the "velocity" v = √ᾱ_t ε − √(1 − ᾱ_t) x0
      (Salimans & Ho 2022, §4), ≈ ε at low noise and ≈ −x0 at high noise. Given x_t each
      determines the others, so samplers always receive ε̂
      (:func:`~diffusion_core.forward.eps_from_prediction`); what differs is how the squared
      error weights the noise levels. With SNR_t = ᾱ_t / (1 − ᾱ_t):
      ‖x̂0 − x0‖² = SNR_t⁻¹ · ‖ε̂ − ε‖² and ‖v̂ − v‖² = ‖ε̂ − ε‖² / ᾱ_t = (1 + SNR_t⁻¹) ·
      ‖ε̂ − ε‖², so x0 prediction nearly ignores the low-noise steps (weight → 0 as t → 0)
      while v counts them like ε, and both weight the high-noise steps far more than ε does.
      (Exact for ``loss="l2"``; with a ``"stf"`` target, ε and x0 above are its posterior means.)
    - ``p_uncond``: label dropout for class-conditional training (the Trainer is given labels
      and the model has ``num_classes > 0``): each example's label is replaced by the null class
      with this probability, so one network learns the conditional ε(x_t, t, y) and the
      unconditional ε(x_t, t, ∅) that classifier-free guidance mixes (Ho & Salimans 2022 used
      0.1–0.2). In [0, 1]; unused without labels. The default is the measured choice (see
      ``P_UNCOND_DEFAULT``).
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    loss: LossKind = "l2"
    grad_clip: float = 1.0  # max global gradient norm; 0 = off
    ema_decay: float = 0.0  # 0 = off; e.g. 0.995 keeps an exponential moving average
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    seed: int = 0
    report_every: int = 50
    timestep_bins: int = 10
    timestep_power: float = 1.0
    target: Literal["eps", "stf"] = "eps"
    stf_extra: int = 0
    prediction: Prediction = "eps"
    p_uncond: float = P_UNCOND_DEFAULT

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(isinstance(self.steps, int) and 1 <= self.steps <= 10_000_000,
             f"steps must be an integer in [1, 10000000]; got {self.steps!r}")
        need(isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536,
             f"batch_size must be an integer in [1, 65536]; got {self.batch_size!r}")
        need(isinstance(self.lr, (int, float)) and 0 < self.lr <= 1 and math.isfinite(self.lr),
             f"lr must be in (0, 1]; got {self.lr!r}")
        need(0 <= self.weight_decay <= 1,
             f"weight_decay must be in [0, 1]; got {self.weight_decay}")
        need(self.loss in ("l2", "l1", "huber"), f"loss must be l2, l1 or huber; got {self.loss!r}")
        need(0 <= self.grad_clip <= 1e6, f"grad_clip must be in [0, 1e6]; got {self.grad_clip}")
        need(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1); got {self.ema_decay}")
        need(self.lr_schedule in ("constant", "cosine"),
             f"lr_schedule must be constant or cosine; got {self.lr_schedule!r}")
        need(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0,
             f"warmup_steps must be an integer ≥ 0; got {self.warmup_steps!r}")
        need(isinstance(self.report_every, int) and self.report_every >= 1,
             f"report_every must be an integer ≥ 1; got {self.report_every!r}")
        need(isinstance(self.timestep_bins, int) and 1 <= self.timestep_bins <= 1000,
             f"timestep_bins must be in [1, 1000]; got {self.timestep_bins!r}")
        p = self.timestep_power
        need(isinstance(p, (int, float)) and not isinstance(p, bool) and 0.25 <= p <= 4,
             f"timestep_power must be a number in [0.25, 4]; got {p!r}")
        need(self.target in ("eps", "stf"), f"target must be eps or stf; got {self.target!r}")
        need(isinstance(self.stf_extra, int) and not isinstance(self.stf_extra, bool)
             and 0 <= self.stf_extra <= 65_536,
             f"stf_extra must be an integer in [0, 65536]; got {self.stf_extra!r}")
        need(self.prediction in PREDICTIONS,
             f"prediction must be eps, x0 or v; got {self.prediction!r}")
        p = self.p_uncond
        need(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1,
             f"p_uncond must be a number in [0, 1]; got {p!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config ``to_dict`` wrote; keys added later (``prediction``, ``p_uncond``) take
        their defaults."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown train config keys: {sorted(unknown)}")
        return cls(**d)
