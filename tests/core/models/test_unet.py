"""UNet: shapes, attention, level blocks, channels-last, validation, gradients."""

from __future__ import annotations

import re

import pytest
import torch

from diffusion_core.models import (
    UNet,
    UNetConfig,
    count_parameters,
)
from diffusion_core.models.unet import ConvNextBlock, Downsample, ResnetBlock
from tests.core.models.common import small_unet, timesteps


@pytest.mark.parametrize("block", ["resnet", "convnext"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    ("image_size", "dim_mults"), [(8, (1, 2)), (16, (1, 2, 2)), (32, (1, 2, 2))]
)
def test_unet_output_shape(
    block: str, channels: int, image_size: int, dim_mults: tuple[int, ...]
) -> None:
    cfg = small_unet(block=block, channels=channels, image_size=image_size, dim_mults=dim_mults)
    model = UNet(cfg)
    x = torch.randn(2, channels, image_size, image_size)
    out = model(x, timesteps(2))
    assert out.shape == x.shape
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("linear", "mid"), [(True, True), (False, True), (True, False), (False, False)]
)
def test_unet_attention_switches(linear: bool, mid: bool) -> None:
    cfg = small_unet(use_linear_attention=linear, use_mid_attention=mid)
    model = UNet(cfg)
    names = {type(m).__name__ for m in model.modules()}
    assert ("LinearAttention" in names) == linear
    assert ("Attention" in names) == mid
    x = torch.randn(3, 1, 8, 8)
    assert model(x, timesteps(3)).shape == x.shape


@pytest.mark.parametrize("block", ["resnet", "convnext"])
def test_unet_level_blocks_one_block_per_level_and_path(block: str) -> None:
    two = UNet(small_unet(block=block, dim_mults=(1, 2)))
    one = UNet(small_unet(block=block, dim_mults=(1, 2), level_blocks=1))
    block_type = ConvNextBlock if block == "convnext" else ResnetBlock

    def n_blocks(m: UNet) -> int:
        return sum(isinstance(b, block_type) for b in m.modules())

    # 2 levels × 2 paths × {2, 1} blocks, + 2 middle blocks + the final block
    assert (n_blocks(two), n_blocks(one)) == (11, 7)
    assert all(level.block2 is None for level in (*one.downs, *one.ups))
    level_block2 = re.compile(r"^(downs|ups)\.\d+\.block2\.")
    assert not any(level_block2.match(k) for k in one.state_dict())
    assert any(level_block2.match(k) for k in two.state_dict())
    # the blocks left are the same modules: each remaining key has the same shape as before
    two_shapes = {k: v.shape for k, v in two.state_dict().items()}
    assert all(two_shapes[k] == v.shape for k, v in one.state_dict().items())
    x = torch.randn(2, 1, 8, 8)
    out = one(x, timesteps(2))
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in one.parameters())  # every block is used


def test_downsample_is_space_to_depth_then_the_1x1_conv() -> None:
    torch.manual_seed(0)
    down = Downsample(6)
    x = torch.randn(2, 6, 8, 4)
    # [B, c, 2h, 2w] → [B, (c p1 p2), h, w], then the 1×1 conv over those 4c channels
    s2d = x.view(2, 6, 4, 2, 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(2, 24, 4, 2)
    ref = torch.einsum("oi,bihw->bohw", down.conv.weight[:, :, 0, 0], s2d)
    ref = ref + down.conv.bias.view(1, -1, 1, 1)
    with torch.no_grad():
        out = down(x)
        out_cl = down(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == (2, 6, 4, 2)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_cl, ref, atol=1e-5, rtol=1e-5)


def test_unet_weights_are_channels_last_and_save_contiguous(tmp_path) -> None:
    from diffusion_core.checkpoints import load_checkpoint, save_checkpoint
    from diffusion_core.schedule import ScheduleConfig

    torch.manual_seed(0)
    model = UNet(small_unet(channels=3)).eval()
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert any(not w.is_contiguous() for w in convs)  # 3×3 kernels really are reordered
    x, t = torch.randn(2, 3, 8, 8), timesteps(2)
    with torch.no_grad():
        before = model(x, t)
    save_checkpoint(tmp_path / "ck", model, model.config, ScheduleConfig(), dataset={"name": "t"})
    ck = load_checkpoint(tmp_path / "ck")
    reloaded = [m.weight for m in ck.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in reloaded)
    with torch.no_grad():
        torch.testing.assert_close(ck.model(x, t), before)


def test_unet_default_config_shape_and_size() -> None:
    model = UNet(UNetConfig())
    x = torch.randn(2, 1, 16, 16)
    assert model(x, timesteps(2)).shape == x.shape
    assert 500_000 < count_parameters(model) < 3_000_000


@pytest.mark.parametrize("block", ["resnet", "convnext"])
def test_unet_output_depends_on_t(block: str) -> None:
    torch.manual_seed(0)
    model = UNet(small_unet(block=block))
    x = torch.randn(1, 1, 8, 8).expand(3, 1, 8, 8)
    out = model(x, torch.tensor([0, 1, 999]))
    assert not torch.allclose(out[0], out[1], atol=1e-6)
    assert not torch.allclose(out[0], out[2], atol=1e-6)


def test_unet_output_has_standard_layout_for_any_input_layout() -> None:
    model = UNet(small_unet(channels=3)).eval()
    x, t = torch.randn(2, 3, 8, 8), timesteps(2)
    out = model(x, t)
    assert out.is_contiguous()
    out_cl = model(x.contiguous(memory_format=torch.channels_last), t)
    assert out_cl.is_contiguous()
    torch.testing.assert_close(out_cl, out, rtol=1e-4, atol=1e-5)


def test_unet_samples_are_independent_in_a_batch() -> None:
    # GroupNorm and attention must never mix samples: row i depends only on (x_i, t_i)
    torch.manual_seed(0)
    model = UNet(small_unet()).eval()
    x, t = torch.randn(4, 1, 8, 8), timesteps(4)
    full = model(x, t)
    torch.testing.assert_close(model(x[2:3], t[2:3]), full[2:3], rtol=1e-4, atol=1e-5)


def test_unet_attention_matches_reference_math() -> None:
    from diffusion_core.models.unet import Attention, LinearAttention

    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 4)
    heads, d = 2, 4

    lin = LinearAttention(8, heads, d)
    qkv = torch.nn.functional.conv2d(x, lin.to_qkv.weight).reshape(2, 3, heads, d, 16)
    q, k, v = qkv.unbind(1)
    q = q.softmax(-2) * d**-0.5
    k = k.softmax(-1)
    out = torch.einsum("bhde,bhdn->bhen", torch.einsum("bhdn,bhen->bhde", k, v), q)
    ref = lin.to_out(out.reshape(2, heads * d, 4, 4))
    torch.testing.assert_close(lin(x), ref, rtol=1e-4, atol=1e-5)

    full = Attention(8, heads, d)
    qkv = torch.nn.functional.conv2d(x, full.to_qkv.weight).reshape(2, 3, heads, d, 16)
    q, k, v = qkv.unbind(1)
    attn = (torch.einsum("bhdi,bhdj->bhij", q, k) * d**-0.5).softmax(-1)
    out = torch.einsum("bhij,bhdj->bhdi", attn, v).reshape(2, heads * d, 4, 4)
    ref = full.to_out(out)
    torch.testing.assert_close(full(x), ref, rtol=1e-4, atol=1e-5)


def test_conv1x1_matches_conv2d() -> None:
    from diffusion_core.models.unet import Conv1x1

    torch.manual_seed(0)
    conv = Conv1x1(5, 7)
    x = torch.randn(3, 5, 4, 6)
    ref = torch.nn.functional.conv2d(x, conv.weight, conv.bias)
    torch.testing.assert_close(conv(x), ref)
    x_cl = x.contiguous(memory_format=torch.channels_last)  # the [B, h, w, c] path
    torch.testing.assert_close(conv(x_cl), ref)
    assert set(conv.state_dict()) == {"weight", "bias"}
    assert conv.weight.shape == (7, 5, 1, 1)


@pytest.mark.parametrize(
    ("shape", "t", "match"),
    [
        ((2, 3, 8, 8), None, "x_t"),  # wrong channel count
        ((2, 1, 16, 16), None, "x_t"),  # wrong size
        ((2, 1, 8), None, "x_t"),
        ((2, 1, 8, 8), torch.zeros(3, dtype=torch.long), r"t must have shape \[B\]"),
        ((2, 1, 8, 8), torch.zeros(2), "integer"),
        ((2, 1, 8, 8), torch.tensor([0, -5]), ">= 0"),
    ],
)
def test_unet_rejects_bad_inputs(
    shape: tuple[int, ...], t: torch.Tensor | None, match: str
) -> None:
    model = UNet(small_unet())
    t = timesteps(shape[0]) if t is None else t
    with pytest.raises(ValueError, match=match):
        model(torch.randn(*shape), t)


@pytest.mark.parametrize("block", ["resnet", "convnext"])
def test_unet_gradient_reaches_every_parameter(block: str) -> None:
    torch.manual_seed(0)
    model = UNet(small_unet(block=block))
    model(torch.randn(2, 1, 8, 8), timesteps(2)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name

