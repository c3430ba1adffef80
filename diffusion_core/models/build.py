"""Build a fresh network from its config, and count parameters."""

from __future__ import annotations

from torch import nn

from .config import ModelConfig
from .mlp import MLP2D, MLPConfig
from .pixel_mlp import PixelMLP, PixelMLPConfig
from .unet import UNet, UNetConfig


def build_model(config: ModelConfig) -> nn.Module:
    """``MLPConfig → MLP2D``, ``UNetConfig → UNet``, ``PixelMLPConfig → PixelMLP`` (fresh
    PyTorch-default initialisation)."""
    if isinstance(config, MLPConfig):
        return MLP2D(config)
    if isinstance(config, UNetConfig):
        return UNet(config)
    if isinstance(config, PixelMLPConfig):
        return PixelMLP(config)
    raise TypeError("config must be an MLPConfig, a UNetConfig or a PixelMLPConfig, got "
                    f"{type(config).__name__}")


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
