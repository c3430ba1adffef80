"""Small configs and inputs shared by the model tests."""

from __future__ import annotations

import torch

from diffusion_core.models import UNetConfig

ACTIVATIONS = ["silu", "relu", "gelu", "leaky_relu"]


EMBEDDINGS = ["sinusoidal", "onehot_linear", "scalar"]


def small_unet(**overrides: object) -> UNetConfig:
    """A UNet config small enough for CPU unit tests (milliseconds per call)."""
    fields: dict[str, object] = dict(
        dim=8, dim_mults=(1, 2), groups=4, attn_heads=2, attn_dim_head=8, image_size=8
    )
    fields.update(overrides)
    return UNetConfig(**fields)  # type: ignore[arg-type]


def timesteps(batch: int, num_timesteps: int = 1000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_timesteps, (batch,), generator=g)
