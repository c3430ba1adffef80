"""What tab 3's live views cost the server's main process per ▶ Train press.

    python -m bench.toy2d_live_cost [--presses 6] [--steps 300] [--no-write]

In a served app the 2D trainer runs in a worker process; the main process (the classroom's
bottleneck: every visitor's events run in it) pays for the progress texts, the loss figures
and, since issue #14, the live views: every ``LIVE_EVERY_S`` of training and once at the end a
copy of the worker's live EMA network (``RemoteRun.peek``), the field at t and 300 DDIM-20
samples (``workflow.live_preview``), two small figures, and their JSON.

This drives ``pages.toy2d.handlers.train`` as the server does (a ``WorkerPool`` of one
worker as the train pool, each yielded figure serialised with ``to_json`` as Gradio does) and
measures the main process's CPU seconds (``time.process_time``: this process's threads, not the
worker's) per press, with the live views on (as shipped) and off (``live_figures`` skipped),
alternating press by press so the machine's load hits both alike. Presses of ``--steps`` (the
preset: 300, about a second: only the final preview) and of ``--long-steps`` (several mid-run
previews). Writes ``bench/results/toy2d_live_cost.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from bench.common import write_results  # noqa: E402

PRESET_ARGS = dict(dataset="moons", n=2000, noise=0.05, seed=0, source="preset", kind="cosine",
                   T=200, shared={"kind": "cosine", "T": 1000}, hidden=128, depth=2,
                   time_embedding="sinusoidal", activation="silu", lr=1e-2, batch_size=512)


def one_press(handlers, steps: int, state, live: bool) -> tuple[float, float, int, object]:
    """(main-process CPU s, wall s, live previews drawn, state) of one press."""
    import gradio as gr

    skip = gr.skip()
    original = handlers.live_figures
    if not live:
        handlers.live_figures = lambda state, t: (skip, skip)
    c0, w0 = time.process_time(), time.perf_counter()
    previews = 0
    try:
        for out in handlers.train(state, **PRESET_ARGS, steps=steps, t=100):
            state = out[0]
            for part in out[1:]:
                if hasattr(part, "to_json"):
                    part.to_json()  # what Gradio sends
            previews += out[5] != skip
    finally:
        handlers.live_figures = original
    return time.process_time() - c0, time.perf_counter() - w0, previews, state


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presses", type=int, default=6)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--long-steps", type=int, default=3000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # as app.configure_threads does for the server
    from diffusion_core.workflows.remote import WorkerPool
    from pages import jobs
    from pages.toy2d import handlers

    pool = WorkerPool(1)
    pool.start()
    jobs.train_pool = lambda: pool  # the served app's path: training in the worker
    results = {}
    try:
        state = None
        for label, steps, presses in (("preset", args.steps, args.presses),
                                      ("long", args.long_steps, max(2, args.presses // 3))):
            rows = {"on": [], "off": []}
            one_press(handlers, steps, state, True)  # warm-up (imports, the worker's first job)
            for i in range(presses):
                for live in ((True, False) if i % 2 == 0 else (False, True)):
                    cpu, wall, previews, state = one_press(handlers, steps, state, live)
                    rows["on" if live else "off"].append((cpu, wall, previews))
            med = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}
            results[label] = {
                "steps": steps, "presses": presses,
                "main_cpu_s_live_on": round(med["on"], 4),
                "main_cpu_s_live_off": round(med["off"], 4),
                "added_cpu_s": round(med["on"] - med["off"], 4),
                "wall_s_live_on": round(statistics.median(r[1] for r in rows["on"]), 3),
                "previews_per_press": statistics.median(r[2] for r in rows["on"]),
            }
            r = results[label]
            print(f"{label:6s} {steps:5d} steps: main CPU {r['main_cpu_s_live_off']:.3f} s → "
                  f"{r['main_cpu_s_live_on']:.3f} s per press with the live views "
                  f"(+{r['added_cpu_s']:.3f} s, {r['previews_per_press']:g} previews, "
                  f"{r['wall_s_live_on']:.2f} s wall)")
    finally:
        pool.close()
    load = list(os.getloadavg())
    results["load_average"] = [round(x, 2) for x in load]
    print(f"load average {load}")
    if not args.no_write:
        write_results("toy2d_live_cost", results)
    return results


if __name__ == "__main__":
    main()
