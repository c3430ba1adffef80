"""What tab 3's field table costs the server, once per ▶ Train press (issue #14).

    python -m bench.toy2d_field_table [--repeat 7] [--no-write]

After a run, ``pages.toy2d.handlers.field_table_view`` computes the learned field at every t
(``workflow.field_table``: one batched forward pass of K · 21² grid points) and packs it into
the field figure's ``layout.meta`` (``figures.field_table_meta``) for the browser's t-slider
fast path. This times, on the 2D preset (moons, 2,000 points, cosine T = 200, MLP 128 × 2)
trained 300 steps, with the server's torch threads (``app.configure_threads``): the table
itself, its packing, the whole handler (the figure included, serialised as Gradio does) beside
one plain ``vector_field`` answer (what each slider step costs the server), and the bytes
sent (the figure's JSON with and without the table). Medians of ``--repeat`` runs; the machine
is shared, so figures under load are upper bounds. Writes ``bench/results/toy2d_field_table.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from bench.common import write_results  # noqa: E402

PRESET_ARGS = dict(dataset="moons", n=2000, noise=0.05, seed=0, source="preset", kind="cosine",
                   T=200, shared={"kind": "cosine", "T": 1000}, hidden=128, depth=2,
                   time_embedding="sinusoidal", activation="silu", lr=1e-2, batch_size=512,
                   steps=300)


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 1)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    import app
    from diffusion_core.workflows import toy2d as wf
    from pages.toy2d import figures, handlers

    app.configure_threads()
    state = list(handlers.train(None, **PRESET_ARGS))[-1][0]
    t = state.T // 2
    table = wf.field_table(state, grid_size=figures.GRID)
    plain = handlers.vector_field(state, t)
    with_table = handlers.field_table_view(state, t)
    meta = figures.field_table_meta(state, table)
    out = {
        "T": state.T, "tabled_t": len(table.t), "grid": figures.GRID,
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        "table_ms": median_ms(lambda: wf.field_table(state, grid_size=figures.GRID),
                              args.repeat),
        "pack_ms": median_ms(lambda: figures.field_table_meta(state, table), args.repeat),
        "handler_ms": median_ms(lambda: handlers.field_table_view(state, t).to_json(),
                                args.repeat),
        "slider_answer_ms": median_ms(lambda: handlers.vector_field(state, t).to_json(),
                                      args.repeat),
        "table_json_bytes": len(json.dumps(meta)),
        "figure_json_bytes_with_table": len(with_table.to_json()),
        "figure_json_bytes_plain": len(plain.to_json()),
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }
    for k, v in out.items():
        print(f"{k:<30} {v}")
    if not args.no_write:
        write_results("toy2d_field_table", out)
    return out


if __name__ == "__main__":
    main()
