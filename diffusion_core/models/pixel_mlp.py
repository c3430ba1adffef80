"""The colour-gradient toy's pixel MLP: ``PixelMLP(x_t [B, C, H, W], t [B], y=None) -> pred_eps``.

Index convention: t ∈ {0, …, T−1}, int64 ``[B]``; ``num_timesteps`` is T. The network knows
nothing else of the noise schedule.

Architecture (the toy's ``ToyDiffuser``: "a simple two-layer MLP")::

    x_t ─ flatten → [B, C·H·W] ─┐
    t ─ emb(t) ─────────────────┴ concat → Linear(hidden) → ReLU → Linear(C·H·W) → [B, C, H, W]

``emb(t)`` is ``t / T`` (one feature, the toy's choice) or the sinusoidal encoding. There is no
convolution and no weight sharing across pixels: every pixel's ε̂ is a function of all pixels, so
it learns data whose pixels move together (gradients, small digits) in few steps, but it has no
notion of locality and its capacity is one hidden layer. It is the baseline beside the U-Net in
``bench/image_time_to_quality.py``.

Class labels (``num_classes = K > 0``): ``y [B]`` int64 in 0..K−1, or K / ``None`` for the null
class (the unconditional model of classifier-free guidance). A learned vector e_y (``hidden``
wide, zero at initialisation) is added to the hidden layer's pre-activation, as in
:class:`~diffusion_core.models.mlp.MLP2D`.
"""

from __future__ import annotations

import torch
from torch import nn

from .embeddings import ClassEmbedding, ScalarEmbedding, SinusoidalEmbedding, check_timesteps
from .pixel_mlp_config import PixelMLPConfig

__all__ = ["PixelMLP", "PixelMLPConfig"]


class PixelMLP(nn.Module):
    """Noise predictor on flattened pixels: ``model(x_t, t, y=None) -> pred_eps``.

    Shapes: ``x_t: [B, C, H, W]`` float with ``C = config.channels`` and
    ``H = W = config.image_size``; ``t: [B]`` int64 with t ∈ {0, …, T−1}
    (``T = config.num_timesteps``); ``y: [B]`` int64 class labels (conditional models only)
    → ``pred_eps: [B, C, H, W]``. ``null_class`` is K for a conditional model, else ``None``.
    """

    def __init__(self, config: PixelMLPConfig | None = None) -> None:
        super().__init__()
        config = PixelMLPConfig() if config is None else config
        if not isinstance(config, PixelMLPConfig):
            raise TypeError(f"config must be a PixelMLPConfig, got {type(config).__name__}")
        self.config = config
        self.time_embed: nn.Module
        if config.time_embedding == "sinusoidal":
            self.time_embed = SinusoidalEmbedding(config.embed_dim)
        else:
            self.time_embed = ScalarEmbedding(config.num_timesteps)
        self.hidden = nn.Linear(config.pixels + config.time_features, config.hidden)
        self.out = nn.Linear(config.hidden, config.pixels)
        # Built last, and only for K > 0, so an unconditional network draws the same initial
        # weights from the global RNG whatever K would have been.
        self.class_embed: ClassEmbedding | None = None
        if config.num_classes:
            self.class_embed = ClassEmbedding(config.num_classes, config.hidden)

    @property
    def null_class(self) -> int | None:
        """The label meaning "no class" (K = ``config.num_classes``); ``None`` if unconditional."""
        return None if self.class_embed is None else self.class_embed.null_class

    def forward(self, x_t: torch.Tensor, t: torch.Tensor,
                y: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the noise in ``x_t``.

        Args:
            x_t: ``[B, C, H, W]`` float noisy images (C = channels, H = W = image_size).
            t: ``[B]`` int64 timesteps, t ∈ {0, …, T−1}.
            y: ``[B]`` int64 class labels in 0..K−1, K meaning "no label"; ``None`` = no label
                for every sample. Only a conditional model (``num_classes = K > 0``) takes it.

        Returns:
            ``pred_eps``: ``[B, C, H, W]``, same dtype as the parameters.
        """
        cfg = self.config
        expected = [cfg.channels, cfg.image_size, cfg.image_size]
        if not isinstance(x_t, torch.Tensor) or x_t.ndim != 4 or list(x_t.shape[1:]) != expected:
            shape = list(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise ValueError(
                f"x_t must have shape [B, {', '.join(map(str, expected))}], got {shape}"
            )
        if not x_t.dtype.is_floating_point:
            raise ValueError(f"x_t must be a float tensor, got dtype {x_t.dtype}")
        b = x_t.shape[0]
        check_timesteps(t, b, cfg.num_timesteps)
        if y is not None and self.class_embed is None:
            raise ValueError("y was given, but this model is unconditional (num_classes = 0)")
        emb = self.time_embed(t).to(x_t.dtype)  # [B, 1] or [B, embed_dim]
        h = self.hidden(torch.cat((x_t.reshape(b, cfg.pixels), emb), dim=-1))  # [B, hidden]
        if self.class_embed is not None:
            h = h + self.class_embed(y, b).to(x_t.dtype)
        return self.out(torch.relu(h)).view(b, *expected)
