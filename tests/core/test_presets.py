"""Presets: the app's and the CLI's defaults, torch-free, consistent with their configs."""

from __future__ import annotations

import subprocess
import sys

from diffusion_core.models.mlp_config import MLPConfig
from diffusion_core.models.unet_config import UNetConfig
from diffusion_core.presets import DIGITS, GRADIENTS, IMAGE_PRESETS, SHAPES, TOY, preset_for


def test_toy_preset_time_embedding_follows_T():
    assert isinstance(TOY.model, MLPConfig) and TOY.model.num_timesteps == TOY.schedule.T
    p = TOY.with_T(57)
    assert p.schedule.T == 57 and p.model.num_timesteps == 57
    assert p.train == TOY.train and p.sampler == TOY.sampler


def test_image_presets_are_unets_with_their_channels():
    assert DIGITS.model.channels == 1
    assert GRADIENTS.model.channels == 3 and SHAPES.model.channels == 3
    for p in IMAGE_PRESETS.values():
        assert isinstance(p.model, UNetConfig)
        assert p.sampler.sampler == "ddim" and p.sampler.clip_x0
        assert p.with_T(100).model == p.model  # a U-Net's embedding does not depend on T


def test_preset_for():
    assert preset_for("moons", image=False) is TOY
    assert preset_for("gradients", image=True) is GRADIENTS
    assert preset_for("my_folder", image=True) is DIGITS  # user images: a digits-sized U-Net


def test_presets_import_without_torch():
    code = ("import sys; import diffusion_core.presets as p; p.preset_for('digits', image=True); "
            "assert 'torch' not in sys.modules, 'presets imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
