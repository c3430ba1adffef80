"""Checkpoints: safetensors + JSON round trip, validation, and refusal of pickles."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from diffusion_core.checkpoints import load_checkpoint, read_config, save_checkpoint
from diffusion_core.models import MLP2D, MLPConfig, UNet, UNetConfig
from diffusion_core.schedule import ScheduleConfig


def _roundtrip(tmp_path, model, cfg, x):
    sched = ScheduleConfig(kind="cosine", T=40)
    save_checkpoint(tmp_path / "ck", model, cfg, sched, dataset={"name": "moons", "n": 10},
                    training={"steps": 3, "loss": 0.5})
    ck = load_checkpoint(tmp_path / "ck")
    t = torch.tensor([0, 39])[: len(x)]
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, t), ck.model(x, t))
    assert ck.schedule.T == 40 and ck.schedule_config == sched
    assert ck.dataset == {"name": "moons", "n": 10} and ck.training["steps"] == 3
    assert ck.model_config == cfg
    return ck


def test_mlp_roundtrip_identical_outputs(tmp_path):
    cfg = MLPConfig(hidden=16, depth=2, num_timesteps=40, time_embedding="onehot_linear")
    _roundtrip(tmp_path, MLP2D(cfg), cfg, torch.randn(2, 2))


def test_unet_roundtrip_identical_outputs(tmp_path):
    cfg = UNetConfig(channels=1, image_size=8, dim=16, dim_mults=(1, 2))
    _roundtrip(tmp_path, UNet(cfg), cfg, torch.randn(2, 1, 8, 8))


def test_pickle_is_refused(tmp_path):
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ValueError, match="pickle"):
        load_checkpoint(evil)
    with pytest.raises(ValueError, match="pickle"):
        load_checkpoint(tmp_path)  # a directory holding only a pickle


def test_pickle_disguised_as_safetensors_is_refused(tmp_path):
    cfg = MLPConfig(hidden=8, depth=1, num_timesteps=10)
    d = save_checkpoint(tmp_path / "ck", MLP2D(cfg), cfg, ScheduleConfig(T=10),
                        dataset={"name": "x"})
    (d / "model.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="safetensors"):
        load_checkpoint(d)


def test_mismatched_shapes_and_bad_json(tmp_path):
    cfg = MLPConfig(hidden=8, depth=1, num_timesteps=10)
    d = save_checkpoint(tmp_path / "ck", MLP2D(cfg), cfg, ScheduleConfig(T=10),
                        dataset={"name": "x"})
    conf = json.loads((d / "config.json").read_text())
    conf["model"]["hidden"] = 9
    (d / "config.json").write_text(json.dumps(conf))
    with pytest.raises(ValueError, match="shape"):
        load_checkpoint(d)
    conf["model"]["hidden"] = 8
    conf["schedule"]["T"] = 0
    (d / "config.json").write_text(json.dumps(conf))
    with pytest.raises(ValueError, match="T must"):
        load_checkpoint(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        read_config(d)
    (d / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a Diffusion Lab"):
        read_config(d)
    with pytest.raises(ValueError, match="does not exist"):
        read_config(tmp_path / "nope")
