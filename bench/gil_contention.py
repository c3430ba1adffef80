"""Why a busy server trains slowly: the 2D preset's training beside pure-Python work.

    python -m bench.gil_contention [--steps 50]

The server runs every job on a thread of one Python process. Training a small MLP is hundreds
of short torch ops per step; each op lets go of the interpreter lock (GIL) and must take it back
afterwards. While another thread runs pure Python (building a Plotly figure, serialising a
response — what the light views do), taking it back waits for that thread's switch interval
(``sys.getswitchinterval()``, 5 ms by default), op after op: a "convoy". This bench trains the
preset's model (moons, ``--steps`` steps of the preset's recipe, 1 torch thread; 50 by default
so that the worst case ends in a minute or two) in four settings and prints wall and CPU
seconds:

* ``alone``: on a thread, nothing else running;
* ``beside_python_thread``: on a thread, while another thread of the same process spins in pure
  Python (a worst case: a light view that never ends);
* ``beside_python_thread_1ms``: the same with ``sys.setswitchinterval(0.001)``;
* ``in_a_process_beside_python_thread``: in a worker process (its own interpreter lock) while
  the parent's thread spins: what moving heavy jobs to worker processes would give.

Writes ``bench/results/gil_contention.json``.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import sys
import threading
import time

from bench.common import write_results


def train_preset(steps: int) -> tuple[float, float]:
    """(wall s, CPU s of this thread) of ``steps`` steps of the 2D preset's training on moons,
    1 torch thread."""
    import torch

    from diffusion_core.presets import TOY
    from diffusion_core.workflows import toy2d as wf

    torch.set_num_threads(1)
    session = wf.Toy2DSession.create(wf.DataSpec("moons", 2000, 0.05, 0), TOY.schedule,
                                     TOY.model, TOY.train)
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in session.train(steps):
        pass
    return round(time.perf_counter() - t0, 2), round(time.thread_time() - c0, 2)


def _spin(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def _on_thread(fn):
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", fn()))
    th.start()
    th.join()
    return out["r"]


def _beside_spinner(fn):
    stop = threading.Event()
    spinner = threading.Thread(target=_spin, args=(stop,))
    spinner.start()
    try:
        return fn()
    finally:
        stop.set()
        spinner.join()


def _in_process(steps: int) -> tuple[float, float]:
    with mp.get_context("spawn").Pool(1) as pool:
        pool.apply(train_preset, (steps,))  # imports and first-use costs: not in the figure
        return pool.apply(train_preset, (steps,))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    steps = ap.parse_args(argv).steps
    interval = sys.getswitchinterval()
    results: dict = {"switch_interval_s": interval, "steps": steps}
    run = functools.partial(train_preset, steps)
    _on_thread(run)  # warm-up: imports, first-use costs
    results["alone"] = _on_thread(run)
    results["beside_python_thread"] = _beside_spinner(lambda: _on_thread(run))
    sys.setswitchinterval(0.001)
    try:
        results["beside_python_thread_1ms"] = _beside_spinner(lambda: _on_thread(run))
    finally:
        sys.setswitchinterval(interval)
    results["in_a_process_beside_python_thread"] = _beside_spinner(lambda: _in_process(steps))
    for k, v in results.items():
        if isinstance(v, tuple):
            print(f"{k:36s} wall {v[0]:7.2f} s   CPU {v[1]:5.2f} s")
    write_results("gil_contention", {k: (dict(wall_s=v[0], cpu_s=v[1])
                                         if isinstance(v, tuple) else v)
                                     for k, v in results.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
