"""Configuration of the image U-Net (:class:`diffusion_core.models.unet.UNet`): torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from ..validation import check_choice_field, check_int_field, checked_config_kwargs
from .mlp_config import MAX_CLASSES

BlockType = Literal["resnet", "convnext"]


@dataclass(frozen=True, kw_only=True)
class UNetConfig:
    """Configuration of :class:`UNet` (frozen; every field maps onto one UI control).

    Attributes:
        kind: always ``"unet"``; lets a JSON dict say which model it describes.
        channels: image channels C, 1 (grey) or 3 (RGB).
        image_size: H = W; divisible by ``2 ** (len(dim_mults) − 1)`` (one halving per level).
        dim: base width (channels after the stem, and the sinusoidal embedding width); even,
            divisible by ``groups``.
        dim_mults: width multiplier per resolution level, 1..5 levels, each 1..16.
        block: ``"resnet"`` (wide-ResNet block, time as scale-shift) or ``"convnext"``.
        groups: GroupNorm groups in ResNet blocks; must divide ``dim`` (so every level width).
        attn_heads, attn_dim_head: heads and per-head width of both attention kinds.
        use_linear_attention: linear attention at every down/up level.
        use_mid_attention: full softmax attention at the bottleneck.
        convnext_mult: ConvNeXt inner-width multiplier.
        level_blocks: blocks per resolution level on each path, 1 or 2 (the Annotated
            Diffusion layout has 2; 1 halves the convolutions at every level).
        num_classes: K, the number of classes of a class-conditional model (0..1000; 0 = an
            unconditional model, the default). K > 0 adds a learned vector per class plus a
            null class K ("no label") to the time embedding; the model is then called
            ``model(x_t, t, y)`` and ``y = None`` is the null class.
    """

    kind: Literal["unet"] = "unet"
    channels: int = 1
    image_size: int = 16
    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 2)
    block: BlockType = "resnet"
    groups: int = 8
    attn_heads: int = 4
    attn_dim_head: int = 32
    use_linear_attention: bool = True
    use_mid_attention: bool = True
    convnext_mult: int = 2
    level_blocks: int = 2
    num_classes: int = 0

    def __post_init__(self) -> None:
        check_choice_field("kind", self.kind, ("unet",))
        check_choice_field("channels", self.channels, (1, 3))
        check_int_field("dim", self.dim, 4, 1024)
        if self.dim % 2:
            raise ValueError(
                f"dim must be even (it is the sinusoidal embedding width), got {self.dim}"
            )
        mults = self.dim_mults
        if isinstance(mults, list):  # JSON gives lists; store the hashable tuple
            object.__setattr__(self, "dim_mults", mults := tuple(mults))
        if not isinstance(mults, tuple) or not 1 <= len(mults) <= 5:
            raise ValueError(f"dim_mults must be a tuple of 1..5 ints, got {mults!r}")
        for m in mults:
            check_int_field("dim_mults", m, 1, 16)
        factor = 2 ** (len(mults) - 1)
        check_int_field("image_size", self.image_size, 1, 512)
        if self.image_size % factor or self.image_size // factor < 1:
            raise ValueError(
                f"image_size must be divisible by 2 ** (len(dim_mults) - 1) = {factor}, "
                f"got {self.image_size}"
            )
        check_choice_field("block", self.block, ("resnet", "convnext"))
        check_int_field("groups", self.groups, 1, 1024)
        if self.dim % self.groups:  # then every level width dim * m is divisible too
            raise ValueError(
                f"groups must divide dim (GroupNorm in every block), got dim = {self.dim}, "
                f"groups = {self.groups}"
            )
        check_int_field("attn_heads", self.attn_heads, 1, 64)
        check_int_field("attn_dim_head", self.attn_dim_head, 1, 512)
        check_choice_field("use_linear_attention", self.use_linear_attention, (True, False))
        check_choice_field("use_mid_attention", self.use_mid_attention, (True, False))
        check_int_field("convnext_mult", self.convnext_mult, 1, 8)
        check_choice_field("level_blocks", self.level_blocks, (1, 2))
        check_int_field("num_classes", self.num_classes, 0, MAX_CLASSES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``kind`` included; ``dim_mults`` as a list)."""
        d = asdict(self)
        d["dim_mults"] = list(self.dim_mults)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys or a wrong ``kind`` raise ``ValueError``."""
        kwargs = checked_config_kwargs(cls.__name__, "unet", (f.name for f in fields(cls)), d)
        if isinstance(kwargs.get("dim_mults"), list):
            kwargs["dim_mults"] = tuple(kwargs["dim_mults"])
        return cls(**kwargs)
