"""MLPConfig / UNetConfig: validation naming the field, frozen, JSON round trip, defaults."""

from __future__ import annotations

import json

import pytest

from diffusion_core.models import (
    MLPConfig,
    UNetConfig,
    config_from_dict,
)


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

