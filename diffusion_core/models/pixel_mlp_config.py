"""Configuration of the pixel MLP (:class:`~diffusion_core.models.pixel_mlp.PixelMLP`); no torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from ..validation import check_choice_field, check_int_field, checked_config_kwargs
from .mlp_config import MAX_CLASSES

PixelTimeEmbedding = Literal["scalar", "sinusoidal"]
PIXEL_TIME_EMBEDDINGS: tuple[str, ...] = ("scalar", "sinusoidal")


@dataclass(frozen=True, kw_only=True)
class PixelMLPConfig:
    """Configuration of :class:`PixelMLP` (frozen; every field maps onto one UI control).

    The colour-gradient toy's network: flattened pixels + t → Linear → ReLU → Linear → pixels.

    Attributes:
        kind: always ``"pixel_mlp"``; lets a JSON dict say which model it describes.
        channels: image channels C, 1 (grey) or 3 (RGB).
        image_size: H = W, 2..64 (the input layer has C·H·W + time features inputs).
        hidden: width of the one hidden layer (the toy's ``d_model``), 1..8192.
        time_embedding: how t enters — ``"scalar"`` (``t / T`` as one extra input, the toy's
            choice) or ``"sinusoidal"`` (the Transformer/DDPM encoding, ``embed_dim`` inputs).
        embed_dim: width of the sinusoidal embedding (even, 4..1024; unused by ``"scalar"``).
        num_timesteps: T; t must lie in 0..T−1 (1..100000); the scalar embedding divides by it.
        num_classes: K, the number of classes of a class-conditional model (0..1000; 0 = an
            unconditional model, the default). K > 0 adds a learned vector per class plus a
            null class K ("no label") to the hidden layer's pre-activation; the model is then
            called ``model(x_t, t, y)`` and ``y = None`` is the null class.
    """

    kind: Literal["pixel_mlp"] = "pixel_mlp"
    channels: int = 1
    image_size: int = 8
    hidden: int = 128
    time_embedding: PixelTimeEmbedding = "scalar"
    embed_dim: int = 32
    num_timesteps: int = 1000
    num_classes: int = 0

    def __post_init__(self) -> None:
        check_choice_field("kind", self.kind, ("pixel_mlp",))
        check_choice_field("channels", self.channels, (1, 3))
        check_int_field("image_size", self.image_size, 2, 64)
        check_int_field("hidden", self.hidden, 1, 8192)
        check_choice_field("time_embedding", self.time_embedding, PIXEL_TIME_EMBEDDINGS)
        check_int_field("embed_dim", self.embed_dim, 4, 1024)
        if self.embed_dim % 2:
            raise ValueError(f"embed_dim must be even, got {self.embed_dim}")
        check_int_field("num_timesteps", self.num_timesteps, 1, 100_000)
        check_int_field("num_classes", self.num_classes, 0, MAX_CLASSES)

    @property
    def pixels(self) -> int:
        """Number of values in one image, C·H·W (the network's input and output width)."""
        return self.channels * self.image_size * self.image_size

    @property
    def time_features(self) -> int:
        """Number of inputs the time embedding adds to the flattened pixels."""
        return self.embed_dim if self.time_embedding == "sinusoidal" else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``kind`` included)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PixelMLPConfig:
        """Inverse of :meth:`to_dict`; unknown keys or a wrong ``kind`` raise ``ValueError``."""
        kwargs = checked_config_kwargs(cls.__name__, "pixel_mlp", (f.name for f in fields(cls)),
                                       d)
        return cls(**kwargs)
