"""Time embeddings: known values, distinct neighbouring steps, validation."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.models.embeddings import sinusoidal_embedding


def test_sinusoidal_embedding_at_t0_is_zeros_then_ones() -> None:
    emb = sinusoidal_embedding(torch.zeros(3, dtype=torch.long), 16)
    assert emb.shape == (3, 16)
    assert emb.dtype == torch.float32
    torch.testing.assert_close(emb[:, :8], torch.zeros(3, 8))
    torch.testing.assert_close(emb[:, 8:], torch.ones(3, 8))


def test_sinusoidal_embedding_known_values() -> None:
    # dim 4: frequencies 10000^(-0/1) = 1 and 10000^(-1/1) = 1e-4
    t = torch.tensor([1, 7])
    emb = sinusoidal_embedding(t, 4)
    expected = torch.tensor(
        [
            [math.sin(1.0), math.sin(1e-4), math.cos(1.0), math.cos(1e-4)],
            [math.sin(7.0), math.sin(7e-4), math.cos(7.0), math.cos(7e-4)],
        ]
    )
    torch.testing.assert_close(emb, expected)


def test_sinusoidal_embedding_distinguishes_neighbouring_steps() -> None:
    emb = sinusoidal_embedding(torch.arange(1000), 32)
    dists = (emb[1:] - emb[:-1]).norm(dim=1)
    assert dists.min() > 0.5  # the highest frequency (1 rad/step) separates t and t + 1


def test_sinusoidal_embedding_rejects_odd_dim() -> None:
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(torch.zeros(1, dtype=torch.long), 7)

