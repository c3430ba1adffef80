"""build_model, count_parameters, and state dicts that load into a rebuilt model."""

from __future__ import annotations

import json

import pytest
import torch

from diffusion_core.models import (
    MLP2D,
    MLPConfig,
    UNet,
    build_model,
    config_from_dict,
    count_parameters,
)
from tests.core.models.common import small_unet, timesteps


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

