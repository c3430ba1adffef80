"""Classifier-free guidance: speed of the live views, and the fidelity–diversity trade-off.

    python -m bench.guidance                 # speed + 2D curve + the shipped digits model
    python -m bench.guidance --no-digits     # speed and the 2D curve only

Convention: ε̃ = ε_u + s·(ε_c − ε_u); s = 0 unconditional, s = 1 conditional, s > 1 guides
harder (diffusion_core/sampling/guidance.py). Writes ``bench/results/guidance.json``.

Speed (``--threads`` (2), then 1 thread; inference mode, median of repeated runs; the machine
is shared, so the JSON records its load average before and after):

* ``field_2d``: the guided field on a 21 × 21 grid at one t (ε_u, ε_c, ε̃ from one batched pass
  of 882 points) and ``samples_2d``: 1,000 guided samples with DDIM, 20 steps; their sum is what
  the 2D tab redraws as the slider moves (target ≤ 150 ms). A conditional ``TOY`` MLP on moons.
* ``digit_grid``: a digit × scale grid, 10 digits × scales (0, 1, 3, 5) = 40 images, DDIM 25,
  trailing, clipped x̂0, in ONE chain (per-sample labels and scales; target ≤ 1 s).

Quality (the same measures for 2D and digits, at s = 0, 1, 2 (the default), 3 and 5, same
x_T at every scale):

* ``accuracy``: how often the sample is read as the requested class — for digits, the held-out
  digit classifier of ``evaluation.digits``; for 2D, the class of the nearest point of the
  noise-free data set (:func:`nearest_class_2d`). At s = 0 it is chance (1/K) for a good model.
* ``spread``: diversity, the mean pairwise distance between samples of one class divided by
  the same for real examples of that class, averaged over classes (1 = as varied as the data;
  → 0 as guidance collapses the class to a point). Digits in the classifier's 8×8, [0, 16] space.
* digits only, ``class_fd``: Fréchet distance in the classifier's features between the samples
  of digit k and the held-out digits of class k, averaged over k; ``class_fd_blur_0.5`` is the
  same for σ = 0.5 blurred real training digits of class k at the same N (the reference: "quality
  at or below blur 0.5" means ``class_fd ≤ class_fd_blur_0.5``). And, at s = 0, the
  unconditional digits bar of ``bench.quality`` on the whole set (FD ≤ blur 0.5, confidence
  ≥ 0.85, class entropy ≥ 2.20, near copies ≤ 5 %).
* 2D only, ``class_sw1``: SW1 between the samples of class k and a fresh draw of class k.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench.common import median_ms, write_results
from diffusion_core.checkpoints import Checkpoint, load_checkpoint
from diffusion_core.data.toy2d import make_2d
from diffusion_core.evaluation.distances import sliced_wasserstein
from diffusion_core.evaluation.guidance import (
    digit_guidance_scores,
    guided_samples,
    nearest_class_2d,
    spread_ratio,
)
from diffusion_core.models import build_model
from diffusion_core.presets import TOY
from diffusion_core.sampling import GuidedModel, sample_final
from diffusion_core.schedule import NoiseSchedule
from diffusion_core.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
DIGITS_COND = ROOT / "assets" / "models" / "digits_cond"
SCALES = (0.0, 1.0, 3.0, 5.0)  # the digit × scale grid's columns (speed)
QUALITY_SCALES = (0.0, 1.0, 2.0, 3.0, 5.0)  # the curves: those and the default s = 2
GRID_SIDE = 21  # the 2D field's grid: 21 × 21 points
FIELD_EXTENT = 1.5  # … on [−1.5, 1.5]² (model coordinates)
DIGIT_SAMPLER = dict(sampler="ddim", steps=25, eta=0.0, spacing="trailing", clip_x0=True)
SAMPLER_2D = dict(sampler="ddim", steps=20, eta=0.0, spacing="trailing")


def digit_curve(ck: Checkpoint, n_per_class: int = 100, scales=QUALITY_SCALES,
                seed: int = 0) -> dict:
    """Per scale: :func:`digit_guidance_scores`, and at s = 0 the unconditional bar."""
    from bench.quality import DIGIT_BAR, calibrate_digits, digit_scores

    labels = torch.arange(10).repeat_interleave(n_per_class)
    x_T = torch.randn(len(labels), 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    rows = {}
    for s in scales:
        t0 = time.perf_counter()
        x = guided_samples(ck.model, ck.schedule, labels, s, x_T, **DIGIT_SAMPLER)
        row = {"scale": s, **digit_guidance_scores(x, labels),
               "sample_s": round(time.perf_counter() - t0, 1)}
        if s == 0:  # s = 0 ignores the labels: the unconditional model, judged as one set
            calib, _ = calibrate_digits(8, len(labels))
            d = digit_scores(x)
            row["unconditional"] = d
            row["bar"] = {
                "frechet_le_blur_0.5": d["frechet_distance"]
                <= calib["blur_0.5"]["frechet_distance"],
                "frechet_blur_0.5": calib["blur_0.5"]["frechet_distance"],
                "confidence_ge_0.85": d["confidence"] >= DIGIT_BAR["confidence"],
                "class_entropy_ge_2.20": d["class_entropy"] >= DIGIT_BAR["class_entropy"],
                "near_copies_le_5pct": d["near_copy_fraction"]
                <= DIGIT_BAR["near_copy_fraction"],
            }
            row["bar"]["met"] = all(v for k, v in row["bar"].items() if isinstance(v, bool))
        rows[f"s={s:g}"] = row
        print(f"  digits s = {s:g}: accuracy {row['accuracy']:.3f}, spread {row['spread']:.3f}, "
              f"class FD {row['class_fd']:.2f} (blur 0.5: {row['class_fd_blur_0.5']:.2f})"
              + (f", bar {row['bar']}" if "bar" in row else ""), flush=True)
    return {"n_per_class": n_per_class, "sampler": DIGIT_SAMPLER, "scales": rows}


def train_2d(dataset: str = "moons", *, steps: int | None = None, seed: int = 0,
             p_uncond: float | None = None) -> tuple[torch.nn.Module, NoiseSchedule]:
    """A conditional ``TOY`` MLP trained on ``dataset``'s 4,000 labelled points (seed 0)."""
    x, y = make_2d(dataset, 4000, seed=0, return_labels=True)
    k = int(y.max()) + 1
    cfg = replace(TOY.train, seed=seed, steps=steps or TOY.train.steps)
    if p_uncond is not None:
        cfg = replace(cfg, p_uncond=p_uncond)
    torch.manual_seed(seed)
    schedule = NoiseSchedule(TOY.schedule)
    trainer = Trainer(build_model(replace(TOY.model, num_classes=k)), schedule, x, cfg,
                      labels=y)
    for _ in trainer.run():
        pass
    return trainer.sampling_model().eval(), schedule


def curve_2d(dataset: str = "moons", n: int = 2000, scales=QUALITY_SCALES,
             seed: int = 0) -> dict:
    """Accuracy, spread and class SW1 per scale for a briefly trained conditional 2D model."""
    t0 = time.perf_counter()
    model, schedule = train_2d(dataset)
    train_s = time.perf_counter() - t0
    ref, ref_y = make_2d(dataset, 4000, seed=1000, return_labels=True)
    k = int(ref_y.max()) + 1
    labels = torch.arange(n) % k
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    rows = {}
    for s in scales:
        x = guided_samples(model, schedule, labels, s, x_T, batch=n, **TOY.sampler.kwargs())
        rows[f"s={s:g}"] = {
            "scale": s,
            "accuracy": round(float((nearest_class_2d(x, dataset) == labels).double().mean()), 4),
            "spread": round(spread_ratio(x, labels, ref, ref_y), 4),
            "class_sw1": round(float(np.mean([sliced_wasserstein(x[labels == c], ref[ref_y == c])
                                              for c in range(k)])), 4),
        }
        print(f"  2D {dataset} s = {s:g}: {rows[f's={s:g}']}", flush=True)
    return {"dataset": dataset, "n": n, "train_s": round(train_s, 2),
            "sampler": TOY.sampler.kwargs(), "scales": rows}


# ---------------------------------------------------------------------------------------------
# Speed


def speed_2d(repeat: int = 20) -> dict:
    model, schedule = train_2d("moons", steps=50)
    lin = torch.linspace(-FIELD_EXTENT, FIELD_EXTENT, GRID_SIDE)
    grid = torch.stack(torch.meshgrid(lin, lin, indexing="xy"), -1).reshape(-1, 2)
    x_T = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    guided = GuidedModel(model, 0, 3.0)

    def field():
        with torch.inference_mode():
            return guided.parts(grid, schedule.T // 2)

    def samples():
        return sample_final(guided, schedule, x_T, **SAMPLER_2D)

    def both():
        field()
        samples()

    return {"grid_points": len(grid), "n_samples": len(x_T), "sampler": SAMPLER_2D,
            "field_2d": median_ms(field, repeat=repeat),
            "samples_2d": median_ms(samples, repeat=repeat),
            "field_plus_samples": median_ms(both, repeat=repeat), "target_ms": 150}


def speed_digit_grid(ck: Checkpoint | None, repeat: int = 10) -> dict:
    if ck is None:  # no shipped model yet: the same architecture, untrained (same cost)
        from diffusion_core.presets import DIGITS

        torch.manual_seed(0)
        cfg = replace(DIGITS.model, image_size=8, num_classes=10)
        model, schedule = build_model(cfg).eval(), NoiseSchedule(DIGITS.schedule)
    else:
        model, schedule = ck.model, ck.schedule
    labels = torch.arange(10).repeat_interleave(len(SCALES))
    scales = torch.tensor(SCALES).repeat(10)
    x_T = torch.randn(len(SCALES), 1, 8, 8, generator=torch.Generator().manual_seed(0)).repeat(
        10, 1, 1, 1)  # the same x_T in every row: one column per scale

    def grid():
        return sample_final(GuidedModel(model, labels, scales), schedule, x_T, **DIGIT_SAMPLER)

    return {"images": len(labels), "scales": list(SCALES), "sampler": DIGIT_SAMPLER,
            "model": "assets/models/digits_cond" if ck is not None else "untrained, same config",
            **median_ms(grid, repeat=repeat, warmup=2), "target_ms": 1000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-digits", action="store_true", help="skip the digits quality curve")
    ap.add_argument("--speed-only", action="store_true",
                    help="only the speed figures (printed; the results file is not written)")
    ap.add_argument("--n-per-class", type=int, default=100)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ck = load_checkpoint(DIGITS_COND) if (DIGITS_COND / "config.json").is_file() else None
    results: dict = {"convention": "ε̃ = ε_u + s·(ε_c − ε_u); s = 0 unconditional, "
                                   "s = 1 conditional, s > 1 guides harder",
                     "threads": args.threads}
    # the speed with the chosen thread count, then with one thread (less exposed to a busy
    # machine: a 2-thread op waits for both threads at every barrier)
    for key, threads in (("speed", args.threads), ("speed_1_thread", 1)):
        torch.set_num_threads(threads)
        load_before = os.getloadavg()
        s2, sg = speed_2d(), speed_digit_grid(ck)
        results[key] = {"threads": threads, "2d": s2, "digit_grid": sg,
                        "load_average_1_5_15": [list(load_before), list(os.getloadavg())]}
        print(f"{threads} thread(s): 2D field {s2['field_2d']['median_ms']} ms + 1000 samples "
              f"{s2['samples_2d']['median_ms']} ms = {s2['field_plus_samples']['median_ms']} ms "
              f"(target 150); digit × scale grid {sg['median_ms']} ms (target 1000); load "
              f"{load_before[0]:.1f}", flush=True)
    torch.set_num_threads(args.threads)
    if args.speed_only:
        return 0
    results["curve_2d"] = {name: curve_2d(name) for name in ("moons", "gaussians8")}
    if ck is not None and not args.no_digits:
        results["digits_cond"] = digit_curve(ck, args.n_per_class)
    write_results("guidance", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
