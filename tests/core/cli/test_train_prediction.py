"""``python -m diffusion_core.train --prediction {eps,x0,v}``: the flag reaches the training
config, the checkpoint records it, and loading gives an ε-predictor the samplers run."""

from __future__ import annotations

import json

import pytest
import torch

from diffusion_core.checkpoints import load_checkpoint
from diffusion_core.cli import train as train_cli
from diffusion_core.forward import EpsPredictor, eps_from_prediction

QUICK = ["--steps", "3", "--quiet", "--threads", "1", "--n", "256"]


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_prediction_flag_reaches_the_checkpoint(tmp_path, prediction):
    out = train_cli.run(["--dataset", "moons", "--out", str(tmp_path / "m"),
                         "--prediction", prediction, *QUICK])
    config = json.loads((out / "config.json").read_text())
    assert config["prediction"] == prediction
    assert config["training"]["config"]["prediction"] == prediction
    ck = load_checkpoint(out)
    assert ck.prediction == prediction and isinstance(ck.model, EpsPredictor)
    assert not any(k.startswith("network.") for k in ck.network.state_dict())
    x, t = torch.randn(4, 2), torch.tensor([0, 50, 150, 199])
    with torch.inference_mode():
        want = eps_from_prediction(ck.schedule, x, t, ck.network(x, t), prediction)
        assert torch.equal(ck.model(x, t), want)


def test_default_is_eps(tmp_path):
    out = train_cli.run(["--dataset", "moons", "--out", str(tmp_path / "m"), *QUICK])
    ck = load_checkpoint(out)
    assert ck.prediction == "eps" and ck.model is ck.network
    assert ck.training["config"]["prediction"] == "eps"


def test_bad_prediction_exits_2(tmp_path, capsys):
    code = train_cli.main(["--dataset", "moons", "--out", str(tmp_path / "x"),
                           "--prediction", "score", *QUICK])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "--prediction" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
