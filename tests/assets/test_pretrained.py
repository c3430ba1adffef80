"""The shipped image models in assets/models/ and the calibration of their quality metrics.

Fast (seconds): loading, shapes, a short fixed-seed DDIM run against stored values, and the
ranking of the calibration references on small samples (bench/quality.py runs the full-size
version and writes bench/results/quality_*.json).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from diffusion_core.checkpoints import load_checkpoint
from diffusion_core.models import UNetConfig, count_parameters
from diffusion_core.presets import DIGITS, GRADIENTS, SHAPES
from diffusion_core.sampling import sample_final

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # for bench.quality when pytest is run as a plain command
MODELS = ROOT / "assets" / "models"

# name: (image shape, preset)
SHIPPED = {"digits": ((1, 8, 8), DIGITS), "gradients": ((3, 16, 16), GRADIENTS),
           "shapes": ((3, 16, 16), SHAPES)}

# Recorded with record_reference() below (torch 2.13.0+cpu, Python 3.11; identical with 1 and
# 2 threads) on 2026-11-23, right after the shipped weights were retrained in the lean U-Net
# layout (level_blocks = 1); re-record them only when the shipped weights change. The run:
# DDIM, 5 trailing steps, η = 0, clipped x̂0, 2 samples, x_T from
# torch.Generator().manual_seed(0); the first 6 values of each flattened sample.
REFERENCE = {
    "digits": [[-0.9911, -0.9436, 0.5789, 0.7056, 0.6433, 0.6607],
               [-1.0, -0.8594, 0.5216, 0.9527, 0.9917, 0.3473]],
    "gradients": [[0.2559, 0.3183, 0.3749, 0.4128, 0.4695, 0.4967],
                  [-0.8435, -0.8627, -0.8668, -0.8601, -0.8491, -0.8757]],
    # recorded the same way (identical with 1 and 2 threads) when the shapes model was added
    "shapes": [[-0.0609, -0.0511, -0.0641, -0.0775, -0.0825, -0.0633],
               [-0.5548, -0.5392, -0.5481, -0.542, -0.5235, -0.7272]],
}


def record_reference(name: str) -> list[list[float]]:
    """The fixed-seed DDIM run whose values :data:`REFERENCE` stores."""
    ck = load_checkpoint(MODELS / name)
    cfg = ck.model_config
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(2, cfg.channels, cfg.image_size, cfg.image_size, generator=g)
    x = sample_final(ck.model, ck.schedule, x_T, sampler="ddim", steps=5, eta=0.0,
                     spacing="trailing", clip_x0=True, generator=g)
    return [[round(v, 4) for v in row[:6].tolist()] for row in x.reshape(2, -1)]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_loads_with_the_right_shapes(name):
    shape, preset = SHIPPED[name]
    ck = load_checkpoint(MODELS / name)
    cfg = ck.model_config
    assert isinstance(cfg, UNetConfig)
    assert (cfg.channels, cfg.image_size, cfg.image_size) == shape
    # the preset's architecture (what `python -m diffusion_core.train` builds), sized to the data
    assert cfg == replace(preset.model, channels=shape[0], image_size=shape[1])
    assert ck.schedule_config == preset.schedule
    x = torch.randn(3, *shape)
    with torch.inference_mode():
        out = ck.model(x, torch.tensor([0, 500, 999]))
    assert out.shape == x.shape and torch.isfinite(out).all()
    training = ck.training
    assert training["parameters"] == count_parameters(ck.model)
    assert training["sampler_defaults"] == preset.sampler.kwargs()
    assert training["command"].startswith("python -m diffusion_core.train")
    card = (MODELS / name / "MODEL_CARD.md").read_text()
    assert training["command"] in card and f"{training['parameters']:,}" in card


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_fixed_seed_sample_matches_stored_values(name):
    got = torch.tensor(record_reference(name))
    torch.testing.assert_close(got, torch.tensor(REFERENCE[name]), atol=2e-3, rtol=0)


def test_shipped_assets_fit_the_size_budget():
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total <= 25 * 2**20, f"assets/models is {total / 2**20:.1f} MB"
    for name in SHIPPED:
        assert json.loads((MODELS / name / "config.json").read_text())["dataset"]["name"]


def test_digits_model_trained_on_the_train_split_only():
    ck = load_checkpoint(MODELS / "digits")
    from diffusion_core.data.digits import digits_split_indices

    assert ck.dataset["name"] == "digits8"
    assert ck.dataset["n"] == len(digits_split_indices()[0])  # the "train" half


def test_digit_metrics_rank_the_calibration_references():
    from bench.quality import calibrate_digits

    calib, rankings = calibrate_digits(8, 200)
    failed = [r for r in rankings if not r["ok"]]
    assert not failed, failed
    assert calib["single_class"]["class_entropy"] < 0.5 < 2.2 < calib["real"]["class_entropy"]


def test_gradient_metrics_rank_the_calibration_references():
    from bench.quality import calibrate_gradients

    calib, rankings = calibrate_gradients(16, 64)
    failed = [r for r in rankings if not r["ok"]]
    assert not failed, failed
    assert calib["real"]["residual_mean"] < 1e-4 < 0.5 < calib["pure_noise"]["residual_mean"]


def test_shapes_model_trained_on_the_registry_draw():
    ck = load_checkpoint(MODELS / "shapes")
    assert ck.dataset["name"] == "shapes" and ck.dataset["n"] == 2000


def test_shape_metrics_rank_the_calibration_references():
    from bench.quality import calibrate_shapes

    calib, rankings = calibrate_shapes(16, 128)
    failed = [r for r in rankings if not r["ok"]]
    assert not failed, failed
    assert calib["real"]["residual_mean"] < 1e-4 < 0.3 < calib["pure_noise"]["residual_mean"]
    assert calib["single_class"]["class_entropy"] < 0.3 < 1.3 < calib["real"]["class_entropy"]
