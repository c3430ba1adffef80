"""Noise predictors ``model(x_t, t) -> pred_eps`` and their frozen configs.

``MLP2D`` takes ``x_t: [B, 2]``, ``UNet`` and ``PixelMLP`` take ``x_t: [B, C, H, W]``; all take
``t: [B]`` int64 with t ∈ {0, …, T−1} and return a tensor of ``x_t``'s shape. None knows the
noise schedule. Each network's config sits beside it (``mlp_config``, ``unet_config``,
``pixel_mlp_config``: torch-free); names load on first use, so the configs import without torch.
"""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "ACTIVATIONS": ".mlp_config",
    "TIME_EMBEDDINGS": ".mlp_config",
    "MLPConfig": ".mlp_config",
    "UNetConfig": ".unet_config",
    "PixelMLPConfig": ".pixel_mlp_config",
    "ModelConfig": ".config",
    "config_from_dict": ".config",
    "MLP2D": ".mlp",
    "UNet": ".unet",
    "PixelMLP": ".pixel_mlp",
    "build_model": ".build",
    "count_parameters": ".build",
})
