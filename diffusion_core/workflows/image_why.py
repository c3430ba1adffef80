"""What an image model is trying to learn, and how well it models its data (tab 4), UI-free.

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``; t = 0 is one
noising step and ᾱ at t = −1 is 1 (the clean image). The schedule is always the checkpoint's.

Two views of one checkpoint, both needing the images it was trained on:

* **The ideal denoiser beside the network.** For one real image x0, one ε (a seed) and one t,
  x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε (DDPM eq. 4); the network's x̂0 (eq. 15, from its ε̂) and the
  ideal denoiser's x̂0 = E[x0 | x_t] = Σ_i w_i x_i over the training images
  (:class:`~diffusion_core.oracles.IdealDenoiser`), with the k largest weights w_i. The ideal
  one is what a network would output if it minimised the training loss exactly: it can only
  ever return (weighted averages of) training images.
* **The variational bound in bits per dimension** (DDPM eq. 5, :func:`~diffusion_core.
  evaluation.vlb.vlb_terms` with the discrete 8-bit decoder and a stratified subset of k
  timesteps per image), on held-out and on training images, streamed in small batches so a
  caller can stop it, then summarised as decoder L_0 + Σ L_t + prior L_T, per-stratum terms
  and the per-stratum ε-error that the simple loss averages.

==========================  ===================================================================
name                        what it is
==========================  ===================================================================
:func:`training_data`       the checkpoint's training images and a held-out set, when the app
                            can rebuild them exactly (a registry set); else
                            :class:`DataUnavailable` saying why
:class:`IdealView`          ``at(source, index, t, seed)`` → :class:`IdealRecord`;
                            ``curves(source, index, seed)`` → :class:`IdealCurves` (over t)
:func:`bound_images`        the images the bound is estimated on: a fixed subset of one split
:func:`bound_stream`        generator: ``vlb_terms`` on batches of images → one
                            :class:`~diffusion_core.evaluation.vlb.VLBTerms` per batch
:func:`combine`             batches' ``VLBTerms`` → the ``VLBTerms`` of all their images
:func:`summarise`           ``VLBTerms`` → :class:`BoundSummary` (bits/dim, parts, strata)
:func:`bound_run`           generator: a whole run (held-out, then training images) →
                            :class:`BoundProgress` with the :class:`BoundResult` so far
:func:`eps_weights`         DDPM eq. 12's weight w_t of the ε-error in L_t, and each KL's
                            exact variance part (what the simple loss drops)
==========================  ===================================================================

Shapes: images ``[N, C, H, W]`` in [−1, 1]; one image ``[C, H, W]``. Everything here is a pure
function of its arguments (the model in eval mode, the data, the seeds): the same inputs give
the same records, so callers may cache them. Records hold tensors that callers must treat as
read-only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from ..checkpoints import Checkpoint
from ..data import IMAGE_DATASETS, load_image_dataset
from ..data.imageset import ImageSet
from ..data.synthetic import SHAPE_CLASSES, make_gradients, make_shapes
from ..evaluation.vlb import VLBTerms, combine_terms, kl_weights, strata_edges, vlb_terms
from ..forward import pred_x0_from_eps, q_sample
from ..oracles import IdealDenoiser
from ..schedule import NoiseSchedule
from .image_sampling import is_image_model

__all__ = [
    "BOUND_TIMESTEPS",
    "SOURCES",
    "TOP_K",
    "BoundProgress",
    "BoundResult",
    "BoundSettings",
    "BoundSummary",
    "DataUnavailable",
    "IdealCurves",
    "IdealRecord",
    "IdealView",
    "Stratum",
    "TrainingData",
    "batch_generator",
    "bound_images",
    "bound_run",
    "bound_size",
    "bound_stream",
    "combine",
    "eps_weights",
    "images_per_call",
    "summarise",
    "training_data",
]

Source = Literal["held_out", "train"]
SOURCES: tuple[str, ...] = ("held_out", "train")
TOP_K = 8  # training images shown behind the ideal x̂0
CURVE_POINTS = 60  # timesteps of IdealView.curves (evenly spaced over 0..T−1)
SYNTHETIC_HELD_OUT = 500  # held-out draw of a synthetic set (seed 1; training used seed 0)
SYNTHETIC_HELD_OUT_SEED = 1
BOUND_TIMESTEPS = 8  # KL terms per image besides t = 0 and T − 1 (bench/vlb.py uses 8 too)


# ---------------------------------------------------------------------------------------------
# The training data of a checkpoint
# ---------------------------------------------------------------------------------------------


class DataUnavailable(ValueError):
    """The checkpoint's training images cannot be rebuilt here; the message says why."""


@dataclass(frozen=True, eq=False)
class TrainingData:
    """A checkpoint's training images and a held-out set of the same kind (read-only).

    ``train.images [N, C, H, W]`` are exactly the images the model was trained on (what the
    train CLI loads for the recorded data set); ``held_out.images [M, C, H, W]`` never were.
    ``class_names`` names the labels (digits "0".."9", the shapes), or is None.
    """

    name: str
    train: ImageSet
    held_out: ImageSet
    train_note: str
    held_out_note: str
    class_names: tuple[str, ...] | None

    def split(self, source: str) -> ImageSet:
        """``train`` or ``held_out`` (``source`` in :data:`SOURCES`)."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
        return self.train if source == "train" else self.held_out

    def label(self, source: str, index: int) -> str | None:
        """The class name of image ``index`` of ``source``, or None without labels."""
        labels = self.split(source).labels
        if labels is None or self.class_names is None:
            return None
        return self.class_names[int(labels[index])]


@lru_cache(maxsize=4)
def _registry_data(name: str) -> TrainingData:
    """The training images of registry set ``name`` (what ``--dataset name`` trains on) and a
    held-out set: the digits' test split, or a fresh draw (seed 1) of a synthetic generator."""
    train = load_image_dataset(name)
    if name in ("digits", "digits8"):
        held = load_image_dataset(name, split="test")
        return TrainingData(
            name, train, held,
            f"scikit-learn digits, train split ({len(train):,} images)",
            f"scikit-learn digits, test split ({len(held):,} images the model never saw)",
            tuple(str(i) for i in range(10)))
    size = train.shape[1]
    if name == "gradients":
        held = ImageSet(make_gradients(SYNTHETIC_HELD_OUT, size, seed=SYNTHETIC_HELD_OUT_SEED),
                        None, name)
        names = None
    elif name == "shapes":
        held = ImageSet(*make_shapes(SYNTHETIC_HELD_OUT, size, seed=SYNTHETIC_HELD_OUT_SEED),
                        name)
        names = SHAPE_CLASSES
    else:  # a registry set this module does not know how to hold out
        raise DataUnavailable(f"the app has no held-out images for the data set {name!r}")
    return TrainingData(
        name, train, held,
        f"{name}: the {len(train):,} images drawn with seed 0, as in training",
        f"{name}: {len(held):,} new images drawn with seed {SYNTHETIC_HELD_OUT_SEED} "
        "(the model never saw them)", names)


def training_data(ck: Checkpoint) -> TrainingData:
    """The images ``ck`` was trained on and a held-out set, or :class:`DataUnavailable`.

    Available when the checkpoint records a registry data set (``config.json``'s
    ``dataset.name`` in :data:`~diffusion_core.data.IMAGE_DATASETS`) whose images have the
    model's shape and, if recorded, its number of images: then the app rebuilds exactly what
    the train CLI trained on (the digits' seeded train split; a synthetic set's seed-0 draw).
    Not available for a user's own files, or a model with no data set (the untrained demo).
    """
    if not is_image_model(ck):
        raise DataUnavailable("this is not an image model")
    ds = ck.dataset if isinstance(ck.dataset, Mapping) else {}
    name = ds.get("name")
    if not isinstance(name, str) or name not in IMAGE_DATASETS:
        raise DataUnavailable(
            f"it was trained on {name!r}, which is not one of the data sets the app can rebuild "
            f"({', '.join(IMAGE_DATASETS)}): its training images are not available here")
    spec, cfg = IMAGE_DATASETS[name], ck.model_config
    if (spec.channels, spec.size) != (cfg.channels, cfg.image_size):
        raise DataUnavailable(
            f"the data set {name!r} has {spec.channels}×{spec.size}×{spec.size} images but the "
            f"model makes {cfg.channels}×{cfg.image_size}×{cfg.image_size}")
    data = _registry_data(name)
    n = ds.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != len(data.train):
        raise DataUnavailable(
            f"it was trained on {n:,} {name!r} images but the app's {name!r} set has "
            f"{len(data.train):,}: not the same training set")
    return data


# ---------------------------------------------------------------------------------------------
# The ideal denoiser beside the network
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IdealRecord:
    """One (image, t, ε): the network's and the ideal denoiser's x̂0 and the weights behind it.

    Images are float32 ``[C, H, W]``: ``x0`` the real image, ``x_t`` (eq. 4), ``net_x0`` the
    network's x̂0 (eq. 15) clipped to [−1, 1] as the sampler does, ``ideal_x0`` the ideal
    denoiser's x̂0 = Σ_i w_i x_i (inside [−1, 1] by construction). ``top_index [k]`` are rows
    of the training images with the k largest w_i (``top_weight [k]``, largest first, each the
    float32 weight), ``top_images [k, C, H, W]`` those images; ``share`` = Σ top_weight, the
    fraction of x̂0's weight they hold (≤ 1). ``effective_n`` = 1/Σ_i w_i² (1: one image holds
    all the weight; N: uniform). ``rms_*`` are root-mean-square differences per value:
    network vs x0, ideal vs x0, network vs ideal. ``nearest_index`` is the training image
    nearest x0 (``nearest_rms`` its RMS distance; 0 when x0 is a training image).
    """

    source: str
    index: int
    label: str | None
    t: int
    seed: int
    alpha_bar: float
    x0: torch.Tensor
    x_t: torch.Tensor
    net_x0: torch.Tensor
    ideal_x0: torch.Tensor
    top_index: tuple[int, ...]
    top_weight: tuple[float, ...]
    top_labels: tuple[str | None, ...]
    top_images: torch.Tensor
    share: float
    effective_n: float
    rms_net: float
    rms_ideal: float
    rms_net_ideal: float
    nearest_index: int
    nearest_rms: float

    @property
    def noise_in_x0_units(self) -> float:
        """√((1 − ᾱ_t)/ᾱ_t): the noise's size once x_t is scaled back to the data's size."""
        return math.sqrt((1.0 - self.alpha_bar) / self.alpha_bar) if self.alpha_bar > 0 \
            else math.inf


@dataclass(frozen=True, eq=False)
class IdealCurves:
    """:class:`IdealRecord`'s numbers over many t for one (image, ε): float64 ``[m]`` arrays
    (``ts`` int64 ``[m]``, increasing). ``top_share`` is the top-k weights' share."""

    source: str
    index: int
    seed: int
    ts: np.ndarray
    effective_n: np.ndarray
    top1: np.ndarray
    top_share: np.ndarray
    rms_net: np.ndarray
    rms_ideal: np.ndarray
    rms_net_ideal: np.ndarray
    n_train: int
    top_k: int


def _rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """RMS difference per example of ``[B, ...]`` tensors → ``[B]`` float64."""
    return (a.double() - b.double()).flatten(1).pow(2).mean(1).sqrt()


class IdealView:
    """The ideal denoiser of ``data.train`` beside the network of ``ck`` (read-only).

    ``ck``'s model is called under ``torch.inference_mode`` and never changed; the ideal
    denoiser is built once (its float64/float32 buffers: about 24 · N · (D + 1) bytes).
    """

    def __init__(self, ck: Checkpoint, data: TrainingData) -> None:
        cfg = ck.model_config
        if data.train.shape != (cfg.channels, cfg.image_size, cfg.image_size):
            raise ValueError(f"training images {data.train.shape} do not match the model's "
                             f"{(cfg.channels, cfg.image_size, cfg.image_size)}")
        self.ck = ck
        self.data = data
        self.schedule: NoiseSchedule = ck.schedule
        self.ideal = IdealDenoiser(data.train.images, ck.schedule)
        self._flat_train = data.train.images.flatten(1).double()

    @property
    def T(self) -> int:
        return self.schedule.T

    def image(self, source: str, index: int) -> torch.Tensor:
        """Image ``index`` of ``source`` as ``[1, C, H, W]``."""
        images = self.data.split(source).images
        if isinstance(index, bool) or not isinstance(index, int) \
                or not 0 <= index < len(images):
            raise ValueError(f"index must be an integer in 0..{len(images) - 1}; got {index!r}")
        return images[index:index + 1]

    def noise(self, seed: int) -> torch.Tensor:
        """ε ``[1, C, H, W]`` ~ N(0, I) drawn from a generator seeded with ``seed``."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer ≥ 0; got {seed!r}")
        g = torch.Generator().manual_seed(seed)
        return torch.randn((1, *self.data.train.shape), generator=g)

    def _check_t(self, t: int) -> int:
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < self.T:
            raise ValueError(f"t must be an integer in 0..{self.T - 1}; got {t!r}")
        return t

    def _net_x0(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's x̂0 (eq. 15) for ``x_t [B, ...]`` at ``t [B]``, clipped to [−1, 1]."""
        with torch.inference_mode():
            eps = self.ck.model(x_t, t)
            x0 = pred_x0_from_eps(self.schedule, x_t, t, eps)
        return x0.clamp(-1.0, 1.0).clone()  # an ordinary tensor outside inference mode

    def at(self, source: str, index: int, t: int, seed: int, *, top_k: int = TOP_K
           ) -> IdealRecord:
        """x_t of image ``index`` of ``source`` at step ``t`` with the ε of ``seed``, and both
        x̂0 with the ``top_k`` largest weights (see :class:`IdealRecord`)."""
        t = self._check_t(t)
        x0 = self.image(source, index)
        eps = self.noise(seed)
        top_k = min(int(top_k), len(self.ideal))
        tt = torch.tensor([t])
        x_t = q_sample(self.schedule, x0, tt, eps)  # eq. 4
        net_x0 = self._net_x0(x_t, tt)
        ideal_x0 = self.ideal.pred_x0(x_t, tt)
        w = self.ideal.weights(x_t, tt)[0]  # [N], sums to 1
        top = self.ideal.weights(x_t, tt, top_k=top_k)
        idx = tuple(int(i) for i in top.indices[0])
        d2 = (self._flat_train - x0.flatten(1).double()).pow(2).mean(1)
        nearest = int(d2.argmin())
        return IdealRecord(
            source=source, index=index, label=self.data.label(source, index), t=t, seed=seed,
            alpha_bar=self.schedule.alpha_bar(t), x0=x0[0], x_t=x_t[0], net_x0=net_x0[0],
            ideal_x0=ideal_x0[0], top_index=idx,
            top_weight=tuple(float(v) for v in top.weights[0]),
            top_labels=tuple(self.data.label("train", i) for i in idx),
            top_images=self.data.train.images[list(idx)],
            share=float(top.weights[0].double().sum()),
            effective_n=float(1.0 / w.double().pow(2).sum()),
            rms_net=float(_rms(net_x0, x0)[0]), rms_ideal=float(_rms(ideal_x0, x0)[0]),
            rms_net_ideal=float(_rms(net_x0, ideal_x0)[0]),
            nearest_index=nearest, nearest_rms=float(d2[nearest].sqrt()))

    def curve_timesteps(self, points: int = CURVE_POINTS) -> np.ndarray:
        """``points`` timesteps evenly spaced over 0..T−1 (both ends included), int64."""
        return np.unique(np.round(np.linspace(0, self.T - 1, min(points, self.T)))).astype(
            np.int64)

    def curves(self, source: str, index: int, seed: int, *, ts: Sequence[int] | None = None,
               top_k: int = TOP_K) -> IdealCurves:
        """:meth:`at`'s numbers at every t of ``ts`` (default :meth:`curve_timesteps`) for one
        image and one ε: one batched network call and one ideal-denoiser call."""
        ts = self.curve_timesteps() if ts is None else np.asarray(ts, dtype=np.int64)
        if ts.ndim != 1 or len(ts) == 0 or ts.min() < 0 or ts.max() >= self.T:
            raise ValueError(f"ts must be a non-empty list of steps in 0..{self.T - 1}")
        top_k = min(int(top_k), len(self.ideal))
        x0 = self.image(source, index)
        eps = self.noise(seed)
        tt = torch.from_numpy(ts)
        m = len(ts)
        x0_b = x0.expand(m, *x0.shape[1:])
        x_t = q_sample(self.schedule, x0_b, tt, eps.expand_as(x0_b))
        net_x0 = self._net_x0(x_t, tt)
        ideal_x0 = self.ideal.pred_x0(x_t, tt)
        w = self.ideal.weights(x_t, tt).double()  # [m, N]
        top = w.topk(top_k, dim=1).values
        return IdealCurves(
            source=source, index=index, seed=seed, ts=ts,
            effective_n=(1.0 / w.pow(2).sum(1)).numpy(), top1=top[:, 0].numpy(),
            top_share=top.sum(1).numpy(), rms_net=_rms(net_x0, x0_b).numpy(),
            rms_ideal=_rms(ideal_x0, x0_b).numpy(),
            rms_net_ideal=_rms(net_x0, ideal_x0).numpy(), n_train=len(self.ideal),
            top_k=top_k)


# ---------------------------------------------------------------------------------------------
# The bound in bits per dimension
# ---------------------------------------------------------------------------------------------


def bound_size(d: int) -> int:
    """Images per split for the bound: 450 for up to 256 values per image (all the digits'
    held-out split; ≈ 2.4 s on one thread), 160 for larger ones (3×16×16: ≈ 3.5 s)."""
    return 450 if d <= 256 else 160


def images_per_call(d: int) -> int:
    """Images per :func:`vlb_terms` call in :func:`bound_stream`: ≈ 0.15–0.2 s each on one
    thread (32 digits 8×8, 8 images 3×16×16), so a caller can stop within that."""
    return max(4, min(32, 6144 // d))


def bound_images(data: TrainingData, source: str, n: int | None = None) -> torch.Tensor:
    """``[n, C, H, W]``: the first ``n`` held-out images, or ``n`` training images evenly
    spread over the training set (every ⌊N/n⌋-th, in order); all when ``n`` ≥ the split's size.
    ``n`` defaults to :func:`bound_size`."""
    images = data.split(source).images
    total = len(images)
    n = bound_size(images[0].numel()) if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    if n >= total:
        return images
    if source == "held_out":
        return images[:n]
    return images[torch.from_numpy(np.linspace(0, total - 1, n).round().astype(np.int64))]


def batch_generator(seed: int, source: str, batch: int) -> torch.Generator:
    """The generator of batch ``batch`` of ``source`` in a bound run with ``seed``: seeded
    from (seed, source, batch) by ``numpy.random.SeedSequence``, so batches draw independent
    t's and ε and a run is reproducible batch by batch."""
    state = np.random.SeedSequence([seed, SOURCES.index(source), batch]).generate_state(
        1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) >> 1)


def bound_stream(ck: Checkpoint, x0: torch.Tensor, *, source: str, seed: int,
                 variance: str = "beta_tilde", timesteps: int = BOUND_TIMESTEPS,
                 per_call: int | None = None) -> Iterator[VLBTerms]:
    """The bound of ``ck`` on ``x0 [n, C, H, W]`` (in [−1, 1]), batch by batch.

    Yields one :class:`VLBTerms` per batch of ``per_call`` images (default
    :func:`images_per_call`): ``vlb_terms(ck.model, ck.schedule, batch, decoder="discrete",
    timesteps=timesteps, variance=variance, generator=batch_generator(seed, source, b))``.
    :func:`combine` of all of them is the estimate on all of ``x0``; of the first few, an
    unbiased estimate on those images. ``timesteps`` is capped at T − 2 (with T ≤ 2 every t
    is evaluated).
    """
    n = x0.shape[0]
    per_call = images_per_call(x0[0].numel()) if per_call is None else per_call
    k = min(timesteps, ck.schedule.T - 2) if ck.schedule.T > 2 else None  # None: every t
    for b, start in enumerate(range(0, n, per_call)):
        yield vlb_terms(ck.model, ck.schedule, x0[start:start + per_call], variance=variance,
                        decoder="discrete", timesteps=k,
                        generator=batch_generator(seed, source, b))


def combine(parts: Sequence[VLBTerms]) -> VLBTerms:
    """The :class:`VLBTerms` of the union of the batches ``parts`` (same model, settings):
    :func:`~diffusion_core.evaluation.vlb.combine_terms`."""
    return combine_terms(parts)


def eps_weights(schedule: NoiseSchedule, variance: str, d: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [T], var_part [T])`` of DDPM eq. 12 (:func:`~diffusion_core.evaluation.vlb.
    kl_weights`, the formulas inside :func:`vlb_terms`)."""
    return kl_weights(schedule, variance, d)


@dataclass(frozen=True)
class Stratum:
    """Steps ``lo ≤ t < hi`` of the bound: their summed terms ``bits`` (bits/dim),
    ``per_step_bits`` = bits / (hi − lo), and ``eps_mse`` the mean ε-error per value
    E‖ε − ε_θ‖²/d over those steps (what the simple loss averages); all unbiased estimates."""

    lo: int
    hi: int
    bits: float
    per_step_bits: float
    eps_mse: float


@dataclass(frozen=True)
class BoundSummary:
    """A :class:`VLBTerms` in bits per dimension (``/ (d ln 2)``), split for display.

    ``bits_per_dim = decoder_bits + steps_bits + prior_bits`` (L_0, Σ_{t=1}^{T−1} L_t, L_T),
    ± ``stderr_bits``. ``strata``: the log-spaced strata of t = 1..T−2 the estimate draws from,
    then the last step t = T − 1 (always evaluated) as its own stratum. ``eps_loss``: the simple
    loss E_t E‖ε − ε_θ‖²/d over t = 1..T−1, estimated from the same draws.
    """

    n: int
    d: int
    T: int
    timesteps: int | None
    variance: str
    bits_per_dim: float
    stderr_bits: float
    decoder_bits: float
    steps_bits: float
    prior_bits: float
    strata: tuple[Stratum, ...]
    eps_loss: float


def summarise(r: VLBTerms, schedule: NoiseSchedule) -> BoundSummary:
    """Bits per dimension, the three parts, and the per-stratum terms of ``r`` (a bound with
    ``timesteps = k``; with every t evaluated, each t is its own stratum)."""
    if r.T != schedule.T:
        raise ValueError(f"the bound has T = {r.T} but the schedule T = {schedule.T}")
    ln2d = r.d * math.log(2.0)
    terms = r.terms.double()
    weight, var_part = eps_weights(schedule, r.variance, r.d)
    T = r.T
    if r.timesteps is None:
        edges = list(range(1, T))
    else:
        edges = strata_edges(T - 1, r.timesteps)  # the strata vlb_terms draws from
    bounds = [*zip(edges[:-1], edges[1:], strict=True), (T - 1, T)] if T > 1 else []
    # E[terms[t]] = var_part[t] + weight[t] E‖ε − ε_θ‖², so (terms − var_part)/weight is an
    # unbiased estimate of the ε-error at each t (0 draws at t: it adds −var_part/weight, which
    # the draws that landed elsewhere in the stratum make up for in expectation).
    err = torch.zeros(T, dtype=torch.float64)
    if T > 1:
        err[1:] = (terms[1:] - var_part[1:]) / weight[1:]
    strata = []
    for lo, hi in bounds:
        bits = float(terms[lo:hi].sum()) / ln2d
        strata.append(Stratum(lo, hi, bits, bits / (hi - lo),
                              float(err[lo:hi].sum()) / (hi - lo) / r.d))
    eps_loss = float(err[1:].sum()) / max(T - 1, 1) / r.d
    return BoundSummary(
        n=r.n, d=r.d, T=T, timesteps=r.timesteps, variance=r.variance,
        bits_per_dim=r.bits_per_dim, stderr_bits=r.total_stderr / ln2d,
        decoder_bits=float(terms[0]) / ln2d, steps_bits=float(terms[1:].sum()) / ln2d,
        prior_bits=r.prior / ln2d, strata=tuple(strata), eps_loss=eps_loss)


# ---------------------------------------------------------------------------------------------
# One bound run: held-out images, then (optionally) training images
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundSettings:
    """What a bound run computes: σ_t² (``"beta_tilde"`` or ``"beta"``), the seed of every
    draw, whether training images are scored too, k (``timesteps``), and images per split
    (``n``; None: :func:`bound_size`)."""

    variance: str = "beta_tilde"
    seed: int = 0
    with_train: bool = True
    timesteps: int = BOUND_TIMESTEPS
    n: int | None = None

    def __post_init__(self) -> None:
        if self.variance not in ("beta_tilde", "beta"):
            raise ValueError(f"variance must be beta_tilde or beta; got {self.variance!r}")
        for name, lo in (("seed", 0), ("timesteps", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer ≥ {lo}; got {v!r}")
        if not isinstance(self.with_train, bool):
            raise ValueError(f"with_train must be True or False; got {self.with_train!r}")
        if self.n is not None and (isinstance(self.n, bool) or not isinstance(self.n, int)
                                   or self.n < 1):
            raise ValueError(f"n must be None or a positive integer; got {self.n!r}")

    @property
    def sources(self) -> tuple[str, ...]:
        return ("held_out", "train") if self.with_train else ("held_out",)


@dataclass(frozen=True, eq=False)
class BoundResult:
    """A bound run so far: the combined :class:`VLBTerms` of each split's finished batches
    (None before its first batch), the planned number of images per split, whether every
    batch is done, and the seconds it took (so far)."""

    settings: BoundSettings
    parts: Mapping[str, VLBTerms]
    planned_n: Mapping[str, int]
    done: bool
    seconds: float

    def terms(self, source: str) -> VLBTerms | None:
        return self.parts.get(source)

    def images_done(self, source: str) -> int:
        r = self.parts.get(source)
        return 0 if r is None else r.n

    def planned(self, source: str) -> int:
        return self.planned_n.get(source, 0)

    def summary(self, source: str, schedule: NoiseSchedule) -> BoundSummary | None:
        r = self.parts.get(source)
        return None if r is None else summarise(r, schedule)


@dataclass(frozen=True)
class BoundProgress:
    """Yielded by :func:`bound_run` after every batch: the result so far, the split being
    scored, its images done / planned, and the batches done in the whole run."""

    result: BoundResult
    source: str
    images_done: int
    images_total: int
    batches_done: int


def bound_run(ck: Checkpoint, data: TrainingData, settings: BoundSettings
              ) -> Iterator[BoundProgress]:
    """Score :func:`bound_images` of the held-out split, then (``with_train``) of the training
    split, with :func:`bound_stream`; yield a :class:`BoundProgress` after every batch (the
    last one's result has ``done`` true). Closing the generator stops the run."""
    started = time.perf_counter()
    images = {src: bound_images(data, src, settings.n) for src in settings.sources}
    planned = {src: int(x.shape[0]) for src, x in images.items()}
    parts: dict[str, VLBTerms] = {}
    batches = 0
    for i, src in enumerate(settings.sources):
        done_here: list[VLBTerms] = []
        for part in bound_stream(ck, images[src], source=src, seed=settings.seed,
                                 variance=settings.variance, timesteps=settings.timesteps):
            done_here.append(part)
            batches += 1
            parts[src] = combine(done_here)
            n_done = parts[src].n
            last = i == len(settings.sources) - 1 and n_done == planned[src]
            result = BoundResult(settings, dict(parts), planned, last,
                                 time.perf_counter() - started)
            yield BoundProgress(result, src, n_done, planned[src], batches)
