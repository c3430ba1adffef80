"""What one student costs the server: CPU seconds per endpoint, and the class size it implies.

    python -m bench.server_cost [--seconds 90]

Starts ``python app.py`` as the soak does (:class:`bench.soak.Server`), then ONE student runs
the soak's loop of a class (:func:`bench.soak.normal_user`: tabs 1 → 4, the 2D preset's ▶ Train,
500 samples, 16 digit images…) with no think time and alone on the server, so each call's cost
is its own. Around every call it reads the server's CPU time (user + system of ``app.py`` and its
children, from /proc), so the figures include everything the server does for the call: the
handler, Plotly and image encoding, Gradio's queue and streaming.

Reports per endpoint the calls, mean server CPU seconds and mean wall seconds; the CPU seconds
of one whole loop; and the *capacity*: how many students at the soak's pace (one click every
``think_s`` seconds on average, 2–8 s → 5 s) the machine's cores keep up with,
``cores × loop_think_s / loop_cpu_s``, where ``loop_think_s`` is the loop's clicks × 5 s. Above
it, queues grow whatever the scheduling. Writes ``bench/results/server_cost.json``.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import threading
import time

from bench.common import write_results
from bench.soak import Server, Soak, SoakConfig, _descendants, new_client, normal_user

MEAN_THINK_S = 5.0  # the soak's think time, uniform on 2–8 s


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in (pid, *_descendants(pid)):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(seconds: float, seed: int = 0) -> dict:
    cfg = SoakConfig(users=1, greedy=0, seconds=seconds, bad_input_rate=0.0, verbose=False)
    with Server({}) as server:
        pid = server.proc.pid
        soak = Soak(cfg, server.url)
        client = new_client(server.url)
        soak.read_api(client)
        costs: dict[str, list[tuple[float, float, str]]] = collections.defaultdict(list)
        call = soak.call

        def measured(client_, name, kind, endpoint, kw, **extra):
            c0, w0 = server_cpu_s(pid), time.perf_counter()
            r = call(client_, name, kind, endpoint, kw, **extra)
            costs[endpoint].append((server_cpu_s(pid) - c0, time.perf_counter() - w0,
                                    r.outcome))
            return r

        soak.call = measured
        soak.think = lambda rng: not soak.stop.is_set()  # no think time: back to back
        threading.Timer(seconds, soak.stop.set).start()
        c0, t0 = server_cpu_s(pid), time.perf_counter()
        normal_user(soak, client, "student", random.Random(seed))
        cpu, wall = server_cpu_s(pid) - c0, time.perf_counter() - t0
        loops = soak.loops["student"]
    endpoints = {
        ep: {"calls": len(v), "ok": sum(o == "ok" for *_, o in v),
             "cpu_s_mean": round(sum(c for c, *_ in v) / len(v), 3),
             "wall_s_mean": round(sum(w for _, w, _ in v) / len(v), 3)}
        for ep, v in sorted(costs.items())}
    calls = sum(e["calls"] for e in endpoints.values())
    loop_cpu = cpu / max(loops, 1)
    loop_think = calls / max(loops, 1) * MEAN_THINK_S
    cores = os.cpu_count() or 1
    return {"seconds": round(wall, 1), "loops": loops, "server_cpu_s": round(cpu, 1),
            "loop_cpu_s": round(loop_cpu, 2), "clicks_per_loop": round(calls / max(loops, 1), 1),
            "loop_think_s": round(loop_think, 1), "cores": cores,
            "capacity_students": round(cores * loop_think / loop_cpu, 1),
            "endpoints": endpoints}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=90.0)
    args = ap.parse_args(argv)
    r = measure(args.seconds)
    for ep, e in r["endpoints"].items():
        print(f"{ep:20s} {e['calls']:4d} calls  server CPU {e['cpu_s_mean']:.3f} s  "
              f"wall {e['wall_s_mean']:.3f} s")
    print(f"one loop: {r['clicks_per_loop']} clicks, {r['loop_cpu_s']} server CPU s; at the "
          f"soak's pace ({r['loop_think_s']} s of looking per loop) {r['cores']} cores keep up "
          f"with about {r['capacity_students']} students")
    write_results("server_cost", r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
