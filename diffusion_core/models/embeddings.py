"""Timestep and class embeddings, and the input checks every noise predictor shares
(``check_timesteps``, ``check_labels``).

Index convention: t ∈ {0, …, T−1} (t = 0 is one noising step), given as an int64 tensor ``[B]``.
The embeddings know nothing of the noise schedule; only :class:`OneHotLinearEmbedding` and
:class:`ScalarEmbedding` need ``num_timesteps`` (T), to size a table or to scale t.

| code name                    | meaning                                                      |
|------------------------------|--------------------------------------------------------------|
| ``sinusoidal_embedding``     | Transformer / DDPM position encoding of the integer t        |
| ``OneHotLinearEmbedding``    | ``Linear(one_hot(t, T))``: one learned scalar per t          |
| ``ScalarEmbedding``          | ``t / T`` as one extra input feature                         |
| ``ClassEmbedding``           | one learned vector per class y ∈ {0, …, K−1} plus the null  |
|                              | class K (the unconditional model of classifier-free guidance)|
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "ClassEmbedding",
    "OneHotLinearEmbedding",
    "ScalarEmbedding",
    "SinusoidalEmbedding",
    "check_labels",
    "check_timesteps",
    "sinusoidal_embedding",
]

_MAX_PERIOD = 10_000.0


def check_timesteps(t: torch.Tensor, batch: int, num_timesteps: int | None = None) -> None:
    """Raise ``ValueError`` unless ``t`` is an integer tensor ``[batch]`` with values in 0..T−1.

    Args:
        t: timestep indices, ``[B]``, integer dtype (int64 by contract), t ∈ {0, …, T−1}.
        batch: the batch size B of the matching ``x_t``.
        num_timesteps: T; ``None`` only checks ``t >= 0`` (models that do not need T).
    """
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"t must be a torch.Tensor of shape [{batch}], got {type(t).__name__}")
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"t must be an integer tensor (int64), got dtype {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(
            f"t must have shape [B] = [{batch}] (one timestep per sample), got {list(t.shape)}"
        )
    if t.numel() == 0:
        return
    lo, hi = int(t.min()), int(t.max())
    if num_timesteps is None:
        if lo < 0:
            raise ValueError(f"t must be >= 0 (t ∈ {{0, …, T−1}}), got min {lo}")
    elif lo < 0 or hi >= num_timesteps:
        raise ValueError(
            f"t must lie in 0..{num_timesteps - 1} (t ∈ {{0, …, T−1}}, T = {num_timesteps}), "
            f"got values in {lo}..{hi}"
        )


def sinusoidal_frequencies(dim: int) -> torch.Tensor:
    """The ``dim // 2`` angular frequencies ``10000^(−i / (dim/2 − 1))``, float32 ``[dim // 2]``."""
    if dim < 4 or dim % 2:
        raise ValueError(f"embedding dim must be an even integer >= 4, got {dim}")
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float64) / (half - 1)
    return torch.exp(-math.log(_MAX_PERIOD) * exponent).to(torch.float32)


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoidal encoding of integer timesteps, as in DDPM.

    ``emb[b] = [sin(t_b ω_0), …, sin(t_b ω_{h−1}), cos(t_b ω_0), …, cos(t_b ω_{h−1})]`` with
    ``h = dim // 2`` and ``ω_i = 10000^(−i / (h − 1))`` (so ω_0 = 1 and ω_{h−1} = 1/10000).
    At t = 0 the sin half is 0 and the cos half is 1.

    Args:
        t: ``[B]`` integer timesteps, t ∈ {0, …, T−1}.
        dim: even embedding width ≥ 4.

    Returns:
        ``[B, dim]`` float32 on ``t``'s device.
    """
    freqs = sinusoidal_frequencies(dim).to(t.device)
    return _sin_cos(t, freqs)


def _sin_cos(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """``[B]`` timesteps × ``[h]`` frequencies → ``[B, 2h]`` = [sin | cos]."""
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat((args.sin(), args.cos()), dim=-1)


class SinusoidalEmbedding(nn.Module):
    """Module form of :func:`sinusoidal_embedding`: ``t [B] → [B, dim]`` (no parameters).

    The frequencies are a non-persistent buffer, so they follow ``.to(device)`` and stay out of
    checkpoints.
    """

    freqs: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("freqs", sinusoidal_frequencies(dim), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t: [B]`` integer, t ∈ {0, …, T−1} → ``[B, dim]`` float32."""
        return _sin_cos(t, self.freqs)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class OneHotLinearEmbedding(nn.Module):
    """``nn.Linear(num_timesteps, 1)`` applied to ``one_hot(t, num_timesteps)``: ``[B] → [B, 1]``.

    One learned scalar per timestep (plus a shared bias), the design of the 2D-toy diffusion blog.
    The product with a one-hot vector is computed as a column lookup, which is the same number
    and the same gradient without building the ``[B, T]`` one-hot matrix.
    """

    def __init__(self, num_timesteps: int) -> None:
        super().__init__()
        self.num_timesteps = num_timesteps
        self.linear = nn.Linear(num_timesteps, 1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t: [B]`` integer, t ∈ {0, …, T−1} → ``[B, 1]``."""
        # == self.linear(F.one_hot(t, T).float())
        return self.linear.weight[0, t].unsqueeze(-1) + self.linear.bias


class ScalarEmbedding(nn.Module):
    """``t / num_timesteps`` as a single feature: ``[B] → [B, 1]`` in [0, 1) (no parameters)."""

    def __init__(self, num_timesteps: int) -> None:
        super().__init__()
        self.num_timesteps = num_timesteps

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t: [B]`` integer, t ∈ {0, …, T−1} → ``[B, 1]`` float32."""
        return (t.to(torch.float32) / self.num_timesteps).unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"num_timesteps={self.num_timesteps}"


def check_labels(y: torch.Tensor, batch: int, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``y`` is an integer tensor ``[batch]`` with values in 0..K.

    ``K = num_classes`` is itself allowed: it is the null class (no label), which the
    unconditional half of classifier-free guidance and label dropout in training use.
    """
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"y must be a torch.Tensor of shape [{batch}] (int64 class labels), got "
                         f"{type(y).__name__}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"y must be an integer tensor (int64), got dtype {y.dtype}")
    if y.shape != (batch,):
        raise ValueError(f"y must have shape [B] = [{batch}] (one label per sample), got "
                         f"{list(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) > num_classes):
        raise ValueError(f"y must lie in 0..{num_classes} (classes 0..{num_classes - 1}, "
                         f"{num_classes} = the null class), got values in "
                         f"{int(y.min())}..{int(y.max())}")


class ClassEmbedding(nn.Module):
    """A learned vector per class: ``y [B] → [B, dim]``, with one extra null class.

    Rows 0..K−1 are the classes, row K (``null_class``) is "no label": ``y = None`` gives it
    for the whole batch. One network then holds the conditional model ε(x_t, t, y) and the
    unconditional one ε(x_t, t, ∅) that classifier-free guidance mixes (Ho & Salimans 2022).
    The table starts at zero, so a fresh conditional network computes exactly what the same
    unconditional one would, and the classes are learned from there.
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be ≥ 1, got {num_classes}")
        self.num_classes = num_classes
        self.embedding = nn.Embedding(num_classes + 1, dim)
        nn.init.zeros_(self.embedding.weight)

    @property
    def null_class(self) -> int:
        """The index of "no label" (= ``num_classes``)."""
        return self.num_classes

    def forward(self, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        """``y: [B]`` int64 in 0..K (K = null) or ``None`` (all null) → ``[B, dim]``."""
        if y is None:
            return self.embedding.weight[self.num_classes].expand(batch, -1)
        check_labels(y, batch, self.num_classes)
        return self.embedding(y)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes} (+ null)"
