"""The 2D sample-quality record: SW1 to a fresh draw, its floor, the NN ratio, bad samples.

THE one implementation of the score the toy 2D tab shows, the time-to-quality benchmark
(``bench/toy2d_time_to_quality.py``) tracks and the end-to-end test checks. For samples
``[n, 2]`` of toy set ``dataset`` (model coordinates, :mod:`diffusion_core.data.toy2d`), with
``s = data_seed`` and every draw ``make_2d(dataset, n, noise=noise, seed=…)``, or
``dataset(n, seed)`` when ``dataset`` is a callable (a drawn set's ``DrawnSpec.fresh``, which
carries its own noise; :mod:`diffusion_core.data.drawn`):

============ ==================================================================================
field        definition
============ ==================================================================================
``sw1``      ``sliced_wasserstein(samples, draw(s + 1000), seed=projection_seed)``: SW1 to a
             fresh evaluation draw (seed ``eval_seed`` if given)
``floor``    ``sw1_floor(draw, n, seed=s, pairs=floor_pairs)``: mean SW1 between pairs of fresh
             draws, seeds ``s + 1000 + 2k`` / ``s + 1001 + 2k``; what an exact sampler scores
``nn``       ``nearest_neighbour_ratio(samples, train_data, draw(s + 1001))``: 1 means samples
             sit as close to the data as real data does (against the evaluation draw when no
             ``train_data`` is given)
``bad``      samples with a NaN or infinite coordinate; when > 0 the three numbers are NaN
``n``        number of samples
============ ==================================================================================

``ratio = sw1 / floor`` is about 1 for an exact sampler (fresh draws of moons score 1.15 ± 0.27
against one fixed evaluation draw at n = 2000); issue 2's bar is ``ratio ≤ 1.5`` and
``nn ≤ 1.5``. The floor is cached per (data set, n, noise, seed, pairs): it depends on nothing
else, and is the costly part (``2 · floor_pairs`` draws and SW1s); :func:`toy2d_floor` gives it
alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..data._checks import check_int
from ..data.toy2d import make_2d
from .distances import nearest_neighbour_ratio, sliced_wasserstein, sw1_floor

__all__ = ["Toy2DQuality", "toy2d_floor", "toy2d_quality"]

DrawFn = Callable[[int, int], torch.Tensor]  # (n, seed) -> points [n, 2]


def _draw(dataset: str | DrawFn, k: int, noise: float | None, seed: int) -> torch.Tensor:
    """``k`` fresh points of ``dataset`` (a toy set's name, or a callable ``(k, seed)``)."""
    if isinstance(dataset, str):
        return make_2d(dataset, k, noise=noise, seed=seed)
    if callable(dataset):
        return dataset(k, seed)
    raise ValueError(f"dataset must be a 2D data set name or a callable, got {dataset!r}")


@dataclass(frozen=True)
class Toy2DQuality:
    """Sample quality of ``n`` 2D samples (see the module docstring for each field).

    ``sw1``, ``floor`` and ``nn`` are NaN when ``bad`` > 0 (some samples are NaN/inf).
    """

    sw1: float
    floor: float
    nn: float
    bad: int
    n: int

    @property
    def ratio(self) -> float:
        """``sw1 / floor`` (about 1 for an exact sampler; lower is better); NaN without a floor."""
        return self.sw1 / self.floor if self.floor > 0 else math.nan


def toy2d_floor(dataset: str | DrawFn, n: int, *, noise: float | None = None, data_seed: int = 0,
                floor_pairs: int = 8) -> float:
    """The ``floor`` of :func:`toy2d_quality` for ``n`` samples, without samples.

    ``sw1_floor(draw, n, seed=data_seed, pairs=floor_pairs)`` with ``draw(k, s) =
    make_2d(dataset, k, noise=noise, seed=s)``; cached, as it depends on nothing else.
    """
    return _floor(dataset, n, noise, data_seed, floor_pairs)


@lru_cache(maxsize=64)
def _floor(dataset: str | DrawFn, n: int, noise: float | None, data_seed: int, pairs: int
           ) -> float:
    def draw(k: int, s: int) -> torch.Tensor:
        return _draw(dataset, k, noise, s)

    return sw1_floor(draw, n, seed=data_seed, pairs=pairs)


def toy2d_quality(
    samples: torch.Tensor,
    dataset: str | DrawFn,
    *,
    noise: float | None = None,
    data_seed: int = 0,
    train_data: torch.Tensor | None = None,
    projection_seed: int = 0,
    floor_pairs: int = 8,
    eval_seed: int | None = None,
) -> Toy2DQuality:
    """Score ``samples [n, 2]`` (model coordinates, any device) of 2D toy set ``dataset``.

    Args:
        samples: float tensor ``[n, 2]``, n ≥ 1; rows with a NaN or inf are counted in ``bad``.
        dataset: a :data:`~diffusion_core.data.toy2d_spec.TOY_DATASETS` name, or a callable
            ``(n, seed) -> [n, 2]`` drawing fresh points (``DrawnSpec.fresh``; the floor is
            cached per callable).
        noise: the jitter std of every fresh draw (``make_2d``'s ``noise``); ``None`` is the
            set's default noise. Pass the noise the model was trained with. Unused with a
            callable ``dataset``.
        data_seed: ``s`` of the fresh draws: evaluation ``s + 1000``, NN reference ``s + 1001``,
            floor pairs ``s + 1000 + 2k`` / ``s + 1001 + 2k`` (and the floor's projections).
        train_data: ``[M, 2]`` points the model was trained on; the NN ratio measures distances
            to them (memorisation shows as a ratio well below 1). ``None``: to the evaluation
            draw instead.
        projection_seed: seed of the random projection directions of ``sw1``.
        floor_pairs: pairs of fresh draws averaged into the floor (1..1000).
        eval_seed: seed of the evaluation draw ``sw1`` (and, without ``train_data``, ``nn``)
            compares with; ``None`` is ``data_seed + 1000``.

    Returns:
        :class:`Toy2DQuality`; deterministic for fixed arguments.
    """
    x = torch.as_tensor(samples)
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] < 1:
        raise ValueError(f"samples must have shape [n, 2] with n >= 1, got {tuple(x.shape)}")
    floor_pairs = check_int("floor_pairs", floor_pairs, 1, 1000)
    data_seed = check_int("data_seed", data_seed, 0, 2**32 - 1001 - 2 * floor_pairs)
    n = int(x.shape[0])
    finite = torch.isfinite(x).all(dim=1)
    if not bool(finite.all()):
        return Toy2DQuality(math.nan, math.nan, math.nan, int((~finite).sum()), n)
    if eval_seed is None:
        eval_seed = data_seed + 1000
    evald = _draw(dataset, n, noise, eval_seed)
    ref = _draw(dataset, n, noise, data_seed + 1001)
    return Toy2DQuality(
        sw1=sliced_wasserstein(x, evald, seed=projection_seed),
        floor=_floor(dataset, n, noise, data_seed, floor_pairs),
        nn=nearest_neighbour_ratio(x, evald if train_data is None else train_data, ref),
        bad=0,
        n=n,
    )
