"""The forward-noising demo (tab 2), UI-free: one image x0, one fixed ε, and x_t at any t.

x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (DDPM eq. 4) is computed by :func:`diffusion_core.forward.q_sample`
only; its two parts are the schedule's own ``sqrt_alphas_cumprod`` and
``sqrt_one_minus_alphas_cumprod`` times x0 and ε, and SNR is read from ``NoiseSchedule.snr``.
Nothing here recomputes a schedule quantity. Returns plain records (frozen dataclasses holding
tensors, numpy arrays and floats); the tab, the benchmarks and the tests drive these functions.

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``; ᾱ at t = −1 is 1.
Shapes: ``x0`` and ``eps`` are ``[1, C, H, W]`` float32 (images in [−1, 1]); the parts and x_t
in the records are ``[C, H, W]`` (image 0).

Code name ↔ paper symbol (Ho et al. 2020):

====================  =====================================================================
``x0``                x_0, the clean image
``eps``               ε ~ N(0, I), drawn once per seed and kept while t moves
``signal``            √ᾱ_t · x_0, the part of x_t left of the image
``noise``             √(1 − ᾱ_t) · ε, the part of x_t that is noise
``x_t``               x_t = signal + noise                                           (eq. 4)
``x_iter``            x_t from running the chain step by step                        (eq. 2)
``snr``               SNR_t = ᾱ_t / (1 − ᾱ_t)
====================  =====================================================================
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .. import data, forward
from ..sampling.spacing import evenly_spaced
from ..schedule import NoiseSchedule, ScheduleConfig

# The built-in images: scikit-learn's two sample photos (centre-cropped to PHOTO_SIZE²), one
# scikit-learn digit and one two-colour gradient (the colour-gradient tutorial's generator),
# the last two generated at SMALL_SIZE².
BUILTIN_IMAGES = ("china", "flower", "digit", "gradient")
PHOTO_SIZE = 256  # also the longest side an uploaded image is scaled down to
SMALL_SIZE = 64
DIGIT_INDEX = 0
GRADIENT_SEED = 3
# The eq. 2 chain draws its own noise from the session seed plus this (mod 2³¹), so it never
# reuses the ε of the closed form.
CHAIN_SEED_OFFSET = 1_000_003
SEED_MODULUS = 2**31
PEAK_TO_PEAK = 2.0  # pixels span [−1, 1]: the PSNR's peak signal


# ---------------------------------------------------------------------------------------------
# x0, ε and the schedule
# ---------------------------------------------------------------------------------------------


def builtin_image(key: str) -> torch.Tensor:
    """One built-in image as ``[C, H, W]`` float32 in [−1, 1].

    Raises:
        ValueError: ``key`` is not one of :data:`BUILTIN_IMAGES`.
    """
    if key in ("china", "flower"):
        return data.sample_photos(PHOTO_SIZE)[key]
    if key == "digit":
        return data.digit_image(DIGIT_INDEX, size=SMALL_SIZE)
    if key == "gradient":
        return data.make_gradients(1, size=SMALL_SIZE, seed=GRADIENT_SEED)[0]
    raise ValueError(f"Unknown image {key!r}; choose one of {', '.join(BUILTIN_IMAGES)}.")


def load_upload(path, *, max_pixels: int = data.MAX_IMAGE_PIXELS
                ) -> tuple[torch.Tensor, list[str]]:
    """A user's image file → (``[C, H, W]`` in [−1, 1], notes on what was changed).

    The longest side is scaled down to :data:`PHOTO_SIZE` (cheaply: the decoder reduces
    first). Files over ``max_pixels`` pixels are refused. Raises ``FileNotFoundError`` or
    ``ValueError`` (see :func:`diffusion_core.data.load_image_file`).
    """
    return data.load_image_file(path, max_side=PHOTO_SIZE, max_pixels=max_pixels)


def draw_eps(x0: torch.Tensor, seed: int) -> torch.Tensor:
    """ε ~ N(0, I) of ``x0``'s shape, the same for the same ``seed`` (float32, CPU)."""
    return torch.randn(x0.shape, generator=torch.Generator().manual_seed(int(seed)))


def chain_seed(seed: int) -> int:
    """The seed of the eq. 2 chain's fresh noise for session seed ``seed``."""
    return (int(seed) + CHAIN_SEED_OFFSET) % SEED_MODULUS


@lru_cache(maxsize=8)
def noise_schedule(config: ScheduleConfig) -> NoiseSchedule:
    """The schedule for ``config``, built once per config (a schedule is immutable)."""
    return NoiseSchedule(config)


def _check_pair(x0: torch.Tensor, eps: torch.Tensor) -> None:
    if x0.ndim != 4 or x0.shape[0] != 1 or x0.dtype != torch.float32:
        raise ValueError(f"x0 must be float32 [1, C, H, W]; got {x0.dtype} {list(x0.shape)}")
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have x0's shape {list(x0.shape)}; got {list(eps.shape)}")


# ---------------------------------------------------------------------------------------------
# One frame: the parts of x_t and its statistics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardParts:
    """x_t at one t and its two parts, each ``[C, H, W]``; ``signal + noise == x_t`` exactly."""

    t: int
    signal: torch.Tensor  # √ᾱ_t · x0
    noise: torch.Tensor  # √(1 − ᾱ_t) · ε
    x_t: torch.Tensor  # DDPM eq. 4


def forward_parts(schedule: NoiseSchedule, x0: torch.Tensor, eps: torch.Tensor,
                  t: int) -> ForwardParts:
    """The parts √ᾱ_t·x0 and √(1−ᾱ_t)·ε and x_t = their sum (``forward.q_sample``, eq. 4).

    Args:
        x0, eps: ``[1, C, H, W]``; t: an int in 0..T−1.
    """
    _check_pair(x0, eps)
    x_t = forward.q_sample(schedule, x0, t, eps)  # validates t
    t_b = torch.tensor([t])
    signal = forward.extract(schedule.sqrt_alphas_cumprod, t_b, x0) * x0
    noise = forward.extract(schedule.sqrt_one_minus_alphas_cumprod, t_b, eps) * eps
    return ForwardParts(t=t, signal=signal[0], noise=noise[0], x_t=x_t[0])


@dataclass(frozen=True)
class Histogram:
    """Equal-width bins over ``[−value_range, value_range]``; values outside are not counted."""

    centers: np.ndarray  # [bins]
    width: float
    counts: np.ndarray  # [bins], float32 (torch.histc)
    density: np.ndarray  # counts / (all values · width): integrates to the share inside


def histogram(x: torch.Tensor, *, bins: int, value_range: float) -> Histogram:
    """Density histogram of all of ``x``'s values in ``[−value_range, value_range]``."""
    width = 2 * value_range / bins
    counts = torch.histc(x, bins=bins, min=-value_range, max=value_range).numpy()
    return Histogram(centers=-value_range + width * (np.arange(bins) + 0.5), width=width,
                     counts=counts, density=counts / (x.numel() * width))


@dataclass(frozen=True)
class FrameStats:
    """Numbers of one frame: the schedule at t (float64 values) and x_t against x0."""

    t: int
    T: int
    alpha_bar: float  # ᾱ_t
    signal: float  # √ᾱ_t
    noise: float  # √(1 − ᾱ_t)
    snr: float  # ᾱ_t / (1 − ᾱ_t), read from the schedule
    snr_db: float  # 10 log10 SNR_t
    psnr_db: float  # 10 log10(PEAK_TO_PEAK² / MSE(x_t, x0)), unclipped x_t; inf when equal
    mean: float  # of x_t's values
    std: float
    histogram: Histogram


def frame_stats(schedule: NoiseSchedule, x0: torch.Tensor, parts: ForwardParts, *,
                bins: int, value_range: float) -> FrameStats:
    """The numbers shown beside one frame (``x0``: ``[1, C, H, W]``)."""
    t, x_t = parts.t, parts.x_t
    values = schedule.float64
    snr = float(values["snr"][t])
    mse = float(torch.mean((x_t - x0[0]) ** 2))
    return FrameStats(
        t=t,
        T=schedule.T,
        alpha_bar=float(values["alphas_cumprod"][t]),
        signal=float(values["sqrt_alphas_cumprod"][t]),
        noise=float(values["sqrt_one_minus_alphas_cumprod"][t]),
        snr=snr,
        snr_db=10.0 * math.log10(snr),
        psnr_db=10.0 * math.log10(PEAK_TO_PEAK**2 / mse) if mse > 0 else math.inf,
        mean=float(x_t.mean()),
        std=float(x_t.std()),
        histogram=histogram(x_t, bins=bins, value_range=value_range),
    )


# ---------------------------------------------------------------------------------------------
# The strip: x_t at evenly spaced t, same ε
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strip:
    """x_t at ``ts`` with the same ε: ``frames`` ``[len(ts), C, h, w]``."""

    ts: tuple[int, ...]
    frames: torch.Tensor


def strip(schedule: NoiseSchedule, x0: torch.Tensor, eps: torch.Tensor, *, frames: int,
          max_side: int) -> Strip:
    """x_t at (at most) ``frames`` evenly spaced t (``sampling.evenly_spaced``), one ε.

    Images larger than ``max_side`` are subsampled first (every k-th pixel, no blur, so the
    noise keeps its per-pixel spread): ``h, w ≤ max_side``.
    """
    _check_pair(x0, eps)
    ts = evenly_spaced(schedule.T, frames)
    k = math.ceil(max(x0.shape[-2:]) / max_side)
    x0, eps = x0[..., ::k, ::k], eps[..., ::k, ::k]
    n = len(ts)
    x_t = forward.q_sample(schedule, x0.expand(n, -1, -1, -1), torch.tensor(ts),
                           eps.expand(n, -1, -1, -1))  # DDPM eq. 4 for every t at once
    return Strip(ts=tuple(ts), frames=x_t)


# ---------------------------------------------------------------------------------------------
# Eq. 2 (step by step) against eq. 4 (closed form)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteStats:
    """Pixel statistics of one route's x_t; ``resid`` is x_t − √ᾱ_t x0 (the noise added)."""

    mean: float
    resid_mean: float
    resid_std: float


@dataclass(frozen=True)
class CompareStats:
    """Both routes against theory N(√ᾱ_t x0, (1 − ᾱ_t) I)."""

    theory: RouteStats  # mean √ᾱ_t·mean(x0), resid_mean 0, resid_std √(1 − ᾱ_t)
    iterative: RouteStats  # eq. 2
    closed: RouteStats  # eq. 4
    noise_correlation: float  # of the two routes' residuals: ≈ 0 for independent draws
    rms_difference: float  # between the two pictures: ≈ √(2(1 − ᾱ_t))


def compare_stats(x_iter: torch.Tensor, x_closed: torch.Tensor, x0: torch.Tensor,
                  alpha_bar: float) -> CompareStats:
    """Pixel statistics of both routes vs theory (all tensors of one shape, e.g. ``[C, H, W]``).

    ``alpha_bar`` is ᾱ_t (the schedule's float64 value).
    """
    sig = math.sqrt(alpha_bar) * x0
    routes = {}
    for name, x in (("iterative", x_iter), ("closed", x_closed)):
        r = x - sig
        routes[name] = RouteStats(mean=float(x.mean()), resid_mean=float(r.mean()),
                                  resid_std=float(r.std()))
    r1, r2 = (x_iter - sig).flatten(), (x_closed - sig).flatten()
    return CompareStats(
        theory=RouteStats(mean=float(sig.mean()), resid_mean=0.0,
                          resid_std=math.sqrt(1.0 - alpha_bar)),
        noise_correlation=float(torch.corrcoef(torch.stack([r1, r2]))[0, 1]),
        rms_difference=float(torch.sqrt(torch.mean((x_iter - x_closed) ** 2))),
        **routes,
    )


@dataclass(frozen=True)
class Comparison:
    """x_t by both routes (``[C, H, W]``), their statistics, and the chain's run time."""

    t: int
    x_iter: torch.Tensor  # eq. 2, fresh noise from chain_seed(seed)
    x_closed: torch.Tensor  # eq. 4 with the session's ε
    stats: CompareStats
    seconds: float  # wall time of the t + 1 chain steps


def compare(schedule: NoiseSchedule, x0: torch.Tensor, eps: torch.Tensor, t: int,
            seed: int) -> Comparison:
    """Run the chain t + 1 steps (``forward.q_sample_iterative``, eq. 2) with its own noise
    (seeded by :func:`chain_seed`) and compare with the closed form (eq. 4, ε = ``eps``).

    Costs about 1 ms per step for a 256×256 RGB image.
    """
    _check_pair(x0, eps)
    g = torch.Generator().manual_seed(chain_seed(seed))
    start = time.perf_counter()
    x_iter = forward.q_sample_iterative(schedule, x0, t, generator=g)[0]  # DDPM eq. 2
    seconds = time.perf_counter() - start
    x_closed = forward.q_sample(schedule, x0, t, eps)[0]  # DDPM eq. 4
    stats = compare_stats(x_iter, x_closed, x0[0], schedule.alpha_bar(t))
    return Comparison(t=t, x_iter=x_iter, x_closed=x_closed, stats=stats, seconds=seconds)
