"""Cost of the variational bound (evaluation.vlb_terms), and bits/dim of the shipped image models.

    python -m bench.vlb [--threads 2]

Targets: the 2D preset model (TOY, T = 200) over all T steps and 1000 points ≤ 1 s; the shipped
digits model (T = 1000) on 1000 images, with a subset of timesteps, ≤ 20 s. Every image model in
assets/models/ is scored in bits/dim with the discrete decoder (data quantised to 8 bits).
Writes bench/results/vlb.json (with the load average: the machine is shared).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import torch

from bench.common import write_results
from diffusion_core.checkpoints import load_checkpoint
from diffusion_core.data import make_2d
from diffusion_core.data.digits import load_digits_images
from diffusion_core.data.synthetic import make_gradients, make_shapes
from diffusion_core.evaluation.vlb import vlb_terms
from diffusion_core.models import build_model
from diffusion_core.presets import TOY
from diffusion_core.schedule import NoiseSchedule

MODELS = Path(__file__).resolve().parents[1] / "assets" / "models"
TOY_TARGET_S = 1.0
DIGITS_TARGET_S = 20.0
IMAGE_TIMESTEPS = 8  # log-stratified KL terms per image (+ the decoder): 9 forward passes each


def _timed(fn, repeat: int) -> tuple[object, dict]:
    """Wall time (median, min) and this process's CPU time per run (all threads together)."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return out, {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                 "cpu_s": round(statistics.median(cpu), 3), "runs": repeat}


def _summary(r) -> dict:
    ln2d = r.d * math.log(2.0)
    return {"n": r.n, "d": r.d, "T": r.T, "timesteps": r.timesteps, "decoder": r.decoder,
            "variance": r.variance, "total_nats": round(r.total, 3),
            "bits_per_dim": round(r.bits_per_dim, 4),
            "bits_per_dim_stderr": round(r.total_stderr / ln2d, 4),
            "decoder_bits_per_dim": round(float(r.terms[0]) / ln2d, 4),
            "prior_bits_per_dim": round(r.prior / ln2d, 6)}


def toy() -> dict:
    torch.manual_seed(0)
    model = build_model(TOY.model).eval()  # untrained: the cost does not depend on the weights
    schedule = NoiseSchedule(TOY.schedule)
    x0 = make_2d("moons", 1000, seed=0)
    run = lambda: vlb_terms(model, schedule, x0, generator=torch.Generator().manual_seed(0))  # noqa: E731
    run()  # warm-up
    r, timing = _timed(run, 5)
    return {**_summary(r), "model": "TOY preset, untrained", "data": "moons, 1000 points",
            **timing, "target_s": TOY_TARGET_S, "met": timing["median_s"] <= TOY_TARGET_S}


def image_model(name: str, x0: torch.Tensor, data: str, *, repeat: int = 1) -> dict:
    ckpt = load_checkpoint(MODELS / name)
    run = lambda: vlb_terms(ckpt.model, ckpt.schedule, x0, decoder="discrete",  # noqa: E731
                            timesteps=IMAGE_TIMESTEPS, generator=torch.Generator().manual_seed(0))
    r, timing = _timed(run, repeat)
    return {**_summary(r), "model": f"assets/models/{name}", "data": data, **timing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = [round(v, 2) for v in os.getloadavg()]
    results = {"toy": toy()}
    digits = load_digits_images(8, "train").images[:1000]
    results["digits"] = image_model("digits", digits, "digits8 train split, first 1000")
    results["digits"]["target_s"] = DIGITS_TARGET_S
    results["digits"]["met"] = results["digits"]["median_s"] <= DIGITS_TARGET_S
    held_out = load_digits_images(8, "test").images
    results["digits_held_out"] = image_model("digits", held_out,
                                             f"digits8 test split ({len(held_out)})")
    results["gradients"] = image_model("gradients", make_gradients(250, 16, seed=1),
                                       "make_gradients(250, 16, seed=1) (trained on seed 0)")
    results["shapes"] = image_model("shapes", make_shapes(250, 16, seed=1)[0],
                                    "make_shapes(250, 16, seed=1) (trained on seed 0)")
    load_after = [round(v, 2) for v in os.getloadavg()]
    for name, r in results.items():
        target = f" (target ≤ {r['target_s']} s: {'met' if r['met'] else 'NOT met'})" \
            if "target_s" in r else ""
        print(f"{name:>16}: {r['median_s']:7.3f} s (CPU {r['cpu_s']:.1f} s){target}; "
              f"n = {r['n']}, T = {r['T']}, "
              f"timesteps = {r['timesteps'] or 'all'}: {r['bits_per_dim']:.3f} ± "
              f"{r['bits_per_dim_stderr']:.3f} bits/dim (decoder {r['decoder_bits_per_dim']:.3f})")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    write_results("vlb", {"threads": args.threads, "load_average_before": load_before,
                          "load_average_after": load_after,
                          "image_timesteps": IMAGE_TIMESTEPS, "results": results})


if __name__ == "__main__":
    main()
