"""The sampler lab's speed (and what it shows): the 2D comparison, sweep and inversion round
trip on the trained 2D preset, and the digits model's live sweep and interpolation.

    python -m bench.sampler_lab [--threads 1] [--repeat 5]

The target (issue 11): the 2D comparison of 4 samplers on 1,000 points with 300 paths drawn
in ≤ 2 s — measured here as the core run (sampling + scoring, ``core_s``) and as what a click
costs on the server (core + the Plotly figure serialised to JSON, ``with_figure_s``), the
median of ``--repeat`` warm runs. One torch thread by default: the app gives each job half the
cores (``app.configure_threads``), one on the 2-vCPU Space.

The 2D model is the app's preset (``presets.TOY``: cosine T = 200, 300 training steps on 2,000
moons points, seed 0); the samplers are the lab's defaults (DDPM β̃ full chain, DDIM η = 0 and
η = 1 at 20 trailing steps, DPM-Solver++ 2M at 10 trailing steps, x̂0 clipped). Writes
``bench/results/sampler_lab.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from bench.common import write_results
from diffusion_core import presets
from diffusion_core.checkpoints import load_checkpoint
from diffusion_core.data.digits import load_digits_images
from diffusion_core.sampling import SamplerSettings
from diffusion_core.workflows import sampler_lab as lab
from diffusion_core.workflows import toy2d as wf

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "models"
TARGET_S = 2.0
SWEEP_STEPS = (2, 5, 10, 20, 50, 100, 200)
INVERSION_STEPS = (2, 5, 10, 20, 50, 100, 195)
DIGIT_SWEEP_STEPS = (5, 10, 20, 50)


def lab_configs() -> list[SamplerSettings]:
    from pages.toy2d.lab import DEFAULT_SLOTS

    return [SamplerSettings(sampler=s, steps=n, eta=e if s == "ddim" else 0.0, variance=v,
                            spacing=sp, clip_x0=True) for s, n, e, v, sp in DEFAULT_SLOTS]


def short(c: SamplerSettings) -> str:
    """``"ddim η=0 trailing"``: a sweep line's name (its step count varies)."""
    eta = f" η={c.eta:g}" if c.sampler == "ddim" else ""
    return f"{c.sampler}{eta} {c.spacing}"


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds of ``repeat`` calls (after one warm-up call) and the last result."""
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run_all(it):
    for _ in it:
        pass
    return it


def bench_2d(repeat: int) -> dict:
    from pages.toy2d.lab import InversionRecord, comparison_figure, inversion_figure, sweep_figure

    p = presets.TOY
    t0 = time.perf_counter()
    session = wf.Toy2DSession.create(wf.DataSpec("moons", 2000, 0.05, 0), p.schedule, p.model,
                                     p.train)
    run_all(session.train())
    train_s = time.perf_counter() - t0
    configs = lab_configs()
    n, paths = 1000, 300

    def compare():
        judge = lab.toy2d_judge(session, n)
        return run_all(lab.SamplerComparison(session.model, session.schedule, configs, n, 0,
                                             path_points=paths, judge=judge))

    def compare_and_draw():
        cmp = compare()
        return cmp, comparison_figure(session, cmp, [0, 1, 2, 3]).to_json()

    core_s, cmp = timed(compare, repeat)
    fig_s, (_, payload) = timed(compare_and_draw, repeat)
    result = {
        "train_s": round(train_s, 2),
        "comparison": {
            "samplers": [c.describe(session.T) for c in configs], "points": n, "paths": paths,
            "core_s": round(core_s, 3), "with_figure_s": round(fig_s, 3),
            "figure_json_kb": round(len(payload) / 1024, 1), "target_s": TARGET_S,
            "meets_target": fig_s <= TARGET_S,
            "runs": [{"label": r.label, "nfe": r.nfe, "sw1": round(r.scores["sw1"], 4),
                      "floor": round(r.scores["floor"], 4), "nn": round(r.scores["nn"], 3),
                      "path_length_over_chord": round(r.path_length / r.path_chord, 2),
                      "sample_s": round(r.seconds, 3)} for r in cmp.runs],
        },
    }
    print(f"2D comparison: core {core_s:.3f} s, with figure {fig_s:.3f} s "
          f"(target ≤ {TARGET_S} s), figure {len(payload) / 1024:.0f} kB")

    def sweep():
        judge = lab.toy2d_judge(session, n)
        s = run_all(lab.QualitySweep(session.model, session.schedule, configs, SWEEP_STEPS,
                                     judge, n, 0))
        sweep_figure(s, [0, 1, 2, 3], [short(c) for c in configs]).to_json()
        return s

    sweep_s, sw = timed(sweep, 1)
    result["sweep"] = {
        "steps": list(SWEEP_STEPS), "points": n, "seconds": round(sweep_s, 2),
        "sw1": {short(c): [round(float(v), 4) for v in sw.curve(i, "sw1")[1]]
                for i, c in enumerate(configs)},
        "floor": round(sw.judge.metrics[0].reference, 4)}
    print(f"2D sweep ({len(sw.plan)} runs): {sweep_s:.2f} s")

    top = lab.noisy_top(session.schedule)
    x0 = session.data[:n]

    def inversion(**kw):
        def go():
            inv = run_all(lab.InversionSweep(session.model, session.schedule, x0,
                                             INVERSION_STEPS, **kw))
            inversion_figure(InversionRecord(x0, tuple(inv.trips), "noise", session.T),
                             10).to_json()
            return inv
        return go

    inv_s, inv = timed(inversion(spacing="trailing", top=top), 1)
    lead = inversion(spacing="leading")()
    result["inversion"] = {
        "points": n, "seconds": round(inv_s, 2), "top": top,
        "rms_same_end": {tr.steps: round(tr.rms, 4) for tr in inv.trips},
        "rms_leading": {tr.steps: round(tr.rms, 4) for tr in lead.trips}}
    print(f"2D inversion: {inv_s:.2f} s; RMS {result['inversion']['rms_same_end']}")
    return result


def bench_digits() -> dict:
    ck = load_checkpoint(ASSETS / "digits")
    shape = (1, ck.model_config.image_size, ck.model_config.image_size)
    n = 100
    t0 = time.perf_counter()
    judge = lab.image_judge(ck.dataset["name"], shape, n)
    judge_s = time.perf_counter() - t0
    configs = [SamplerSettings("ddim", 1, 0.0, "trailing", clip_x0=True),
               SamplerSettings("ddpm", 1, spacing="trailing", clip_x0=True),
               SamplerSettings("dpmpp_2m", 1, spacing="trailing", clip_x0=True)]
    t0 = time.perf_counter()
    sw = run_all(lab.QualitySweep(ck.model, ck.schedule, configs, DIGIT_SWEEP_STEPS, judge, n, 0,
                                  shape=shape))
    sweep_s = time.perf_counter() - t0
    held = load_digits_images(shape[1], "test")
    a = held.images[int((held.labels == 3).nonzero()[0, 0])]
    b = held.images[int((held.labels == 8).nonzero()[0, 0])]
    t0 = time.perf_counter()
    interp = lab.LatentInterpolation(ck.model, ck.schedule, a, b, frames=8, steps=50)
    run_all(interp)
    interp_s = time.perf_counter() - t0
    res = interp.result()
    out = {
        "judge_first_s": round(judge_s, 2),
        "sweep": {"images": n, "steps": list(DIGIT_SWEEP_STEPS), "seconds": round(sweep_s, 2),
                  "frechet_distance": {short(c): [
                      round(float(v), 3) for v in sw.curve(i, "frechet_distance")[1]]
                      for i, c in enumerate(configs)},
                  "real_reference": round(judge.metrics[0].reference, 3)},
        "interpolation": {"steps": 50, "spacing": "leading", "frames": 8,
                          "seconds": round(interp_s, 2),
                          "recon_rms": [round(v, 4) for v in res.recon_rms]},
    }
    print(f"digits sweep: {sweep_s:.1f} s (judge {judge_s:.1f} s first); interpolation "
          f"{interp_s:.2f} s, reconstruction RMS {out['interpolation']['recon_rms']}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-digits", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {"threads": args.threads, "repeat": args.repeat, "toy2d": bench_2d(args.repeat)}
    if not args.no_digits and (ASSETS / "digits").is_dir():
        results["digits"] = bench_digits()
    write_results("sampler_lab", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
