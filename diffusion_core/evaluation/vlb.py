"""The variational bound on the negative log-likelihood, term by term (DDPM eq. 5).

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); ᾱ_{−1} = 1 (x_{−1} is the data x0).
The paper numbers its latents 1..T, so paper step k is our t = k − 1: the paper's decoder
L_0 = −log p(x0 | x_1) is our term at t = 0, its L_{k−1} (k = 2..T) is our term at t = k − 1,
and its prior term L_T compares our last latent x_{T−1} with N(0, I).

The bound, in nats per example (DDPM eq. 5 in our indices)::

    −log p_θ(x0) ≤ L_T + Σ_{t=1}^{T−1} L_t + L_0
    L_T = KL(q(x_{T−1} | x0) ‖ N(0, I))                                    (the prior)
    L_t = E_q KL(q(x_{t−1} | x_t, x0) ‖ p_θ(x_{t−1} | x_t)),   t = 1..T−1     (the steps)
    L_0 = E_q[−log p_θ(x0 | x_{t=0})]                                       (the decoder)

Code name ↔ paper symbol (Ho et al. 2020, "DDPM"; Nichol & Dhariwal 2021, "iDDPM"):

================================  ==================================================================
``x0``, ``x_t``, ``eps``          x_0, x_t, ε:  x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε                 (eq. 4)
``model(x_t, t)``                 ε_θ(x_t, t), the network's noise prediction
``pred_x0``                       x̂0 = (x_t − √(1 − ᾱ_t) ε_θ) / √ᾱ_t                       (eq. 15)
posterior ``μ̃``, ``β̃``            μ̃_t(x_t, x0), β̃_t of q(x_{t−1} | x_t, x0)               (eqs. 6–7)
reverse mean μ_θ                  μ̃_t(x_t, x̂0) = (x_t − β_t/√(1 − ᾱ_t) ε_θ) / √α_t       (eq. 11)
``sigma2[t]``                     σ_t² of p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t² I)    (§3.2: β_t or β̃_t)
``mean_weight[t]``                β_t² / (2σ_t² α_t (1 − ᾱ_t)), the ε-error weight          (eq. 12)
``terms[0]``                      L_0, the decoder −log p_θ(x0 | x_1)                     (eq. 13)
``terms[t]``, t ≥ 1               L_t; the paper's L_{k−1} for its step k = t + 1        (eq. 5)
``prior``                         L_T = KL(q(x_T | x0) ‖ N(0, I)), paper's x_T = our x_{T−1}
``total``, ``bits_per_dim``       L_vlb = L_T + Σ L_t + L_0;  L_vlb / (d ln 2)           (eq. 5, §4)
================================  ==================================================================

Conventions of :func:`vlb_terms`:

* **KL in closed form.** Both distributions in L_t are Gaussians with isotropic covariance, so per
  example ``KL = d/2 · (ln(σ_t²/β̃_t) + β̃_t/σ_t² − 1) + ‖μ̃_t − μ_θ‖² / (2σ_t²)``. The first part
  (the variance mismatch) is exact; the second is the only random part. Since x_t was built from
  ε (eq. 4), ``μ̃_t(x_t, x0) − μ̃_t(x_t, x̂0) = c₁ (x0 − x̂0)`` with c₁ = ``posterior_mean_coef1``
  and ``x0 − x̂0 = √(1/ᾱ_t − 1) (ε_θ − ε)``, so ``‖μ̃ − μ_θ‖²/(2σ²)`` is DDPM eq. 12's weighted
  ε-error, computed that way (stable at large t, where 1/√ᾱ_t is huge but c₁ tiny).
* **Reverse variance.** ``variance="beta_tilde"``: σ_t² = β̃_t (the exact posterior variance, the
  "fixedsmall" of iDDPM); ``variance="beta"``: σ_t² = β_t ("fixedlarge"). The decoder uses
  β̃_1 in both modes: β̃_0 = 0, so, as in improved-diffusion, the t = 0 variance is the clipped
  one, ``exp(schedule.posterior_log_variance_clipped[0])``. At t = 0, c₁ = 1 and c₂ = 0, so the
  decoder's mean is x̂0 itself.
* **Decoder.** ``decoder="gaussian"``: the continuous density N(x0; x̂0, β̃_1 I) (2D points; the
  result bounds the NLL of a density, so it can be negative). ``decoder="discrete"``: 8-bit
  images in [−1, 1] (DDPM §3.3, eq. 13): 256 buckets of width 2/255 centred on
  ``−1 + 2i/255``, the first and last extended to −∞ and +∞, each value's probability the
  Gaussian mass of its bucket (the log of a CDF difference, computed stably in float64 by
  :func:`discretized_gaussian_log_probs`). Values between levels are scored in the bucket that
  holds them (the nearest level), i.e. the bound is that of the data quantised to 8 bits.
* **Monte Carlo.** Each L_t (t = 0..T−1) is estimated with one x_t ~ q(x_t | x0) per example and
  timestep, drawn from ``generator``: exact in expectation. L_T and the variance part of every
  KL are exact.
* **Subset of timesteps** (``timesteps=k``, for big models): the decoder (t = 0) and the last
  step (t = T − 1) are always evaluated; the steps t = 1..T−2 are split into k contiguous strata
  evenly spaced in log t (edges 1 = e_0 < e_1 < … < e_k = T − 1 with e_j ≈ (T − 1)^{j/k},
  widened where needed so that every stratum holds at least one step: for T = 1000, k = 10 the
  strata hold 1, 2, 4, 8, …, 250, 498 steps), and every example draws its own uniform t
  in each stratum and counts that term |stratum| times. The total, the per-example totals and
  each ``terms[t]`` (the sum over the examples that drew t, times |stratum|, over n) are
  unbiased; only their variance grows. Why this layout: the terms fall steeply with t (most of
  the bound sits at small t), so equal-size strata would put the large early terms into one wide
  stratum (on the digits model, T = 1000, k = 10, the per-image spread was ~7× larger); and the
  cosine schedule's last step (β clipped to 0.999) is a lone spike, hundreds of times its
  neighbours, that a wide last stratum would hit for only a few examples, each weighted by its
  width (digits, k = 8: standard error 0.14 bits/dim without the fixed last step, 0.02 with).
  ``timesteps = T − 2`` visits every t once; ``None`` (the default) evaluates every t for every
  example.
* **Cost.** (example, t) pairs are batched into forward passes of ``batch_size`` pairs
  (default: about 2¹⁸ numbers per pass, so the 2D model over all T is a few passes), under
  ``torch.inference_mode()``. The model runs in x0's dtype on x0's device; everything after it
  is float64. The caller puts a network in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from ..sampling.config import VARIANCES, Variance
from ..schedule import NoiseSchedule

__all__ = [
    "BUCKETS",
    "VLBTerms",
    "bucket_index",
    "combine_terms",
    "discretized_gaussian_log_likelihood",
    "discretized_gaussian_log_probs",
    "kl_weights",
    "strata_edges",
    "vlb_terms",
]

Decoder = Literal["gaussian", "discrete"]
DECODERS: tuple[str, ...] = ("gaussian", "discrete")

BUCKETS = 256
"""Levels of the discrete decoder: 8-bit values 0..255 mapped linearly onto [−1, 1]."""
_HALF_WIDTH = 1.0 / (BUCKETS - 1)  # half a bucket: the levels are 2/255 apart
_NUMBERS_PER_PASS = 2**18  # default batch: pairs × d ≈ this


@dataclass(frozen=True, eq=False)
class VLBTerms:
    """The bound's terms, in nats per example (averaged over the n examples).

    Attributes:
        terms: float64 ``[T]`` (CPU). ``terms[0]`` is the decoder L_0 = E[−log p_θ(x0|x_{t=0})];
            ``terms[t]`` for t = 1..T−1 is L_t = E KL(q(x_{t−1}|x_t,x0) ‖ p_θ(x_{t−1}|x_t)).
        prior: L_T = KL(q(x_{T−1}|x0) ‖ N(0, I)), exact for each example, averaged.
        total: prior + Σ terms, the bound on −log p_θ(x0) (nats per example).
        bits_per_dim: total / (d · ln 2).
        total_stderr: standard error of ``total`` (std of ``per_example`` / √n): the spread
            of the data and of the Monte-Carlo draws together.
        per_example: float64 ``[n]`` (CPU): each example's own bound estimate (its mean is
            ``total``).
        d: dimensions per example (2 for points, C·H·W for images).
        n: number of examples.
        T: the schedule's number of steps.
        variance: ``"beta_tilde"`` or ``"beta"`` (σ_t² of the reverse steps t ≥ 1).
        decoder: ``"gaussian"`` or ``"discrete"``.
        timesteps: None if every t was evaluated for every example, else k, the number of
            stratified KL terms drawn per example besides t = 0 and T − 1 (see the module
            docstring; ``terms[t]`` is then an unbiased, noisier estimate, 0 where no example
            drew t).
    """

    terms: torch.Tensor
    prior: float
    total: float
    bits_per_dim: float
    total_stderr: float
    per_example: torch.Tensor
    d: int
    n: int
    T: int
    variance: str
    decoder: str
    timesteps: int | None


# ---- the discrete decoder (DDPM §3.3, eq. 13) ---------------------------------------------------

def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """ln(1 − eˣ) for x ≤ 0, accurate at both ends (Mächler 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _log_mass(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """ln(Φ(hi) − Φ(lo)) for lo < hi (either may be ±∞), without cancellation.

    Both ends are reflected into the left tail when lo > 0 (Φ(b) − Φ(a) = Φ(−a) − Φ(−b)), then
    ln(Φ(b) − Φ(a)) = ln Φ(b) + ln(1 − Φ(a)/Φ(b)) with ``log_ndtr`` for ln Φ.
    """
    flip = lo > 0
    a = torch.where(flip, -hi, lo)
    b = torch.where(flip, -lo, hi)
    log_b = torch.special.log_ndtr(b)
    return log_b + _log1mexp(torch.special.log_ndtr(a) - log_b)


def _check_scale(mean: torch.Tensor, std: torch.Tensor | float) -> torch.Tensor:
    if not isinstance(mean, torch.Tensor) or not mean.is_floating_point():
        raise ValueError(f"mean must be a float tensor; got {type(mean).__name__}")
    std = torch.as_tensor(std, dtype=torch.float64, device=mean.device)
    if not torch.isfinite(mean).all():
        raise ValueError("mean contains NaN or inf")
    if not (torch.isfinite(std).all() and (std > 0).all()):
        raise ValueError("std must be positive and finite")
    return std


def discretized_gaussian_log_probs(mean: torch.Tensor, std: torch.Tensor | float
                                   ) -> torch.Tensor:
    """Log-probabilities of all 256 buckets under N(mean, std²): float64 ``[..., 256]``.

    Bucket i (i = 0..255) is ``[c_i − 1/255, c_i + 1/255]`` around the level
    ``c_i = −1 + 2i/255``, with bucket 0 extended to −∞ and bucket 255 to +∞, so the
    probabilities sum to one (DDPM §3.3, eq. 13).

    Args:
        mean: float tensor ``[...]`` (any shape), the decoder's mean per value.
        std: positive float or tensor broadcastable to ``mean``.
    """
    std = _check_scale(mean, std)
    levels = torch.linspace(-1.0, 1.0, BUCKETS, dtype=torch.float64, device=mean.device)
    lower = torch.cat([levels.new_tensor([-math.inf]), levels[1:] - _HALF_WIDTH])
    upper = torch.cat([levels[:-1] + _HALF_WIDTH, levels.new_tensor([math.inf])])
    m = mean.to(torch.float64).unsqueeze(-1)
    s = std.unsqueeze(-1) if std.ndim else std
    return _log_mass((lower - m) / s, (upper - m) / s)


def bucket_index(x0: torch.Tensor) -> torch.Tensor:
    """The bucket (0..255) holding each value of ``x0`` in [−1, 1]: the nearest 8-bit level."""
    return torch.round((x0.to(torch.float64) + 1.0) * (BUCKETS - 1) / 2).clamp(0, BUCKETS - 1)


def discretized_gaussian_log_likelihood(x0: torch.Tensor, mean: torch.Tensor,
                                        std: torch.Tensor | float) -> torch.Tensor:
    """ln p(x0) per value under the discrete decoder: float64, ``x0``'s shape.

    Each value of ``x0`` (in [−1, 1]) is scored in the bucket that holds it (the nearest of the
    256 levels); see :func:`discretized_gaussian_log_probs` for the buckets.
    """
    std = _check_scale(mean, std)
    if not isinstance(x0, torch.Tensor) or x0.shape != mean.shape:
        raise ValueError("x0 must be a tensor of mean's shape "
                         f"{list(mean.shape)}; got {getattr(x0, 'shape', type(x0).__name__)}")
    _check_unit_range(x0)
    i = bucket_index(x0)
    centre = i * (2.0 / (BUCKETS - 1)) - 1.0
    lower = torch.where(i == 0, -math.inf, centre - _HALF_WIDTH)
    upper = torch.where(i == BUCKETS - 1, math.inf, centre + _HALF_WIDTH)
    m = mean.to(torch.float64)
    return _log_mass((lower - m) / std, (upper - m) / std)


def _check_unit_range(x0: torch.Tensor) -> None:
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains NaN or inf")
    lo, hi = float(x0.min()), float(x0.max())
    if lo < -1.0 or hi > 1.0:
        raise ValueError(
            "decoder='discrete' scores 8-bit images, so x0 must lie in [-1, 1]; got values in "
            f"[{lo:.4g}, {hi:.4g}] (use decoder='gaussian' for 2D points)")


# ---- the bound ----------------------------------------------------------------------------------

def _check_inputs(model, schedule, x0, variance, decoder, timesteps, batch_size) -> None:
    if not callable(model):
        raise ValueError(f"model must be callable as model(x_t, t); got {type(model).__name__}")
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"schedule must be a NoiseSchedule; got {type(schedule).__name__}")
    if not isinstance(x0, torch.Tensor) or not x0.is_floating_point() or x0.ndim < 2:
        raise ValueError("x0 must be a float tensor of shape [B, ...] ([B, 2] points or "
                         f"[B, C, H, W] images); got {getattr(x0, 'shape', type(x0).__name__)}")
    if x0.shape[0] == 0 or x0[0].numel() == 0:
        raise ValueError(f"x0 must hold at least one non-empty example; got {list(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains NaN or inf")
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}")
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}; got {decoder!r}")
    if decoder == "discrete":
        _check_unit_range(x0)
    if timesteps is not None:
        if isinstance(timesteps, bool) or not isinstance(timesteps, int):
            raise ValueError(f"timesteps must be None or an integer; got {timesteps!r}")
        if not 1 <= timesteps <= schedule.T - 2:
            raise ValueError(
                f"timesteps must be in [1, {schedule.T - 2}] (random KL terms per example from "
                f"t = 1..T−2; t = 0 and T−1 are always evaluated), or None for all t; got "
                f"{timesteps}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")


def strata_edges(stop: int, k: int) -> list[int]:
    """k + 1 strictly increasing edges from 1 to ``stop``, evenly spaced in log t (≈ stop^{j/k})."""
    edges = [1]
    for j in range(1, k):
        edges.append(min(max(round(stop ** (j / k)), edges[-1] + 1), stop - (k - j)))
    return [*edges, stop]


def _slots(T: int, n: int, timesteps: int | None, generator, device
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The timesteps each example visits, int64 ``[n, m]``, and each slot's weight ``[m]``."""
    if timesteps is None:
        return (torch.arange(T, device=device).expand(n, T),
                torch.ones(T, dtype=torch.float64, device=device))
    # t = 0 and t = T − 1 always; one t per log-spaced stratum of 1..T−2
    edges = torch.tensor(strata_edges(T - 1, timesteps), dtype=torch.float64, device=device)
    lo, size = edges[:-1], edges[1:] - edges[:-1]
    u = torch.rand((n, timesteps), generator=generator, dtype=torch.float64, device=device)
    t = (lo + torch.floor(u * size)).long().minimum((lo + size - 1).long())
    ends = torch.tensor([0, T - 1], device=device).expand(n, 2)
    return torch.cat([ends, t], dim=1), torch.cat([size.new_ones(2), size])


def kl_weights(schedule: NoiseSchedule, variance: Variance, d: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [T], var_part [T])`` float64 (CPU) for reverse variance σ_t² = β̃_t or β_t:

    L_t = var_part[t] + weight[t] · E‖ε − ε_θ(x_t, t)‖² for t ≥ 1, with
    ``weight[t] = β_t² / (2σ_t² α_t (1 − ᾱ_t))`` (DDPM eq. 12; L_simple, eq. 14, sets it to 1)
    and ``var_part[t] = d/2 · (ln(σ_t²/β̃_t) + β̃_t/σ_t² − 1)`` (0 for σ² = β̃). Index 0 (the
    decoder, whose weight on the same error is (1/ᾱ_0 − 1)/(2β̃_1)) is 0 in both.
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}")
    f = schedule.float64
    betas, alphas, bt = f["betas"], f["alphas"], f["posterior_variance"]
    s2 = bt if variance == "beta_tilde" else betas
    weight = torch.zeros(schedule.T, dtype=torch.float64)
    var_part = torch.zeros(schedule.T, dtype=torch.float64)
    if schedule.T > 1:
        one_minus_ac = f["sqrt_one_minus_alphas_cumprod"][1:] ** 2
        weight[1:] = betas[1:] ** 2 / (2.0 * s2[1:] * alphas[1:] * one_minus_ac)
        var_part[1:] = 0.5 * d * (torch.log(s2[1:] / bt[1:]) + bt[1:] / s2[1:] - 1.0)
    return weight, var_part


def combine_terms(parts: Sequence[VLBTerms]) -> VLBTerms:
    """The :class:`VLBTerms` of the union of the examples of ``parts`` (pieces of one
    evaluation: same schedule length, d, variance, decoder and ``timesteps``).

    ``terms`` and the prior are the example-weighted means, ``per_example`` the pieces'
    concatenated; ``total``, ``bits_per_dim`` and ``total_stderr`` follow from them as in
    :func:`vlb_terms`. One part comes back unchanged.
    """
    if not parts:
        raise ValueError("combine_terms needs at least one piece")
    first = parts[0]
    if len(parts) == 1:
        return first
    key = (first.T, first.d, first.variance, first.decoder, first.timesteps)
    if any((p.T, p.d, p.variance, p.decoder, p.timesteps) != key for p in parts[1:]):
        raise ValueError("the pieces differ in T, d, variance, decoder or timesteps")
    n = sum(p.n for p in parts)
    terms = sum(p.terms * p.n for p in parts) / n
    prior = sum(p.prior * p.n for p in parts) / n
    per_example = torch.cat([p.per_example for p in parts])
    total = prior + float(terms.sum())
    return VLBTerms(terms=terms, prior=prior, total=total,
                    bits_per_dim=total / (first.d * math.log(2.0)),
                    total_stderr=float(per_example.std() / math.sqrt(n)), per_example=per_example,
                    d=first.d, n=n, T=first.T, variance=first.variance, decoder=first.decoder,
                    timesteps=first.timesteps)


def vlb_terms(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              schedule: NoiseSchedule, x0: torch.Tensor, *,
              variance: Variance = "beta_tilde", decoder: Decoder = "gaussian",
              generator: torch.Generator | None = None, timesteps: int | None = None,
              batch_size: int | None = None) -> VLBTerms:
    """Estimate the variational bound (DDPM eq. 5) of ``model`` on ``x0``, term by term.

    Args:
        model: an ε-predictor ``model(x_t [B, ...], t int64 [B]) → ε [B, ...]`` (a network in
            eval mode, :class:`~diffusion_core.oracles.GaussianOracle`, an ideal denoiser).
        schedule: the noise schedule the model was trained with (T steps).
        x0: ``[n, ...]`` clean examples (``[n, 2]`` points, ``[n, C, H, W]`` images in [−1, 1]).
        variance: σ_t² of the reverse steps: ``"beta_tilde"`` (β̃_t) or ``"beta"`` (β_t); the
            decoder uses β̃_1 either way.
        decoder: ``"gaussian"`` (continuous density) or ``"discrete"`` (8-bit buckets; x0 must
            lie in [−1, 1]).
        generator: the source of every random draw (noise and, with ``timesteps``, the t's).
        timesteps: None (all T terms for every example), or k in 1..T−2: t = 0 and T − 1
            plus k random KL terms per example, one per log-spaced stratum of t = 1..T−2,
            each counted |stratum| times (unbiased).
        batch_size: (example, t) pairs per forward pass (default ≈ 2¹⁸ / d).

    Returns:
        :class:`VLBTerms` (see the module docstring for the conventions).
    """
    _check_inputs(model, schedule, x0, variance, decoder, timesteps, batch_size)
    n, shape, device = x0.shape[0], tuple(x0.shape[1:]), x0.device
    d = math.prod(shape)
    T = schedule.T
    f64 = {k: v.to(device) for k, v in schedule.float64.items()}
    # Exact variance part of each KL (t ≥ 1), and the ε-error weight of DDPM eq. 12.
    mean_weight, var_part = (w.to(device) for w in kl_weights(schedule, variance, d))
    dec_log_var = f64["posterior_log_variance_clipped"][0]  # ln β̃_1 (β̃_0 = 0)
    dec_std = torch.exp(0.5 * dec_log_var)
    x0_err_scale = f64["sqrt_recipm1_alphas_cumprod"][0]  # x0 − x̂0 = √(1/ᾱ_0 − 1)(ε_θ − ε)

    x0_64 = x0.detach().to(torch.float64)
    # L_T, exact per example: KL(N(√ᾱ x0, (1 − ᾱ) I) ‖ N(0, I)).
    ab_last = f64["alphas_cumprod"][-1]
    prior = (0.5 * d * ((1.0 - ab_last) - 1.0 - torch.log1p(-ab_last))
             + 0.5 * ab_last * x0_64.flatten(1).pow(2).sum(1))

    tgrid, weights = _slots(T, n, timesteps, generator, device)
    m = tgrid.shape[1]
    chunk = batch_size or max(1, _NUMBERS_PER_PASS // d)
    # one row per t, looked up once per pass: √ᾱ_t, √(1 − ᾱ_t), KL variance part, eq. 12 weight
    table = torch.stack([f64["sqrt_alphas_cumprod"], f64["sqrt_one_minus_alphas_cumprod"],
                         var_part, mean_weight], dim=1)
    bshape = (-1,) + (1,) * len(shape)
    with torch.inference_mode():
        per_example = prior.clone()
        term_sums = torch.zeros(T, dtype=torch.float64, device=device)
        for start in range(0, n * m, chunk):
            pair = torch.arange(start, min(start + chunk, n * m), device=device)
            ex, slot = pair // m, pair % m
            t = tgrid[ex, slot]
            coef = table[t]
            x0_b = x0_64[ex]
            eps = torch.randn(x0_b.shape, generator=generator, dtype=torch.float64,
                              device=device)
            x_t = coef[:, 0].reshape(bshape) * x0_b + coef[:, 1].reshape(bshape) * eps  # eq. 4
            pred = model(x_t.to(x0.dtype), t)
            if not isinstance(pred, torch.Tensor) or pred.shape != x_t.shape:
                raise ValueError(f"model returned {getattr(pred, 'shape', type(pred).__name__)}"
                                 f"; expected x_t's shape {list(x_t.shape)}")
            err = pred.to(torch.float64) - eps  # ε_θ − ε
            if not torch.isfinite(err).all():
                raise ValueError("model returned NaN or inf")
            value = coef[:, 2] + coef[:, 3] * err.flatten(1).pow(2).sum(1)  # KL, t ≥ 1 (eq. 12)
            dec = (t == 0).nonzero().squeeze(1)
            if len(dec):
                x0_d = x0_b[dec]
                pred_x0 = x0_d - x0_err_scale * err[dec]  # eq. 15, via the same ε
                if decoder == "gaussian":
                    nll = (0.5 * d * (math.log(2.0 * math.pi) + dec_log_var)
                           + (x0_d - pred_x0).flatten(1).pow(2).sum(1)
                           / (2.0 * torch.exp(dec_log_var)))
                else:
                    nll = -discretized_gaussian_log_likelihood(
                        x0_d, pred_x0, dec_std).flatten(1).sum(1)  # eq. 13
                value[dec] = nll
            value = value * weights[slot]
            per_example.index_add_(0, ex, value)
            term_sums.index_add_(0, t, value)
    terms = (term_sums / n).cpu().clone()  # clones outside inference mode: ordinary tensors
    per_example = per_example.cpu().clone()
    prior_mean = float(prior.mean())
    total = prior_mean + float(terms.sum())
    stderr = float(per_example.std() / math.sqrt(n)) if n > 1 else math.nan
    return VLBTerms(terms=terms, prior=prior_mean, total=total,
                    bits_per_dim=total / (d * math.log(2.0)), total_stderr=stderr,
                    per_example=per_example, d=d, n=n, T=T, variance=variance,
                    decoder=decoder, timesteps=timesteps)
