"""U-Net speed: ms per sampler step of each shipped model vs. diffusers' UNet2DModel, and the
end-to-end time of 16 digits with the app's default sampler.

    pip install -r bench/requirements.txt     # diffusers, for this benchmark only
    python -m bench.unet_speed [--threads 2] [--rounds 7]

Like with like: the same batch (16, 64), image shape, thread count and ``torch.inference_mode``
for every network, and diffusers models whose parameter count is within 10 % of ours. Two
diffusers layouts are timed, both ``block_out_channels=(32, 64, 64)``, ``layers_per_block=1``,
mid-block attention on:

* ``diffusers_attn``: attention in the two lower down/up levels (diffusers' usual layout);
* ``diffusers_plain``: no attention outside the mid block, the same attention layout as our
  shipped models (linear attention off, softmax attention at the bottleneck).

Our shipped models use the lean layout (``level_blocks = 1``, widths 32, 64, 96; see
``presets.py``). For the record the run also times ``ours_two_block``: our U-Net in the
Annotated Diffusion layout the models had before (two blocks per level, widths 32, 64, 64,
1.11 M parameters; random weights, which cost the same), so the results show how much of the
difference is the layout and how much the implementation.

The machine may be shared, so each figure is measured in ``--rounds`` interleaved rounds
(ours, theirs, ours, …), each the median of 10 calls; the reported value is the median over
rounds, and the speed ratio is the median of the per-round ratios (robust to load drifting
between rounds); the ratio of the fastest single calls is reported beside it.
``sampler_step_ms`` is a whole default DDIM run divided by its steps (network
+ update arithmetic). Writes bench/results/unet_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.common import median_ms, write_results
from diffusion_core.checkpoints import load_checkpoint
from diffusion_core.cli import sample as sample_cli
from diffusion_core.images import make_grid
from diffusion_core.models import UNet, count_parameters
from diffusion_core.sampling import sample

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "models"
MODELS = ("digits", "gradients")
BATCHES = (16, 64)


def diffusers_unet(channels: int, size: int, *, attention: bool) -> torch.nn.Module:
    from diffusers import UNet2DModel

    down = ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D") if attention else (
        "DownBlock2D",) * 3
    up = ("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D") if attention else ("UpBlock2D",) * 3
    return UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels,
                       block_out_channels=(32, 64, 64), layers_per_block=1,
                       down_block_types=down, up_block_types=up, norm_num_groups=16).eval()


def two_block_unet(channels: int, size: int) -> torch.nn.Module:
    """Our U-Net in the previous shipped layout: two blocks per level, dim_mults (1, 2, 2)."""
    from dataclasses import replace

    from diffusion_core.presets import DIGITS

    cfg = replace(DIGITS.model, channels=channels, image_size=size, dim_mults=(1, 2, 2),
                  level_blocks=2)
    return UNet(cfg).eval()


OTHERS = ("diffusers_attn", "diffusers_plain")


def forward_fn(model, x: torch.Tensor, t: torch.Tensor, *, diffusers: bool):
    def run():
        with torch.inference_mode():
            out = model(x, t)
            return out.sample if diffusers else out
    return run


def bench_model(name: str, rounds: int) -> dict:
    ck = load_checkpoint(ASSETS / name)
    cfg = ck.model_config
    shape = (cfg.channels, cfg.image_size, cfg.image_size)
    nets = {"ours": (ck.model, False),
            "diffusers_attn": (diffusers_unet(cfg.channels, cfg.image_size, attention=True), True),
            "diffusers_plain": (diffusers_unet(cfg.channels, cfg.image_size, attention=False),
                                True),
            "ours_two_block": (two_block_unet(cfg.channels, cfg.image_size), False)}
    params = {k: count_parameters(m) for k, (m, _) in nets.items()}
    out: dict = {"image_shape": list(shape), "parameters": params,
                 "param_ratio_vs_ours": {k: round(v / params["ours"], 3)
                                         for k, v in params.items()}}
    kw = dict(ck.training["sampler_defaults"])
    for batch in BATCHES:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, *shape, generator=g)
        t = torch.full((batch,), ck.schedule.T // 2, dtype=torch.long)
        fns = {k: forward_fn(m, x, t, diffusers=d) for k, (m, d) in nets.items()}

        def sampler_run(x=x):
            for _ in sample(ck.model, ck.schedule, x, generator=torch.Generator(), **kw):
                pass

        per_round: dict[str, list[float]] = {k: [] for k in [*fns, "sampler_step"]}
        best: dict[str, float] = {k: float("inf") for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                m = median_ms(fn, repeat=10, warmup=2)
                per_round[k].append(m["median_ms"])
                best[k] = min(best[k], m["min_ms"])
            per_round["sampler_step"].append(
                median_ms(sampler_run, repeat=2, warmup=1)["median_ms"] / kw["steps"])
        row = {f"{k}_forward_ms" if k != "sampler_step" else "ours_sampler_step_ms":
               round(statistics.median(v), 2) for k, v in per_round.items()}
        for mine in ("ours", "ours_two_block"):
            for other in OTHERS:
                ratios = [a / b for a, b in zip(per_round[mine], per_round[other], strict=True)]
                row[f"ratio_{mine}_vs_{other}"] = round(statistics.median(ratios), 3)
                row[f"ratio_{mine}_vs_{other}_range"] = [round(min(ratios), 3),
                                                         round(max(ratios), 3)]
        # the fastest single call of each network: least disturbed by other processes
        row["min_forward_ms"] = {k: round(v, 2) for k, v in best.items()}
        for other in OTHERS:
            row[f"ratio_of_min_ours_vs_{other}"] = round(best["ours"] / best[other], 3)
        row["per_round_ms"] = {k: [round(v, 2) for v in vs] for k, vs in per_round.items()}
        out[f"batch_{batch}"] = row
        print(f"{name} B={batch}: " + ", ".join(f"{k}={v}" for k, v in row.items()
                                               if k != "per_round_ms"), flush=True)
    return out


def end_to_end(repeat: int) -> dict:
    """16 digits, default sampler, GIF frames captured: CLI run (load + sample + PNG/GIF) and
    the in-memory loop alone (model loaded, frames rendered with make_grid as the CLI does)."""
    ck = load_checkpoint(ASSETS / "digits")
    cfg = ck.model_config
    kw = dict(ck.training["sampler_defaults"])

    def loop():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(16, cfg.channels, cfg.image_size, cfg.image_size, generator=g)
        frames = []
        for step in sample(ck.model, ck.schedule, x, generator=g, **kw):
            frames.append(make_grid(step.x_prev, scale=4))
        return frames

    with tempfile.TemporaryDirectory() as d:
        argv = ["--checkpoint", str(ASSETS / "digits"), "--n", "16", "--out", f"{d}/digits"]
        cli = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            sample_cli.run(argv)
            cli.append((time.perf_counter() - t0) * 1000)
    loop_ms = median_ms(loop, repeat=repeat, warmup=1)
    res = {"n": 16, "sampler": kw, "cli_run_median_ms": round(statistics.median(cli), 1),
           "cli_run_min_ms": round(min(cli), 1), "cli_runs_ms": [round(v, 1) for v in cli],
           "loop_with_frames_ms": loop_ms, "goal_ms": 600}
    res["goal_met"] = res["cli_run_median_ms"] <= 600
    print(f"end to end: {res}")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = {name: bench_model(name, args.rounds) for name in MODELS
               if (ASSETS / name).exists()}
    e2e = end_to_end(repeat=10)
    goal = {f"{n}_B{b}_vs_{o}": results[n][f"batch_{b}"][f"ratio_ours_vs_{o}"] <= 0.8
            for n in results for b in BATCHES for o in OTHERS}
    write_results("unet_speed", {"threads": args.threads, "rounds": args.rounds,
                                 "inference_mode": True, "models": results,
                                 "goal_ratio_le_0.8": goal, "end_to_end_16_digits": e2e,
                                 "note": "2-vCPU machine shared with other processes"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
