"""App benchmarks: slider-handler latency, start-up time, memory with 10 sessions.

    python -m bench.ui_bench [--skip-memory]

1. Server-side latency of the slider handlers, called directly (what the server does per
   move): the schedule plot with 5 overlays at T = 1000, and forward noising of a 256×256
   RGB image (moving t). Target: median ≤ 30 ms.
2. Start-up: ``python app.py`` until the page answers HTTP 200, as a ratio to a bare Gradio
   hello-world measured in the same run (median of 3 each). Target: ≤ 1.3×. The UI is built
   without importing torch (pages/common.py) and torch loads right after the server is up, so
   the script also reports when the first schedule plot can be computed (a ``gradio_client``
   call to ``/schedules_plot``, its own connection overhead included): what a visitor waits
   for the first plot.
3. Memory: RSS of the app's server process after 10 client sessions (10 ``gradio_client``
   clients) each trained a 2D model. Target: ≤ 700 MB.

Writes ``bench/results/ui_bench.json``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
HELLO = """
import os
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr
with gr.Blocks() as demo:
    gr.Markdown("hello")
demo.launch(server_name="127.0.0.1", server_port=int(os.environ["GRADIO_SERVER_PORT"]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], port: int) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_http(port: int, timeout: float = 120) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"no HTTP 200 on port {port} after {timeout} s")


def startup(repeat: int = 3) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(HELLO)
        hello = f.name
    from gradio_client import Client

    times: dict[str, list[float]] = {"app": [], "hello": [], "app_first_plot": []}
    for _ in range(repeat):
        for name, args in (("hello", [hello]), ("app", ["app.py"])):
            port = free_port()
            t0 = time.perf_counter()
            proc = start_server(args, port)
            try:
                wait_http(port)
                times[name].append(time.perf_counter() - t0)
                if name == "app":  # and until the first schedule plot is computed (torch)
                    client = Client(f"http://127.0.0.1:{port}/", download_files=False,
                                    verbose=False)
                    client.predict(["linear", "cosine"], "cosine", 1000, 1e-4, 0.02, False,
                                   0.008, 2.0, "t", api_name="/schedules_plot")
                    times["app_first_plot"].append(time.perf_counter() - t0)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    os.unlink(hello)
    app_s, hello_s = statistics.median(times["app"]), statistics.median(times["hello"])
    first_plot_s = statistics.median(times["app_first_plot"])
    return {"app_s": round(app_s, 3), "hello_world_s": round(hello_s, 3),
            "ratio": round(app_s / hello_s, 3), "app_first_plot_s": round(first_plot_s, 3),
            "runs": times, "target_ratio": 1.3}


def handler_latency() -> dict:
    import torch

    from bench.common import median_ms
    from pages import forward, schedules

    torch.set_num_threads(1)
    kinds = ["linear", "cosine", "quadratic", "sigmoid", "polynomial"]

    def schedule_plot():
        schedules.update_schedules(kinds, "cosine", 1000, 1e-4, 0.02, False, 0.008, 2.0, "t")

    state, _ = forward.load_image("china", None, 0)  # 256×256 RGB sample photo
    assert tuple(state["x0"].shape) == (1, 3, 256, 256), state["x0"].shape
    from diffusion_core.schedule import ScheduleConfig

    sched = forward.schedule_state(ScheduleConfig(kind="cosine", T=1000))
    ts = iter(range(10**9))

    def forward_move():
        forward.show_t(state, sched, (next(ts) * 37) % 1000)

    return {"schedule_plot_5_overlays_T1000": median_ms(schedule_plot, repeat=40),
            "forward_noising_256_rgb": median_ms(forward_move, repeat=40),
            "target_median_ms": 30}


def memory(sessions: int = 10, steps: int = 300) -> dict:
    from gradio_client import Client

    port = free_port()
    proc = start_server(["app.py"], port)
    try:
        wait_http(port)
        clients = [Client(f"http://127.0.0.1:{port}/", download_files=False, verbose=False)
                   for _ in range(sessions)]
        # "idle" = torch and the engine loaded (app.py imports them after HTTP 200), one plot
        clients[0].predict(["linear", "cosine"], "cosine", 1000, 1e-4, 0.02, False, 0.008, 2.0,
                           "t", api_name="/schedules_plot")
        time.sleep(1.0)
        rss_idle = rss_mb(proc.pid)
        t0 = time.perf_counter()
        for c in clients:
            c.predict(dataset="moons", n=2000, noise=0.05, seed=0, source="preset",
                      kind="cosine", T=50, hidden=128, depth=3, time_embedding="sinusoidal",
                      activation="silu", lr=3e-3, batch_size=256, steps=steps,
                      api_name="/toy_train")
        train_s = time.perf_counter() - t0
        rss_after = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"sessions": sessions, "steps_each": steps, "rss_idle_mb": rss_idle,
            "rss_after_mb": rss_after, "train_all_s": round(train_s, 1), "target_mb": 700}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-startup", action="store_true")
    args = ap.parse_args()
    from bench.common import write_results

    results = {"latency": handler_latency()}
    for k, v in results["latency"].items():
        if isinstance(v, dict):
            print(f"latency {k}: median {v['median_ms']:.1f} ms (p90 {v['p90_ms']:.1f})")
    if not args.skip_startup:
        results["startup"] = startup()
        s = results["startup"]
        print(f"start-up: app {s['app_s']:.2f} s, hello world {s['hello_world_s']:.2f} s, "
              f"ratio {s['ratio']:.2f}; first schedule plot computed (gradio_client) at "
              f"{s['app_first_plot_s']:.2f} s")
    if not args.skip_memory:
        results["memory"] = memory()
        m = results["memory"]
        print(f"memory: {m['rss_idle_mb']:.0f} MB idle → {m['rss_after_mb']:.0f} MB after "
              f"{m['sessions']} sessions trained")
    write_results("ui_bench", results)


if __name__ == "__main__":
    main()
