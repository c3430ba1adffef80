"""Data-parallel training (:mod:`diffusion_core.training.distributed`): 2 processes = 1 process.

One real ``torchrun --nproc_per_node 2`` job (gloo on CPU, 1 thread per process) runs this file
as a script (:func:`_worker`): three Trainer cases, each with a global batch of 16 split 8 + 8,
then the CLI in the same job. The tests compare it with 1-process runs here, batch 16, same seed:

* the gradient of the first step (DDP's average of the two halves' mean-loss gradients) equals
  the batch-16 gradient, and after 4 steps the weights, the EMA, the per-step losses and the
  per-t loss bins agree to float rounding; both ranks hold bit-identical weights, though
  rank 1 built its network from another seed (DDP starts every rank from rank 0's weights);
* the cases cover STF targets (the reference set is the global batch), label dropout, x0 and v
  prediction, EMA, clipping and low-noise t draws — on the 2D MLP and a tiny U-Net;
* the CLI: only rank 0 writes the checkpoint and its one message, the summary records
  ``world_size`` 2 and ``global_batch_size``, and the network it writes predicts what a
  1-process CLI run's does;
* bad set-ups fail with one line before any process waits for another.

Why the U-Net's weights are compared through its predictions: a conv bias right before a
one-channel-per-group GroupNorm has no effect and an exactly-zero true gradient, so its computed
gradient is rounding noise, which Adam's g/√v turns into ±lr steps that differ between any two
summation orders. The network's output does not see those biases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffusion_core.checkpoints import load_checkpoint
from diffusion_core.cli import train as train_cli
from diffusion_core.models import MLP2D, MLPConfig, UNet, UNetConfig
from diffusion_core.schedule import NoiseSchedule
from diffusion_core.training import TrainConfig, Trainer, distributed

ROOT = Path(__file__).resolve().parents[2]
BATCH, STEPS = 16, 4
CASES: dict[str, dict] = {
    "mlp": dict(train=dict(), conditional=False, image=False),
    "mlp_cond_stf_x0": dict(train=dict(target="stf", stf_extra=8, prediction="x0", loss="huber",
                                       ema_decay=0.9, timestep_power=1.5, grad_clip=0.05),
                            conditional=True, image=False),
    "unet_stf_v": dict(train=dict(target="stf", prediction="v", ema_decay=0.9),
                       conditional=False, image=True),
}
CLI_ARGS = ["--dataset", "moons", "--n-points", "256", "--steps", "3", "--batch-size", "32",
            "--threads", "1"]


def _case(name: str, rank: int = 0):
    """(model, schedule, data [N, ...], config, labels or None) of a case. Each rank builds
    its network from its own seed: DDP must start every rank (and its EMA) from rank 0's."""
    spec = CASES[name]
    torch.manual_seed(rank)
    schedule = NoiseSchedule(kind="linear", T=50, scale_to_T=True)
    k = 3 if spec["conditional"] else 0
    if spec["image"]:
        model = UNet(UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2)))
        data = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    else:
        model = MLP2D(MLPConfig(hidden=32, depth=2, num_timesteps=50, num_classes=k))
        data = torch.randn(256, 2, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(len(data)) % k if k else None
    config = TrainConfig(steps=STEPS, batch_size=BATCH, report_every=2, **spec["train"])
    return model, schedule, data, config, labels


def _probe(model: torch.nn.Module, data: torch.Tensor, conditional: bool) -> torch.Tensor:
    """The network's output on a fixed batch of (x_t, t[, y]): what its weights compute."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn((32, *data.shape[1:]), generator=g)
    t = torch.randint(0, 50, (32,), generator=g)
    with torch.no_grad():
        model.eval()
        out = model(x, t, torch.arange(32) % 4) if conditional else model(x, t)  # 3 = null
    return out


def _train_case(name: str, rank: int = 0, world_size: int = 1) -> dict[str, torch.Tensor]:
    """Train a case: 1 step (keeping its gradient), then 3 more; the figures to compare."""
    model, schedule, data, config, labels = _case(name, rank)
    trainer = Trainer(model, schedule, data, config, labels=labels, rank=rank,
                      world_size=world_size)
    first = list(trainer.run(1))
    out = {f"grad.{k}": p.grad.clone() for k, p in model.named_parameters()}
    reports = first + list(trainer.run(STEPS - 1))
    out |= {f"param.{k}": v.clone() for k, v in model.state_dict().items()}
    out |= {f"ema.{k}": v.clone() for k, v in trainer.sampling_network().state_dict().items()}
    out["losses"] = torch.tensor([v for r in reports for v in r.losses], dtype=torch.float64)
    out["timestep_loss"] = torch.tensor(reports[-1].timestep_loss, dtype=torch.float64)
    out["timestep_eps_loss"] = torch.tensor(reports[-1].timestep_eps_loss, dtype=torch.float64)
    conditional = CASES[name]["conditional"]
    out["probe"] = _probe(model, data, conditional)
    out["probe_ema"] = _probe(trainer.sampling_network(), data, conditional)
    return out


def _worker(out: Path) -> None:
    """Each torchrun process: the Trainer cases, then the CLI, in one gloo process group."""
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    world = distributed.World.from_env()
    distributed.setup(world, "cpu")
    results = {f"{name}/{k}": v.contiguous() for name in CASES
               for k, v in _train_case(name, world.rank, world.world_size).items()}
    save_file(results, str(out / f"rank{world.rank}.safetensors"))

    real_save = train_cli.save_checkpoint

    def recording_save(*args, **kwargs):
        (out / f"saved_by_rank{world.rank}").touch()
        return real_save(*args, **kwargs)

    train_cli.save_checkpoint = recording_save
    code = train_cli.main([*CLI_ARGS, "--out", str(out / "ckpt")])  # reuses, then ends, the group
    (out / f"cli_rank{world.rank}.json").write_text(json.dumps({
        "code": code, "group_left": not torch.distributed.is_initialized(),
        "world": [world.rank, world.world_size, world.local_rank, world.local_world_size]}))


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict:
    """One 2-process torchrun job of :func:`_worker`; its files and output."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         __file__, str(out)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from safetensors.torch import load_file

    ranks = [load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1)]
    return {"out": out, "ranks": ranks, "stdout": proc.stdout}


def _close(a: torch.Tensor, b: torch.Tensor, rel: float) -> bool:
    """|a − b| ≤ rel · max|b| (+1e-12), elementwise."""
    return bool(((a - b).abs() <= rel * b.abs().max() + 1e-12).all())


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_make_the_one_process_update(job, name):
    ref = _train_case(name)
    r0 = {k.split("/", 1)[1]: v for k, v in job["ranks"][0].items() if k.startswith(name + "/")}
    r1 = {k.split("/", 1)[1]: v for k, v in job["ranks"][1].items() if k.startswith(name + "/")}
    assert r0.keys() == ref.keys()
    for k in r0:  # DDP keeps the replicas identical, bit for bit
        assert torch.equal(r0[k], r1[k]), k
    # the batch-16 gradient, to 1e-5 of its largest entry (the U-Net's gradient-free biases
    # hold ~1e-9 of rounding noise)
    grads = [k for k in ref if k.startswith("grad.")]
    scale = max(ref[k].abs().max() for k in grads)
    for k in grads:
        assert (r0[k] - ref[k]).abs().max() <= 1e-5 * scale, (k, (r0[k] - ref[k]).abs().max())
    # the global batch's loss each step and per-t bins, not one rank's half
    assert torch.allclose(r0["losses"], ref["losses"], rtol=1e-6, atol=0)
    for k in ("timestep_loss", "timestep_eps_loss"):
        seen = ref[k].isfinite()
        assert torch.equal(r0[k].isfinite(), seen)
        assert torch.allclose(r0[k][seen], ref[k][seen], rtol=1e-5, atol=0), k
    assert _close(r0["probe"], ref["probe"], 1e-5) and _close(r0["probe_ema"],
                                                              ref["probe_ema"], 1e-5)
    if not CASES[name]["image"]:  # (the U-Net: see the module docstring)
        for k in [k for k in ref if k.startswith(("param.", "ema."))]:
            assert _close(r0[k], ref[k], 1e-5), (k, (r0[k] - ref[k]).abs().max())


def test_only_rank_0_writes_the_checkpoint_and_the_message(job, tmp_path):
    out = job["out"]
    assert (out / "saved_by_rank0").exists() and not (out / "saved_by_rank1").exists()
    for r in (0, 1):
        cli = json.loads((out / f"cli_rank{r}.json").read_text())
        assert cli == {"code": 0, "group_left": True, "world": [r, 2, r, 2]}
    assert job["stdout"].count("wrote ") == 1
    ck = load_checkpoint(out / "ckpt")
    tr = ck.training
    assert (tr["world_size"], tr["global_batch_size"], tr["config"]["batch_size"]) == (2, 32, 32)
    assert tr["steps"] == 3 and tr["threads"] == 1
    # the same command in 1 process trains the same network (the checkpoint holds the EMA)
    one = load_checkpoint(train_cli.run([*CLI_ARGS, "--quiet", "--out", str(tmp_path / "one")]))
    assert (one.training["world_size"], one.training["global_batch_size"]) == (1, 32)
    assert abs(one.training["final_loss"] - tr["final_loss"]) < 1e-6
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    t = torch.randint(0, ck.schedule.T, (256,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert _close(ck.model(x, t), one.model(x, t), 1e-5)


@pytest.fixture
def torchrun_env(monkeypatch):
    """This process seen as rank 0 of 2 (no group is started: the errors come first)."""
    for k, v in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2",
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(k, v)
    threads = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("args", "message"), [
    (["--batch-size", "33"], "batch size 33 does not split over 2 processes"),
    (["--backend", "nccl"], "nccl backend runs on CUDA GPUs only"),
])
def test_cli_setup_errors_are_one_line_on_rank_0_only(torchrun_env, tmp_path, capsys, args,
                                                      message):
    argv = ["--dataset", "moons", "--n", "64", "--steps", "1", "--threads", "1", "--quiet",
            "--out", str(tmp_path / "x"), *args]
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
    torchrun_env.setenv("RANK", "1")
    torchrun_env.setenv("LOCAL_RANK", "1")
    assert train_cli.main(argv) == 2
    assert capsys.readouterr().err == ""  # the other processes stay quiet
    assert not (tmp_path / "x").exists() and not torch.distributed.is_initialized()


def test_world_from_env_and_the_batch_split():
    assert distributed.World.from_env({}) == distributed.World()
    w = distributed.World.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
                                    "LOCAL_WORLD_SIZE": "2"})
    assert (w.rank, w.world_size, w.local_rank, w.distributed, w.is_main) == (3, 4, 1, True,
                                                                              False)
    with pytest.raises(distributed.DistributedError, match="WORLD_SIZE='two'"):
        distributed.World.from_env({"WORLD_SIZE": "two"})
    with pytest.raises(distributed.DistributedError, match="rank 2"):
        distributed.World(rank=2, world_size=2)
    assert [distributed.rank_rows(12, r, 3) for r in range(3)] == [slice(0, 4), slice(4, 8),
                                                                    slice(8, 12)]
    with pytest.raises(distributed.DistributedError, match="multiple of 3"):
        distributed.rank_rows(10, 0, 3)
    assert distributed.check_backend(None, "cpu") == "gloo"
    assert distributed.check_backend(None, "cuda") == "nccl"
    assert distributed.setup(distributed.World(), "cpu") == torch.device("cpu")  # no group


def test_trainer_refuses_a_world_without_a_process_group():
    model, schedule, data, config, _ = _case("mlp")
    with pytest.raises(ValueError, match="needs a process group"):
        Trainer(model, schedule, data, config, rank=0, world_size=2)
    with pytest.raises(ValueError, match="does not split over 3"):
        Trainer(model, schedule, data, config, rank=0, world_size=3)
    with pytest.raises(ValueError, match="rank 1"):
        Trainer(model, schedule, data, config, rank=1, world_size=1)


if __name__ == "__main__":  # one torchrun process of the `job` fixture
    _worker(Path(sys.argv[1]))
