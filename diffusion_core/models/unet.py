"""Image noise predictor: the U-Net of "The Annotated Diffusion Model" (after Phil Wang's code).

``UNet(x_t [B, C, H, W], t [B], y=None) -> pred_eps [B, C, H, W]`` with t ∈ {0, …, T−1}
(int64). The sinusoidal time embedding needs no T, so the network knows nothing of the schedule.

Layout (L = ``len(dim_mults)`` levels, ``dims = [dim, dim·m_0, …, dim·m_{L−1}]``)::

    t ─ sinusoidal(dim) ─ Linear(dim, 4·dim) ─ GELU ─ Linear(4·dim, 4·dim) ─> temb (every block)
    x ─ conv7×7 → dim
      down level i (dims[i] → dims[i+1]):  block, [block], [Residual(PreNorm(LinearAttention))]
                                           ── skip_i ──, Downsample (not at the last level)
      middle:                              block, [Residual(PreNorm(Attention))], block
      up level i (reversed):               concat skip_i, block (2·dims[i+1] → dims[i]), [block],
                                           [Residual(PreNorm(LinearAttention))],
                                           Upsample (not at level 0)
      block(dim, dim) ─ conv1×1 → C

A class-conditional U-Net (``num_classes = K > 0``) adds a learned vector per class to temb
(``temb = time_mlp(t) + class_embed(y)``, K + 1 rows: row K is the null class "no label", used
when ``y`` is None; zero at initialisation), as in Ho & Salimans' classifier-free guidance and
diffusers' ``class_embedding``. With K = 0 (the default) the network is exactly the
unconditional one.

The second block of each level ([block]) is there when ``config.level_blocks == 2`` (the
Annotated Diffusion layout); ``level_blocks = 1`` keeps one per level and path.

Blocks are ``"resnet"`` (conv3×3 → GroupNorm → scale-shift by time → SiLU, twice, + residual)
or ``"convnext"`` (depthwise 7×7, + time, GroupNorm(1) → conv3×3 → GELU → GroupNorm(1) →
conv3×3, + residual). Each block maps the time embedding through its own
``Sequential(act, Linear)``; the activation is the same for every block, so the U-Net computes
it once and the blocks apply only their ``Linear`` (``mlp[1]``). Downsample is a pixel-unshuffle
(space-to-depth) + 1×1 conv (run as the equal stride-2 2×2 conv), Upsample is nearest ×2 +
conv3×3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .embeddings import ClassEmbedding, SinusoidalEmbedding, check_timesteps
from .unet_config import UNetConfig

__all__ = ["UNet", "UNetConfig"]

# --------------------------------------------------------------------------------------------
# Building blocks. Shapes: x [B, c, h, w]; temb_act [B, 4·dim], the time embedding after the
# block type's activation (SiLU for ResNet blocks, GELU for ConvNeXt), computed once per forward
# pass by UNet.forward.


def _is_channels_last(x: torch.Tensor) -> bool:
    """True when ``x`` is stored ``[B, h, w, c]`` (and not also plain contiguous, as c = 1 is)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _cl(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory layout (a no-op when it already is).

    The U-Net keeps its activations channels-last: oneDNN's 3×3 and depthwise convolutions run
    faster that way on CPU (training a ConvNeXt U-Net ~25 % faster, the ResNet one ~5 %).
    Attention produces standard layout, so its output passes through here.
    """
    return x.contiguous(memory_format=torch.channels_last)


class Conv1x1(nn.Conv2d):
    """A 1×1 ``nn.Conv2d`` (same parameters and state-dict keys) computed as one batched matmul.

    On CPU, oneDNN runs NCHW 1×1 convolutions several times slower than the equivalent
    ``[c_out, c_in] @ [B, c_in, h·w]`` product (e.g. 32 → 384 channels at 16×16: ~3.7 ms vs
    ~0.3 ms at batch 16); ``torch.matmul`` with a 2-D weight folds into a transposed ``mm`` with
    copies, so the weight is broadcast over the batch for ``bmm`` instead.
    """

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True) -> None:
        super().__init__(dim_in, dim_out, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if _is_channels_last(x):  # [B, h, w, c] in memory: a plain Linear over c
            out = F.linear(x.permute(0, 2, 3, 1), self.weight.view(self.out_channels, c), self.bias)
            return out.permute(0, 3, 1, 2)
        weight = self.weight.view(1, self.out_channels, c).expand(b, -1, -1)
        out = torch.bmm(weight, x.reshape(b, c, h * w))  # [B, c_out, h·w]
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1)
        return out.view(b, self.out_channels, h, w)


class Residual(nn.Module):
    """``x + fn(x)``."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fn(x)


class PreNorm(nn.Module):
    """``fn(GroupNorm(1, dim)(x))`` (layer norm over channels and pixels)."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class ConvNormAct(nn.Module):
    """conv3×3 → GroupNorm → optional ``x·(scale + 1) + shift`` → SiLU; ``c_in → c_out``."""

    def __init__(self, dim_in: int, dim_out: int, groups: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, dim_out)

    def forward(
        self, x: torch.Tensor, scale_shift: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift  # each [B, c_out, 1, 1]
            x = torch.addcmul(shift, x, scale + 1)
        return F.silu(x)


class ResnetBlock(nn.Module):
    """Wide-ResNet block with time as a per-channel scale and shift: ``[B, c_in] → [B, c_out]``.

    ``forward(x, temb_act)`` takes ``silu(temb)`` (``self.mlp[0]`` is that SiLU, kept so the
    state-dict keys stay ``mlp.1.*``).
    """

    def __init__(self, dim_in: int, dim_out: int, *, time_dim: int, groups: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, dim_out * 2))
        self.block1 = ConvNormAct(dim_in, dim_out, groups)
        self.block2 = ConvNormAct(dim_out, dim_out, groups)
        self.res_conv = Conv1x1(dim_in, dim_out) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb_act: torch.Tensor) -> torch.Tensor:
        scale, shift = rearrange(self.mlp[1](temb_act), "b c -> b c 1 1").chunk(2, dim=1)
        h = self.block1(x, (scale, shift))
        h = self.block2(h)
        return h + self.res_conv(x)


class ConvNextBlock(nn.Module):
    """ConvNeXt block (Liu et al., 2022) with time added after the depthwise conv.

    ``forward(x, temb_act)`` takes ``gelu(temb)`` (``self.mlp[0]`` is that GELU).
    """

    def __init__(
        self, dim_in: int, dim_out: int, *, time_dim: int, mult: int = 2, norm: bool = True
    ) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(time_dim, dim_in))
        self.ds_conv = nn.Conv2d(dim_in, dim_in, 7, padding=3, groups=dim_in)
        self.net = nn.Sequential(
            nn.GroupNorm(1, dim_in) if norm else nn.Identity(),
            nn.Conv2d(dim_in, dim_out * mult, 3, padding=1),
            nn.GELU(),
            nn.GroupNorm(1, dim_out * mult),
            nn.Conv2d(dim_out * mult, dim_out, 3, padding=1),
        )
        self.res_conv = Conv1x1(dim_in, dim_out) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb_act: torch.Tensor) -> torch.Tensor:
        h = self.ds_conv(x) + rearrange(self.mlp[1](temb_act), "b c -> b c 1 1")
        return self.net(h) + self.res_conv(x)


class QKVProjection(Conv1x1):
    """The q, k, v 1×1 projections in one parameter: ``[B, c, h, w] → 3 × [B, heads, d, h·w]``.

    Three matmuls on the weight's thirds rather than one that is then split: on CPU the split's
    backward (a concatenation of three non-contiguous gradients) costs more than the matmuls.
    """

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__(dim, heads * dim_head * 3, bias=False)
        self.heads = heads

    def forward(  # type: ignore[override]  (returns three tensors, not one)
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        x = x.reshape(b, c, h * w)
        q, k, v = (
            torch.bmm(part.view(1, -1, c).expand(b, -1, -1), x).view(b, self.heads, -1, h * w)
            for part in self.weight.chunk(3, dim=0)
        )
        return q, k, v


class LinearAttention(nn.Module):
    """Linear attention (Shen et al., 2018): cost linear in the number of pixels n = h·w.

    Per head, q is softmaxed over its d features and k over the n pixels;
    ``context = k vᵀ`` is ``[d, d]`` and ``out = contextᵀ q`` is ``[d, n]``.
    ``[B, c, h, w] → [B, c, h, w]``.
    """

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32) -> None:
        super().__init__()
        self.scale = dim_head**-0.5
        self.to_qkv = QKVProjection(dim, heads, dim_head)
        self.to_out = nn.Sequential(Conv1x1(heads * dim_head, dim), nn.GroupNorm(1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = self.to_qkv(x)  # each [B, heads, d, n]
        q = q.softmax(dim=-2)
        k = k.softmax(dim=-1)
        # q·scale folded into the small [d, e] context
        context = torch.matmul(k, v.transpose(-1, -2)) * self.scale  # [B, heads, d, e]
        out = torch.matmul(context.transpose(-1, -2), q)  # [B, heads, e, n]
        return self.to_out(out.view(b, -1, h, w))  # heads·e channels, "b h e (x y) -> b (h e) x y"


class Attention(nn.Module):
    """Multi-head softmax self-attention over the pixels: ``[B, c, h, w] → [B, c, h, w]``."""

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32) -> None:
        super().__init__()
        self.to_qkv = QKVProjection(dim, heads, dim_head)
        self.to_out = Conv1x1(heads * dim_head, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        q, k, v = (rearrange(p, "b h d n -> b h n d") for p in self.to_qkv(x))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / √d) v: [B, heads, n, d]
        return self.to_out(rearrange(out, "b h (x y) d -> b (h d) x y", x=h, y=w))


class Downsample(nn.Module):
    """Halve H and W: space-to-depth ``[B, c, 2h, 2w] → [B, 4c, h, w]`` then conv1×1 → c.

    Computed as the equal 2×2 convolution with stride 2: the 1×1 weight over the space-to-depth
    channels ``(c p1 p2)`` *is* a ``[c_out, c, 2, 2]`` kernel, so one oneDNN call replaces the
    rearrangement copy and the matmul (same parameter, same state-dict key ``conv.weight``).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = Conv1x1(dim * 4, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        kernel = self.conv.weight.view(self.conv.out_channels, c, 2, 2)  # [c_out, (c p1 p2)]
        return F.conv2d(x, kernel, self.conv.bias, stride=2)


class Upsample(nn.Module):
    """Double H and W: nearest ×2 then conv3×3, ``[B, c, h, w] → [B, c, 2h, 2w]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level: one or two blocks, optional linear attention, optional resampling."""

    def __init__(
        self,
        block1: nn.Module,
        block2: nn.Module | None,
        attn: nn.Module,
        resample: nn.Module,
    ) -> None:
        super().__init__()
        self.block1 = block1
        self.block2 = block2
        self.attn = attn
        self.resample = resample


# --------------------------------------------------------------------------------------------


class UNet(nn.Module):
    """U-Net noise predictor: ``model(x_t, t, y=None) -> pred_eps``.

    Shapes: ``x_t: [B, C, H, W]`` float with ``C = config.channels`` and
    ``H = W = config.image_size``; ``t: [B]`` int64 with t ∈ {0, …, T−1} (any T: the sinusoidal
    embedding needs none, so only ``t >= 0`` is checked); ``y: [B]`` int64 class labels
    (conditional models only) → ``pred_eps: [B, C, H, W]``. ``null_class`` is K for a
    conditional model, else ``None``.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        config = UNetConfig() if config is None else config
        if not isinstance(config, UNetConfig):
            raise TypeError(f"config must be a UNetConfig, got {type(config).__name__}")
        self.config = config
        dim = config.dim
        time_dim = dim * 4
        dims = [dim, *(dim * m for m in config.dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:], strict=True))
        num_levels = len(in_out)

        def block(d_in: int, d_out: int) -> nn.Module:
            if config.block == "convnext":
                return ConvNextBlock(d_in, d_out, time_dim=time_dim, mult=config.convnext_mult)
            return ResnetBlock(d_in, d_out, time_dim=time_dim, groups=config.groups)

        def linear_attn(d: int) -> nn.Module:
            if not config.use_linear_attention:
                return nn.Identity()
            attn = LinearAttention(d, config.attn_heads, config.attn_dim_head)
            return Residual(PreNorm(d, attn))

        self.time_mlp = nn.Sequential(
            SinusoidalEmbedding(dim),
            nn.Linear(dim, time_dim),
            nn.GELU(),
            nn.Linear(time_dim, time_dim),
        )
        self.init_conv = nn.Conv2d(config.channels, dim, 7, padding=3)

        self.downs = nn.ModuleList(
            _Level(
                block(d_in, d_out),
                block(d_out, d_out) if config.level_blocks == 2 else None,
                linear_attn(d_out),
                Downsample(d_out) if i < num_levels - 1 else nn.Identity(),
            )
            for i, (d_in, d_out) in enumerate(in_out)
        )

        mid = dims[-1]
        self.mid_block1 = block(mid, mid)
        self.mid_attn = (
            Residual(PreNorm(mid, Attention(mid, config.attn_heads, config.attn_dim_head)))
            if config.use_mid_attention
            else nn.Identity()
        )
        self.mid_block2 = block(mid, mid)

        # Level i of the up path takes dims[i+1] channels (from below) + dims[i+1] (skip_i).
        self.ups = nn.ModuleList(
            _Level(
                block(d_out * 2, d_in),
                block(d_in, d_in) if config.level_blocks == 2 else None,
                linear_attn(d_in),
                Upsample(d_in) if i > 0 else nn.Identity(),
            )
            for i, (d_in, d_out) in reversed(list(enumerate(in_out)))
        )

        self.final_block = block(dim, dim)
        self.final_conv = Conv1x1(dim, config.channels)
        # Built after every other layer, and only for K > 0, so an unconditional U-Net draws the
        # same initial weights from the global RNG as before class labels existed.
        self.class_embed: ClassEmbedding | None = None
        if config.num_classes:
            self.class_embed = ClassEmbedding(config.num_classes, time_dim)
        # Convolution weights channels-last too: with channels-last activations oneDNN otherwise
        # reorders every 3×3 weight on every call (~10 % of a forward pass at 8×8, batch 16).
        # Saving makes them contiguous again (checkpoints.save_checkpoint); loading copies into
        # these tensors, so the layout survives a reload.
        self.to(memory_format=torch.channels_last)

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
            ``pred_eps``: ``[B, C, H, W]``.
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
        check_timesteps(t, x_t.shape[0], None)
        if y is not None and self.class_embed is None:
            raise ValueError("y was given, but this model is unconditional (num_classes = 0)")

        temb = self.time_mlp(t).to(x_t.dtype)  # [B, 4·dim]
        if self.class_embed is not None:  # + the class's learned vector (row K: no label)
            temb = temb + self.class_embed(y, x_t.shape[0]).to(x_t.dtype)
        temb = F.gelu(temb) if cfg.block == "convnext" else F.silu(temb)  # every block's mlp[0]
        x = _cl(self.init_conv(x_t))
        skips: list[torch.Tensor] = []
        for level in self.downs:
            x = level.block1(x, temb)
            if level.block2 is not None:
                x = level.block2(x, temb)
            x = _cl(level.attn(x))
            skips.append(x)
            x = _cl(level.resample(x))

        x = self.mid_block1(x, temb)
        x = _cl(self.mid_attn(x))
        x = self.mid_block2(x, temb)

        for level in self.ups:
            x = torch.cat((x, skips.pop()), dim=1)
            x = level.block1(x, temb)
            if level.block2 is not None:
                x = level.block2(x, temb)
            x = _cl(level.attn(x))
            x = _cl(level.resample(x))

        return self.final_conv(self.final_block(x, temb)).contiguous()  # standard layout out
