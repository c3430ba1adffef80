"""Configuration of the 2D noise predictor (:class:`~diffusion_core.models.mlp.MLP2D`); no torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from ..validation import check_choice_field, check_int_field, checked_config_kwargs

MAX_CLASSES = 1000  # the most classes a conditional model may have (num_classes)

Activation = Literal["silu", "relu", "gelu", "leaky_relu"]
TimeEmbedding = Literal["sinusoidal", "onehot_linear", "scalar"]

ACTIVATIONS: tuple[str, ...] = ("silu", "relu", "gelu", "leaky_relu")
TIME_EMBEDDINGS: tuple[str, ...] = ("sinusoidal", "onehot_linear", "scalar")


@dataclass(frozen=True, kw_only=True)
class MLPConfig:
    """Configuration of :class:`MLP2D` (frozen; every field maps onto one UI control).

    Attributes:
        kind: always ``"mlp2d"``; lets a JSON dict say which model it describes.
        hidden: width of each hidden layer, 1..4096.
        depth: number of hidden layers, 1..16.
        activation: nonlinearity after each hidden layer.
        time_embedding: how t enters the network —
            ``"sinusoidal"`` (Transformer/DDPM encoding, ``embed_dim`` features),
            ``"onehot_linear"`` (``Linear(one_hot(t, T), 1)``: one learned scalar per t) or
            ``"scalar"`` (``t / T`` as one feature).
        embed_dim: width of the sinusoidal embedding (even, 4..1024; unused by the others).
        input_frequencies: Fourier features of x_t: number of angular frequencies per coordinate
            (0..256; 0 = the network sees the raw coordinates only).
        input_max_frequency: the largest of those frequencies (radians per unit of model
            coordinates, > 1 and ≤ 10000); they run geometrically from 1 up to it.
        num_timesteps: T; t must lie in 0..T−1 (1..100000).
        skip: add a learned linear map of x_t (2 → 2, zero at initialisation, the same for
            every t) to the output: a shortcut for the part of ε that is linear in x_t.
        num_classes: K, the number of classes of a class-conditional model (0..1000; 0 = an
            unconditional model, the default). K > 0 adds a learned vector per class plus a
            null class K ("no label") where the time embedding enters the network; the model is
            then called ``model(x_t, t, y)`` and ``y = None`` is the null class.
    """

    kind: Literal["mlp2d"] = "mlp2d"
    hidden: int = 128
    depth: int = 3
    activation: Activation = "silu"
    time_embedding: TimeEmbedding = "sinusoidal"
    embed_dim: int = 32
    num_timesteps: int = 1000
    input_frequencies: int = 0
    input_max_frequency: float = 32.0
    skip: bool = False
    num_classes: int = 0

    def __post_init__(self) -> None:
        check_choice_field("kind", self.kind, ("mlp2d",))
        check_int_field("hidden", self.hidden, 1, 4096)
        check_int_field("depth", self.depth, 1, 16)
        check_choice_field("activation", self.activation, ACTIVATIONS)
        check_choice_field("time_embedding", self.time_embedding, TIME_EMBEDDINGS)
        check_int_field("embed_dim", self.embed_dim, 4, 1024)
        if self.embed_dim % 2:
            raise ValueError(f"embed_dim must be even, got {self.embed_dim}")
        check_int_field("num_timesteps", self.num_timesteps, 1, 100_000)
        check_int_field("input_frequencies", self.input_frequencies, 0, 256)
        f = self.input_max_frequency
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 1.0 < f <= 10_000.0:
            raise ValueError(f"input_max_frequency must be a number in (1, 10000], got {f!r}")
        check_choice_field("skip", self.skip, (False, True))
        check_int_field("num_classes", self.num_classes, 0, MAX_CLASSES)

    @property
    def input_features(self) -> int:
        """Number of features x_t contributes: its 2 coordinates plus their Fourier features."""
        return 2 + 4 * self.input_frequencies

    @property
    def time_features(self) -> int:
        """Number of features the time embedding adds to the 2 input coordinates."""
        return self.embed_dim if self.time_embedding == "sinusoidal" else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``kind`` included)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MLPConfig:
        """Inverse of :meth:`to_dict`; unknown keys or a wrong ``kind`` raise ``ValueError``."""
        kwargs = checked_config_kwargs(cls.__name__, "mlp2d", (f.name for f in fields(cls)), d)
        return cls(**kwargs)
