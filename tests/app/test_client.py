"""The app launched on a free localhost port and driven over HTTP with gradio_client.

Layer 2 of the UI tests: every named endpoint is there, a streaming training job that is
cancelled really stops, and two clients (two sessions) keep their states apart.
"""

from __future__ import annotations

import json
import time

import pytest

gradio_client = pytest.importorskip("gradio_client")

EXPECTED_ENDPOINTS = {
    "/schedules_plot", "/schedules_csv", "/forward_view", "/forward_image", "/toy_train",
    "/toy_sample", "/toy_vector_field", "/toy_forward", "/toy_data_plot", "/sampler_run",
}


def _client(url):
    return gradio_client.Client(url, download_files=False, verbose=False)


def test_named_endpoints_exist(server):
    api = _client(server).view_api(return_format="dict", print_info=False)
    names = set(api["named_endpoints"])
    missing = EXPECTED_ENDPOINTS - names
    assert not missing, f"missing endpoints: {missing}; have {sorted(names)}"


def _plot_json(value) -> dict:
    """The Plotly figure inside a ``gr.Plot`` output as the client receives it."""
    while isinstance(value, dict) and "plot" in value:
        value = value["plot"]
    return json.loads(value) if isinstance(value, str) else value


def test_schedule_plot_endpoint_returns_the_asked_figure_and_health(server):
    client = _client(server)
    kw = dict(kinds=["linear", "cosine"], primary="linear", T=50, beta_start=1e-4,
              beta_end=0.02, scale_to_T=False, cosine_s=0.008, power=2.0, x_axis="t")
    fig, health = client.predict(**kw, api_name="/schedules_plot")
    traces = _plot_json(fig)["data"]
    names = " ".join(str(t.get("name", "")) + str(t.get("legendgroup", "")) for t in traces)
    assert "linear" in names and "cosine" in names and "sigmoid" not in names, names
    # linear 1e-4..0.02 with T = 50 keeps √ᾱ ≈ 0.77 of the data: the health readout says so
    assert "does not end near pure noise" in health, health
    _, health_scaled = client.predict(**{**kw, "scale_to_T": True}, api_name="/schedules_plot")
    assert "does not end near pure noise" not in health_scaled, health_scaled


TRAIN_KW = dict(dataset="moons", n=1000, noise=0.05, seed=0, source="preset", kind="cosine",
                T=50, hidden=64, depth=2, time_embedding="sinusoidal", activation="silu",
                lr=3e-3, batch_size=128)


def _workers_cpu_s() -> float:
    """CPU seconds the server's worker processes have used (training runs there)."""
    import os

    from pages import jobs

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in jobs.server_pool().pids():
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def test_cancelled_training_really_stops(server):
    client = _client(server)
    quiet = time.time() + 60  # the workers warm up (import torch) after the server starts
    c0 = _workers_cpu_s()
    while time.time() < quiet:
        time.sleep(0.5)
        c0, before = _workers_cpu_s(), c0
        if c0 - before < 0.02:
            break
    job = client.submit(**TRAIN_KW, steps=20_000, api_name="/toy_train")
    deadline = time.time() + 60
    while _workers_cpu_s() - c0 < 0.5 and time.time() < deadline:
        time.sleep(0.05)
    assert _workers_cpu_s() - c0 >= 0.5, "training never started in a worker process"
    job.cancel()
    time.sleep(0.6)  # the Stop requirement: halts within 0.5 s
    after_cancel = _workers_cpu_s()
    time.sleep(1.0)
    assert _workers_cpu_s() - after_cancel < 0.05, "training kept running after cancel"


def test_two_clients_keep_separate_states(server):
    a, b = _client(server), _client(server)
    a.predict(**TRAIN_KW, steps=150, api_name="/toy_train")
    out = a.predict(sampler="ddim", steps=10, eta=0.0, n_samples=200, seed=0, clip_x0=False,
                    api_name="/toy_sample")
    assert "SW1" in str(out[1]), out
    # b never trained: its session has no model, so sampling is refused in plain words
    out_b = b.predict(sampler="ddim", steps=10, eta=0.0, n_samples=200, seed=0, clip_x0=False,
                      api_name="/toy_sample")
    assert "train a model first" in str(out_b[1]).lower(), out_b
    assert "SW1" not in str(out_b[1])


def test_readme_client_example_runs(server, capsys):
    """README "Use the running app from Python": its code runs against the app as written."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use the running app from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert 'Client("http://127.0.0.1:7860/"' in code
    exec(code.replace("http://127.0.0.1:7860/", server), {})
    out = capsys.readouterr().out
    assert "**Done: step 300 / 300**" in out and "**SW1 = " in out and "NN ratio" in out, out
