"""Exact denoisers: the right answers a trained network is trying to learn.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); ᾱ_{−1} = 1 (the clean data).

================== ===========================================================================
module             what it holds
================== ===========================================================================
``gaussian``       :class:`GaussianOracle`: data N(μ, s²I), for which every quantity of the
                   forward and reverse process has a closed form (the exact ε, x̂0, posterior
                   variance, probability-flow map and data NLL): the reference the samplers,
                   the bound and the inversion are tested against
``ideal``          :class:`IdealDenoiser`: the exact E[ε | x_t] of a finite training set (a
                   softmax over the training points), optionally per class; x̂0 as a weighted
                   average of training points (``weights``, ``TopWeights``); the kernel
                   :func:`posterior_mean_x0`. What a network that memorised its data would do
================== ===========================================================================

Each oracle is callable like a network, ``oracle(x_t [B, ...], t int64 [B]) → ε [B, ...]``, so
every sampler runs with it unchanged. Importing this package imports no torch.
"""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "GaussianOracle": ".gaussian",
    "IdealDenoiser": ".ideal",
    "TopWeights": ".ideal",
    "posterior_mean_x0": ".ideal",
})
