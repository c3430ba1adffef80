"""The image-training tab's speed: the first panel after ▶ Train, a panel's cost, steps/s.

    python -m bench.image_train_view [--threads 1] [--repeat 5] [--quick]

In-process, as the server computes one job (``--threads`` torch threads; the app gives each job
half the cores: 1 on a 2-vCPU Space), warm as after ``app.warm_up`` (torch imported, the digits
loaded, one panel drawn so the first call's one-off costs are not counted):

* ``first_panel_s``: from calling the tab's ▶ Train handler (``pages.imagetrain.train``, the
  tab's defaults: 8×8 digits, quick recipe, cosine T = 1000) to its first output, which carries
  the panel of step 0 — per model. Target (issue #12): ≤ 5 s.
* ``panel_ms``: median time of ``ImageTrainSession.panel()`` (8 images: x_t, x̂0 and a 10-step
  DDIM run from the EMA weights) per model and image shape. Target: ≤ 500 ms at 16×16.
* ``steps_per_s``: training steps per second of each model and shape (the recipe's batch).
* ``yield_gap_s``: the longest gap between two outputs of a 6-second run (■ Stop waits at most
  about this long), per model on 16×16 digits.

Writes bench/results/image_train_view.json (with the machine's load average at the end: on a
shared machine the times are upper bounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="bench-imagetrain-"))

import torch  # noqa: E402

from bench.common import write_results  # noqa: E402
from diffusion_core.schedule import ScheduleConfig  # noqa: E402
from diffusion_core.workflows import image_train as wf  # noqa: E402

SHAPES = {"digits8": (1, 8), "digits": (1, 16), "gradients": (3, 16)}
TAB_DEFAULTS = dict(files=None, size=16, channels=1, recipe="quick", kind="cosine", T=1000)


def session(kind: str, dataset: str, steps: int = 10_000) -> wf.ImageTrainSession:
    data, desc, _ = wf.load_images(dataset)
    cfg = wf.train_config(dataset, "quick", steps=steps)
    return wf.start_or_continue(None, data, desc, kind, ScheduleConfig(kind="cosine", T=1000),
                                cfg)[0]


def first_panel(kind: str, repeat: int) -> float:
    """Median seconds from calling the ▶ Train handler to its first output (a new model)."""
    from pages import imagetrain

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        gen = imagetrain.train(None, "digits8", model_kind=kind, steps=50, **TAB_DEFAULTS)
        out = next(gen)
        times.append(time.perf_counter() - t0)
        assert out[0].step == 0 and out[2].count("<img") == 3  # the panel of step 0
        gen.close()
    return statistics.median(times)


def panel_ms(s: wf.ImageTrainSession, repeat: int) -> float:
    s.panel()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        s.panel()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def steps_per_s(s: wf.ImageTrainSession, steps: int) -> float:
    run = s.train(steps + 3)
    for _ in range(3):
        next(run)
    t0 = time.perf_counter()
    for _ in run:
        pass
    return steps / (time.perf_counter() - t0)


def yield_gap(kind: str, seconds: float) -> float:
    """The longest gap between two outputs of the handler in ``seconds`` of training."""
    from pages import imagetrain

    gen = imagetrain.train(None, "digits", model_kind=kind, steps=20_000, **TAB_DEFAULTS)
    last, gap, start = time.perf_counter(), 0.0, time.perf_counter()
    for _ in gen:
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
        if now - start > seconds:
            break
    gen.close()
    return gap


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a smoke run (fewer repeats/steps)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeat = 2 if args.quick else args.repeat
    steps = 5 if args.quick else 20
    session("pixel_mlp", "digits8").panel()  # warm: torch, the digits, first calls
    session("unet_small", "digits8").panel()

    results: dict = {"threads": args.threads, "first_panel_s": {}, "panel_ms": {},
                     "steps_per_s": {}, "yield_gap_s": {}}
    for kind in wf.MODEL_KINDS:
        results["first_panel_s"][kind] = round(first_panel(kind, repeat), 3)
        print(f"first panel, {kind:12s} 8×8 digits: {results['first_panel_s'][kind]:.2f} s")
    for kind in wf.MODEL_KINDS:
        for dataset, (c, size) in SHAPES.items():
            name = f"{kind} {c}x{size}x{size}"
            s = session(kind, dataset)
            results["panel_ms"][name] = round(panel_ms(s, repeat), 1)
            results["steps_per_s"][name] = round(steps_per_s(s, steps), 2)
            print(f"{name:24s} panel {results['panel_ms'][name]:7.1f} ms · "
                  f"{results['steps_per_s'][name]:7.2f} steps/s (batch "
                  f"{s.trainer.config.batch_size})")
    for kind in wf.MODEL_KINDS:
        results["yield_gap_s"][kind] = round(yield_gap(kind, 2.0 if args.quick else 6.0), 3)
        print(f"longest gap between outputs, {kind} 16×16: {results['yield_gap_s'][kind]:.2f} s")
    results["targets"] = {"first_panel_s": 5.0, "panel_ms_16px": 500.0}
    # The machine's load while it ran (a shared 2-vCPU machine: figures from a busy one are
    # upper bounds; compare ratios within one run only).
    results["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    if not args.quick:
        write_results("image_train_view", results)
    return results


if __name__ == "__main__":
    main()
