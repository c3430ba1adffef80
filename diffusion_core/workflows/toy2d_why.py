"""Why the 2D model does what it does: its gap to the ideal denoiser and its likelihood bound.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); ᾱ_{−1} = 1 (the clean data).
Builds on a :class:`~diffusion_core.workflows.toy2d.Toy2DSession`: its training points, fixed ε,
schedule, network (:attr:`~diffusion_core.workflows.toy2d.Toy2DSession.model`, an ε-predictor
whatever it predicts) and the ideal denoiser of its training points
(:attr:`~diffusion_core.workflows.toy2d.Toy2DSession.ideal`).

=========================  ======================================================================
name                       what it does
=========================  ======================================================================
:func:`eps_error_by_t`     mean ‖ε̂_θ − ε*‖² over the noised training cloud at (a subsample of)
                           every t: where the network differs from the memorising optimum
:class:`BoundRun`          the variational bound (DDPM eq. 5, :func:`~diffusion_core.evaluation
                           .vlb.vlb_terms`) of the network and of the ideal denoiser on the same
                           points, in small pieces (iterate it; a UI stops by not iterating)
:func:`merge_terms`        one :class:`~diffusion_core.evaluation.vlb.VLBTerms` from the pieces
:func:`bound_points`       the points a bound is measured on: training points or a fresh draw
:func:`eps_weights`        w_t of DDPM eq. 12, the ε-error weight in each KL term (L_simple: 1)
=========================  ======================================================================

Nothing here imports gradio or plotly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..evaluation.vlb import VLBTerms, combine_terms, kl_weights, vlb_terms
from ..forward import q_sample
from ..sampling.config import VARIANCES
from ..sampling.spacing import evenly_spaced
from .toy2d import SampleScore, Toy2DSession

__all__ = ["BOUND_POINTS", "BoundResult", "BoundRun", "ErrorByT", "bound_points",
           "eps_error_by_t", "eps_weights", "merge_terms"]

ERROR_TIMESTEPS = 64  # t's of the error-by-t curve (all of them when T ≤ this)
ERROR_POINTS = 256  # noised training points averaged at each t
FRESH_SEED_OFFSET = 1000  # a fresh draw is make_2d(…, seed = data seed + this): the SW1 draw
CHUNK_WEIGHTS = 1 << 24  # ideal-denoiser log-weights per piece of a BoundRun (≈ 30 ms)

BoundPoints = Literal["train", "fresh"]
BOUND_POINTS: tuple[str, ...] = ("train", "fresh")


# ---------------------------------------------------------------------------------------------
# The network against the ideal denoiser, by t
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorByT:
    """``mse[i]`` = mean over the noised points of ‖ε̂_θ(x_t, t) − ε*(x_t, t)‖² at t = ``t[i]``.

    ``t`` int64 ``[k]`` ascending, ``mse`` float64 ``[k]`` (≥ 0; the squared norm over both
    coordinates, not divided by 2), ``n_points`` the training points noised with the session's
    fixed ε (eq. 4) at each t, ``step`` the network's training steps when measured.
    """

    t: np.ndarray
    mse: np.ndarray
    n_points: int
    step: int


def eps_error_by_t(session: Toy2DSession, *, max_timesteps: int = ERROR_TIMESTEPS,
                   max_points: int = ERROR_POINTS) -> ErrorByT:
    """How far the network's ε̂_θ is from the ideal ε* on the noised training cloud, by t.

    At ≤ ``max_timesteps`` evenly spaced t (0 and T − 1 included), the first ``max_points``
    training points (i.i.d., so a random subset) are noised with the session's fixed ε
    (x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, eq. 4) and both denoisers are asked for ε. The ideal ε* is
    the minimiser of the training loss (eq. 14) on these training points, so this is how far the
    network is from the optimum of its own objective; at small t that optimum copies training
    points, so a network that generalises stays away from it there.
    Cost: ≤ ``max_timesteps · max_points`` network calls and that many times n ideal weights
    (≈ 30 ms for 64 × 256 over 2,000 points).
    """
    for name, v in (("max_timesteps", max_timesteps), ("max_points", max_points)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    ts = evenly_spaced(session.T, max_timesteps)
    k = min(max_points, len(session.data))
    x0, eps = session.data[:k], session.eps[:k]
    tt = torch.tensor(ts, dtype=torch.long).repeat_interleave(k)
    x_t = q_sample(session.schedule, x0.repeat(len(ts), 1), tt, eps.repeat(len(ts), 1))
    with torch.inference_mode():
        net = session.model(x_t, tt).double()
        ideal = session.ideal(x_t, tt).double()
    err = (net - ideal).pow(2).sum(1).view(len(ts), k).mean(1)
    return ErrorByT(t=np.asarray(ts, dtype=np.int64), mse=err.numpy().copy(), n_points=k,
                    step=session.trainer.step)


# ---------------------------------------------------------------------------------------------
# The variational bound of both denoisers
# ---------------------------------------------------------------------------------------------


def bound_points(session: Toy2DSession, points: BoundPoints, n: int) -> torch.Tensor:
    """The ``[m, 2]`` points a bound is measured on.

    ``"train"``: the first ``min(n, N)`` training points (i.i.d., so a random subset);
    ``"fresh"``: ``n`` new points of the same data set and noise, seed = data seed +
    :data:`FRESH_SEED_OFFSET` (the draw the SW1 score compares with), never trained on.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    if points == "train":
        return session.data[:n]
    if points == "fresh":
        spec = session.spec
        return spec.fresh(n, spec.seed + FRESH_SEED_OFFSET)  # (a drawing's too)
    raise ValueError(f"points must be one of {', '.join(BOUND_POINTS)}; got {points!r}")


def eps_weights(schedule, variance: str = "beta_tilde") -> np.ndarray:
    """w_t = β_t² / (2σ_t² α_t (1 − ᾱ_t)) for t = 0..T−1, float64 ``[T]`` (DDPM eq. 12): the
    weight of E‖ε − ε̂_θ‖² in L_t, with σ_t² = β̃_t or β_t. ``w[0]`` is NaN: the t = 0 term is
    the decoder, whose weight on the same error is (1/ᾱ_0 − 1)/(2β̃_1)."""
    w = kl_weights(schedule, variance, 2)[0].numpy().copy()
    w[0] = math.nan
    return w


def merge_terms(parts: list[VLBTerms]) -> VLBTerms:
    """The bound of all the pieces' examples together (each piece from :func:`vlb_terms` with
    all timesteps): :func:`~diffusion_core.evaluation.vlb.combine_terms`."""
    if any(p.timesteps is not None for p in parts):
        raise ValueError("the pieces used a subset of timesteps")
    return combine_terms(parts)


@dataclass(frozen=True)
class BoundResult:
    """The bound of the network and of the ideal denoiser on the same points, in nats per point.

    ``network`` and ``ideal`` are :class:`~diffusion_core.evaluation.vlb.VLBTerms` (all T terms,
    Gaussian decoder, the same noise draws for both); ``points`` says which points
    (:func:`bound_points`), ``step`` the network's training steps, ``prediction`` what it
    predicts, ``scores`` the session's last sample scores at the time (``last_scores``).
    """

    network: VLBTerms
    ideal: VLBTerms
    points: str
    variance: str
    n: int
    step: int
    prediction: str
    scores: dict[str, SampleScore]

    @property
    def difference(self) -> tuple[float, float]:
        """network − ideal total, nats per point, and its standard error (paired: the same
        points and noise draws, so the spread of the per-point differences)."""
        d = self.network.per_example - self.ideal.per_example
        se = float(d.std() / math.sqrt(len(d))) if len(d) > 1 else math.nan
        return float(d.mean()), se

    def largest_differences(self, k: int = 3) -> list[tuple[int, float]]:
        """The ``k`` timesteps whose terms differ most (network − ideal, nats per point), as
        ``(t, difference)`` by decreasing size; t = 0 is the decoder L_0."""
        d = (self.network.terms - self.ideal.terms).numpy()
        order = np.argsort(-np.abs(d))[:k]
        return [(int(t), float(d[t])) for t in order]


class BoundRun:
    """The bound of a session's network and of its ideal denoiser, piece by piece.

    Iterating computes :func:`vlb_terms` (all T terms, ``decoder="gaussian"``: 2D points are
    continuous) on pieces of ≤ ``chunk`` points, the network and then the ideal denoiser on
    each, and yields ``(pieces done, pieces in all)`` after each call, so a UI shows progress
    and stops by not iterating further. Both denoisers draw their noise from generators seeded
    with ``seed`` and see the same pieces in the same order, so they see the same x_t (common
    random numbers: their difference is less noisy than either). With ``chunk ≥ n`` each total
    is exactly ``vlb_terms(denoiser, schedule, x0, generator=Generator().manual_seed(seed))``.

    ``chunk`` defaults to what keeps one ideal-denoiser call near :data:`CHUNK_WEIGHTS`
    log-weights (pieces × T × training points), ≈ 30 ms on one core.
    """

    def __init__(self, session: Toy2DSession, *, variance: str = "beta_tilde",
                 points: BoundPoints = "train", n: int = 1000, seed: int = 0,
                 chunk: int | None = None) -> None:
        if variance not in VARIANCES:
            raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}")
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)
                                  or chunk < 1):
            raise ValueError(f"chunk must be a positive integer or None; got {chunk!r}")
        self.session = session
        self.variance = variance
        self.points = points
        self.x0 = bound_points(session, points, n)
        if chunk is None:
            chunk = max(1, CHUNK_WEIGHTS // (session.T * len(session.data)))
        self.chunk = chunk
        self.pieces = [self.x0[i:i + chunk] for i in range(0, len(self.x0), chunk)]
        self._gens = {name: torch.Generator().manual_seed(seed) for name in ("network", "ideal")}
        self._parts: dict[str, list[VLBTerms]] = {"network": [], "ideal": []}
        self.step = session.trainer.step
        self.done = False

    def __len__(self) -> int:
        """Pieces in all (each is one call per denoiser)."""
        return len(self.pieces)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        s = self.session
        for i, piece in enumerate(self.pieces):
            for name in ("network", "ideal"):
                self._parts[name].append(vlb_terms(
                    s.denoiser(name), s.schedule, piece, variance=self.variance,
                    decoder="gaussian", generator=self._gens[name]))
            yield i + 1, len(self.pieces)
        self.done = True

    def result(self) -> BoundResult:
        """Both bounds over all the points; ``RuntimeError`` before the run has finished.

        The session keeps it as ``last_bounds[(points, variance)]``.
        """
        if not self.done:
            raise RuntimeError("the bound has not finished: iterate the run to the end first")
        s = self.session
        result = BoundResult(network=merge_terms(self._parts["network"]),
                             ideal=merge_terms(self._parts["ideal"]), points=self.points,
                             variance=self.variance, n=len(self.x0), step=self.step,
                             prediction=s.prediction, scores=dict(s.last_scores))
        s.last_bounds[(self.points, self.variance)] = result
        return result
