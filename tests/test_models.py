"""Tests for diffusion_core.models: shapes, time conditioning, configs, validation, gradients."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from diffusion_core.models import (
    MLP2D,
    MLPConfig,
    UNet,
    UNetConfig,
    build_model,
    config_from_dict,
    count_parameters,
)
from diffusion_core.models.embeddings import sinusoidal_embedding
from diffusion_core.models.unet import ConvNextBlock, Downsample, ResnetBlock

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


# ---------------------------------------------------------------------------------------------
# Sinusoidal embedding


def test_sinusoidal_embedding_at_t0_is_zeros_then_ones() -> None:
    emb = sinusoidal_embedding(torch.zeros(3, dtype=torch.long), 16)
    assert emb.shape == (3, 16)
    assert emb.dtype == torch.float32
    torch.testing.assert_close(emb[:, :8], torch.zeros(3, 8))
    torch.testing.assert_close(emb[:, 8:], torch.ones(3, 8))


def test_sinusoidal_embedding_known_values() -> None:
    # dim 4: frequencies 10000^(-0/1) = 1 and 10000^(-1/1) = 1e-4
    t = torch.tensor([1, 7])
    emb = sinusoidal_embedding(t, 4)
    expected = torch.tensor(
        [
            [math.sin(1.0), math.sin(1e-4), math.cos(1.0), math.cos(1e-4)],
            [math.sin(7.0), math.sin(7e-4), math.cos(7.0), math.cos(7e-4)],
        ]
    )
    torch.testing.assert_close(emb, expected)


def test_sinusoidal_embedding_distinguishes_neighbouring_steps() -> None:
    emb = sinusoidal_embedding(torch.arange(1000), 32)
    dists = (emb[1:] - emb[:-1]).norm(dim=1)
    assert dists.min() > 0.5  # the highest frequency (1 rad/step) separates t and t + 1


def test_sinusoidal_embedding_rejects_odd_dim() -> None:
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(torch.zeros(1, dtype=torch.long), 7)


# ---------------------------------------------------------------------------------------------
# MLP2D


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_mlp_output_shape(activation: str, time_embedding: str) -> None:
    cfg = MLPConfig(
        hidden=16, depth=2, activation=activation, time_embedding=time_embedding, num_timesteps=50
    )  # type: ignore[arg-type]
    model = MLP2D(cfg)
    for batch in (1, 7):
        x = torch.randn(batch, 2)
        out = model(x, timesteps(batch, 50))
        assert out.shape == (batch, 2)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_mlp_output_depends_on_t(time_embedding: str) -> None:
    torch.manual_seed(0)
    model = MLP2D(MLPConfig(hidden=32, depth=2, time_embedding=time_embedding, num_timesteps=100))
    if time_embedding == "onehot_linear":
        # PyTorch's default init gives every t its own random scalar; make sure of it anyway
        with torch.no_grad():
            model.time_embed.linear.weight.copy_(torch.linspace(-1, 1, 100)[None])
    x = torch.randn(1, 2).expand(4, 2)
    out = model(x, torch.tensor([0, 1, 50, 99]))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(out[i], out[j], atol=1e-6), (i, j)


def test_mlp_onehot_linear_matches_explicit_one_hot() -> None:
    torch.manual_seed(0)
    model = MLP2D(MLPConfig(time_embedding="onehot_linear", num_timesteps=20))
    t = torch.tensor([0, 3, 19])
    one_hot = torch.nn.functional.one_hot(t, 20).float()
    torch.testing.assert_close(model.time_embed(t), model.time_embed.linear(one_hot))


def test_mlp_scalar_embedding_is_t_over_T() -> None:
    model = MLP2D(MLPConfig(time_embedding="scalar", num_timesteps=50))
    torch.testing.assert_close(
        model.time_embed(torch.tensor([0, 25, 49])), torch.tensor([[0.0], [0.5], [0.98]])
    )


def test_mlp_skip_starts_at_zero_and_adds_a_linear_map_of_x_t() -> None:
    cfg = MLPConfig(hidden=32, depth=2, input_frequencies=4, num_timesteps=50)
    torch.manual_seed(0)
    plain = MLP2D(cfg)
    torch.manual_seed(0)
    skipped = MLP2D(MLPConfig(**{**cfg.to_dict(), "skip": True}))
    x, t = torch.randn(16, 2), timesteps(16, 50)
    torch.testing.assert_close(skipped(x, t), plain(x, t))  # zero-initialised shortcut
    assert plain.skip is None and "skip.weight" not in plain.state_dict()
    with torch.no_grad():
        skipped.skip.weight.copy_(torch.tensor([[2.0, 0.0], [1.0, -1.0]]))
        skipped.skip.bias.copy_(torch.tensor([0.5, 0.0]))
    want = plain(x, t) + torch.stack((2 * x[:, 0] + 0.5, x[:, 0] - x[:, 1]), 1)
    torch.testing.assert_close(skipped(x, t), want)
    skipped(x, t).sum().backward()
    assert skipped.skip.weight.grad is not None and skipped.skip.weight.grad.abs().sum() > 0


def test_mlp_structure_follows_config() -> None:
    model = MLP2D(MLPConfig(hidden=64, depth=4, embed_dim=16))
    linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 5  # depth hidden layers + output
    assert linears[0].in_features == 2 + 16
    assert all(lin.out_features == 64 for lin in linears[:-1])
    assert linears[-1].out_features == 2


@pytest.mark.parametrize(
    ("x", "t", "match"),
    [
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), "x_t"),
        (torch.randn(4), torch.zeros(4, dtype=torch.long), "x_t"),
        (torch.randn(4, 2, 1), torch.zeros(4, dtype=torch.long), "x_t"),
        (torch.randn(4, 2), torch.zeros(3, dtype=torch.long), r"t must have shape \[B\]"),
        (torch.randn(4, 2), torch.zeros(4, 1, dtype=torch.long), r"t must have shape \[B\]"),
        (torch.randn(4, 2), torch.zeros(4), "integer"),
        (torch.randn(4, 2), torch.tensor([0, 1, 2, 100]), r"0\.\.99"),
        (torch.randn(4, 2), torch.tensor([0, -1, 2, 3]), r"0\.\.99"),
    ],
)
def test_mlp_rejects_bad_inputs(x: torch.Tensor, t: torch.Tensor, match: str) -> None:
    model = MLP2D(MLPConfig(num_timesteps=100))
    with pytest.raises(ValueError, match=match):
        model(x, t)


def test_mlp_accepts_boundary_timesteps() -> None:
    model = MLP2D(MLPConfig(num_timesteps=100))
    assert model(torch.randn(2, 2), torch.tensor([0, 99])).shape == (2, 2)


@pytest.mark.parametrize("time_embedding", EMBEDDINGS)
def test_mlp_gradient_reaches_every_parameter(time_embedding: str) -> None:
    torch.manual_seed(0)
    model = MLP2D(MLPConfig(hidden=16, depth=3, time_embedding=time_embedding, num_timesteps=10))
    model(torch.randn(32, 2), torch.arange(32) % 10).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_mlp_overfits_a_fixed_mapping() -> None:
    torch.manual_seed(0)
    model = MLP2D(MLPConfig(hidden=64, depth=2, num_timesteps=10))
    x = torch.randn(64, 2)
    t = torch.arange(64) % 10
    target = torch.randn(64, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(300):
        loss = (model(x, t) - target).square().mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 10


# ---------------------------------------------------------------------------------------------
# UNet


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


# ---------------------------------------------------------------------------------------------
# Configs


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hidden", 0),
        ("hidden", 5000),
        ("depth", 0),
        ("depth", 17),
        ("num_timesteps", 0),
        ("num_timesteps", 100_001),
        ("embed_dim", 7),
        ("activation", "tanh"),
        ("time_embedding", "learned"),
        ("kind", "unet"),
        ("hidden", 12.5),
        ("hidden", True),
        ("skip", 1),
        ("skip", "yes"),
    ],
)
def test_mlp_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        MLPConfig(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("channels", 2),
        ("image_size", 18),  # 18 is not divisible by 2 ** 2 = 4 with dim_mults (1, 2, 2)
        ("dim", 30),  # not divisible by groups = 8
        ("dim", 0),
        ("dim_mults", ()),
        ("dim_mults", (1, 0)),
        ("block", "transformer"),
        ("groups", 0),
        ("attn_heads", 0),
        ("attn_dim_head", 0),
        ("use_linear_attention", "yes"),
        ("use_mid_attention", 1),
        ("convnext_mult", 0),
        ("level_blocks", 3),
        ("level_blocks", 0),
        ("level_blocks", True),
        ("kind", "mlp2d"),
    ],
)
def test_unet_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        UNetConfig(**{field: value})  # type: ignore[arg-type]


def test_unet_config_groups_must_divide_dim() -> None:
    UNetConfig(dim=12, groups=4, dim_mults=(1, 3))  # widths 12, 12, 36: fine
    with pytest.raises(ValueError, match="groups"):
        UNetConfig(dim=8, groups=16, dim_mults=(2,))


def test_configs_are_frozen() -> None:
    with pytest.raises(AttributeError):
        MLPConfig().hidden = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        UNetConfig().dim = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "config",
    [
        MLPConfig(),
        MLPConfig(hidden=64, depth=5, activation="gelu", time_embedding="scalar"),
        MLPConfig(depth=2, input_frequencies=8, skip=True),
        UNetConfig(),
        UNetConfig(channels=3, image_size=32, dim=16, dim_mults=(1, 2, 4), block="convnext"),
        UNetConfig(dim_mults=(1, 2, 3), level_blocks=1, use_linear_attention=False),
    ],
)
def test_config_round_trip_through_json(config: MLPConfig | UNetConfig) -> None:
    d = json.loads(json.dumps(config.to_dict()))
    assert type(config).from_dict(d) == config
    assert config_from_dict(d) == config
    assert d["kind"] == config.kind


def test_from_dict_rejects_unknown_keys_and_wrong_kind() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        MLPConfig.from_dict({"hidden": 64, "width": 3})
    with pytest.raises(ValueError, match="unknown key"):
        UNetConfig.from_dict({"dim": 16, "num_res_blocks": 2})
    with pytest.raises(ValueError, match="kind"):
        MLPConfig.from_dict({"kind": "unet"})
    with pytest.raises(ValueError, match="kind"):
        config_from_dict({"hidden": 64})
    with pytest.raises(ValueError, match="kind"):
        config_from_dict({"kind": "transformer"})


def test_from_dict_fills_defaults() -> None:
    assert MLPConfig.from_dict({"kind": "mlp2d", "hidden": 64}) == MLPConfig(hidden=64)
    assert not MLPConfig.from_dict({"kind": "mlp2d"}).skip  # configs saved before `skip`
    assert UNetConfig.from_dict({"dim_mults": [1, 2]}) == UNetConfig(dim_mults=(1, 2))
    assert UNetConfig.from_dict({"kind": "unet"}).level_blocks == 2  # configs saved before it


def test_build_model_dispatches_on_config_type() -> None:
    assert isinstance(build_model(MLPConfig()), MLP2D)
    assert isinstance(build_model(small_unet()), UNet)
    with pytest.raises(TypeError):
        build_model({"kind": "mlp2d"})  # type: ignore[arg-type]


def test_count_parameters() -> None:
    model = MLP2D(MLPConfig(hidden=10, depth=1, time_embedding="scalar"))
    # Linear(3, 10) + Linear(10, 2)
    assert count_parameters(model) == 3 * 10 + 10 + 10 * 2 + 2
    model.net[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 10 + 10 * 2 + 2


def test_state_dict_loads_into_a_model_built_from_the_saved_config() -> None:
    torch.manual_seed(0)
    model = build_model(small_unet())
    clone = build_model(config_from_dict(json.loads(json.dumps(model.config.to_dict()))))
    clone.load_state_dict(model.state_dict())
    x, t = torch.randn(2, 1, 8, 8), timesteps(2)
    torch.testing.assert_close(clone(x, t), model(x, t))
    # buffers that are pure functions of the config stay out of checkpoints
    assert not any("freqs" in k for k in model.state_dict())
    # safetensors needs contiguous tensors: plain, or (conv weights) channels-last, which
    # save_checkpoint makes contiguous (test_unet_weights_are_channels_last_and_save_contiguous)
    assert all(v.is_contiguous() or v.is_contiguous(memory_format=torch.channels_last)
               for v in model.state_dict().values())
