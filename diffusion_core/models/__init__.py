"""Noise predictors ``model(x_t, t) -> pred_eps`` and their frozen configs.

``MLP2D`` takes ``x_t: [B, 2]``, ``UNet`` takes ``x_t: [B, C, H, W]``; both take ``t: [B]`` int64
with t ∈ {0, …, T−1} and return a tensor of ``x_t``'s shape. Neither knows the noise schedule.
"""

from __future__ import annotations

from torch import nn

from ..configs import ModelConfig, config_from_dict
from .mlp import MLP2D, MLPConfig
from .unet import UNet, UNetConfig

__all__ = [
    "MLP2D",
    "MLPConfig",
    "ModelConfig",
    "UNet",
    "UNetConfig",
    "build_model",
    "config_from_dict",
    "count_parameters",
]

def build_model(config: ModelConfig) -> nn.Module:
    """``MLPConfig → MLP2D``, ``UNetConfig → UNet`` (fresh PyTorch-default initialisation)."""
    if isinstance(config, MLPConfig):
        return MLP2D(config)
    if isinstance(config, UNetConfig):
        return UNet(config)
    raise TypeError(f"config must be an MLPConfig or a UNetConfig, got {type(config).__name__}")


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
