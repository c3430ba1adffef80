"""``python -m diffusion_core.train``: the CLI the model cards' commands run.

Short runs (a few steps): the architecture and recipe it builds are the preset's (what the
shipped checkpoints were trained with), the checkpoint it writes loads and records the command,
overrides reach the config, two runs with one seed give the same weights, and bad arguments
exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from diffusion_core.checkpoints import load_checkpoint
from diffusion_core.cli import train as train_cli
from diffusion_core.models import UNetConfig
from diffusion_core.presets import DIGITS, TOY

QUICK = ["--steps", "3", "--quiet", "--threads", "1"]


@pytest.fixture(autouse=True)
def _restore_threads():
    """``--threads`` sets torch's thread count for the whole process: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_image_run_builds_the_preset_unet_sized_to_the_data(tmp_path):
    argv = ["--dataset", "digits8", "--out", str(tmp_path / "d"), *QUICK]
    out = train_cli.run(argv)
    ck = load_checkpoint(out)
    assert ck.model_config == replace(DIGITS.model, channels=1, image_size=8)
    assert ck.model_config.level_blocks == 1  # the lean layout of the shipped models
    assert ck.schedule_config == DIGITS.schedule
    tr = ck.training
    assert tr["steps"] == 3
    assert tr["config"] == replace(DIGITS.train, steps=3).to_dict()
    assert tr["command"] == "python -m diffusion_core.train " + " ".join(argv)
    assert tr["sampler_defaults"] == DIGITS.sampler.kwargs()
    assert ck.dataset["name"] == "digits8" and ck.dataset["shape"] == [1, 8, 8]
    x = torch.randn(2, 1, 8, 8)
    with torch.inference_mode():
        assert ck.model(x, torch.tensor([0, 999])).shape == x.shape


def test_architecture_overrides_reach_the_config(tmp_path):
    out = train_cli.run(["--dataset", "digits8", "--out", str(tmp_path / "d"), "--dim", "16",
                         "--dim-mults", "1,2", "--level-blocks", "2", *QUICK])
    cfg = load_checkpoint(out).model_config
    assert isinstance(cfg, UNetConfig)
    assert (cfg.dim, cfg.dim_mults, cfg.level_blocks) == (16, (1, 2), 2)


def test_same_seed_same_weights(tmp_path):
    def weights(name: str) -> dict[str, torch.Tensor]:
        out = train_cli.run(["--dataset", "moons", "--n", "256", "--out", str(tmp_path / name),
                             "--seed", "3", *QUICK])
        return load_checkpoint(out).model.state_dict()

    a, b = weights("a"), weights("b")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["model"]["hidden"] == TOY.model.hidden
    assert cfg["training"]["config"]["seed"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "digits8", "--dim-mults", "1,x"], "--dim-mults"),
        (["--dataset", "digits8", "--level-blocks", "3"], "--level-blocks"),
        (["--dataset", "folder"], "--data-path"),
        (["--dataset", "nope"], "nope"),
        (["--dataset", "digits8", "--dim", "30"], "dim"),  # not divisible by groups = 8
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    code = train_cli.main([*args, "--out", str(tmp_path / "x"), *QUICK])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
