"""Classroom safety at the server level, on an app launched with tiny limits: a session's state
expires and is freed, idle sessions are dropped, an oversized upload is refused with a
message, an image over the pixel limit is refused with a message, one heavy job per session.
(Private follow-up events and bad-input messages: tests/app/test_bad_input.py.)
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import tests.core.test_remote as remote_tests
from pages import jobs, limits, sessions
from tests.helpers import free_port

gradio_client = pytest.importorskip("gradio_client")

TINY = limits.Limits(state_ttl_s=2, session_idle_s=3, upload_mb=1, upload_megapixels=0.5,
                     cache_minutes=1, train_slots=1, turn_s=1.0)
TRAIN = dict(dataset="moons", n=500, noise=0.05, seed=0, source="preset", kind="cosine", T=50,
             hidden=64, depth=2, time_embedding="sinusoidal", activation="silu", lr=3e-3,
             batch_size=64, steps=20)


@pytest.fixture(scope="module")
def small_server():
    """The whole app under :data:`TINY` limits; yields (url, demo). Restores the limits."""
    import app

    before, suite_pool = limits.ACTIVE, jobs.server_pool()
    demo = app.build_demo(TINY)
    port = free_port()
    janitor = app.serve(demo, server_name="127.0.0.1", server_port=port, quiet=True)
    janitor.stop()  # the tests run its rounds themselves (no timing races)
    try:
        yield f"http://127.0.0.1:{port}/", demo
    finally:
        demo.close()
        # the suite's server (tests/conftest.py) computes in its own workers again
        own_pool = jobs.set_pool(suite_pool)
        if own_pool is not None and own_pool is not suite_pool:
            own_pool.close()
        limits.configure(before)


def _client(url):
    return gradio_client.Client(url, download_files=False, verbose=False)


def _wait(cond, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.2)
    return False


def test_a_sessions_model_expires_and_is_freed(small_server):
    url, demo = small_server
    client = _client(url)
    client.predict(**TRAIN, api_name="/toy_train")
    # Counted after the run: a state stored early in a run that outlives the TTL (the worker
    # process still starting) expires once mid-run, and the run's last yield stores it again.
    freed = sessions.FREED["2D model"]
    # Gradio deletes expired state every second; the delete callback counts it.
    assert _wait(lambda: sessions.FREED["2D model"] > freed), "the 2D model was never freed"
    # The session goes on: it is asked to train again (a message, not a crash).
    _, text = client.predict("ddpm", 10, 0.0, 100, 0, False, api_name="/toy_sample")
    assert text == "Train a model first."


def test_idle_sessions_are_dropped_with_their_state(small_server):
    url, demo = small_server
    client = _client(url)
    client.predict(**TRAIN, api_name="/toy_train")
    holder = demo.state_holder
    mine = set(holder.session_data)
    assert mine, "no session recorded"
    time.sleep(TINY.session_idle_s + 0.5)
    dropped = sessions.drop_idle_sessions(holder, TINY.session_idle_s)
    assert dropped >= 1
    assert not (mine & set(holder.session_data)), "idle sessions are still held"
    assert not (mine & set(holder.time_last_used))


def test_an_oversized_upload_is_refused_with_a_message(small_server):
    url, _ = small_server
    big = b"\0" * (TINY.max_upload_bytes + 1024)
    r = httpx.post(url + "gradio_api/upload", files={"files": ("big.png", big, "image/png")},
                   timeout=30)
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert "size" in r.text.lower(), r.text[:200]


def test_an_image_over_the_pixel_limit_gets_a_message(small_server, tmp_path):
    url, _ = small_server
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((600, 1000, 3), np.uint8)).save(path)  # 0.6 MP > 0.5 MP
    client = _client(url)
    with pytest.raises(Exception, match="too many pixels|more than"):
        client.predict(gradio_client.handle_file(str(path)), 0, api_name="/forward_upload")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((100, 120, 3), np.uint8)).save(small)
    choice, note = client.predict(gradio_client.handle_file(str(small)), 0,
                                  api_name="/forward_upload")  # the image state is hidden
    assert choice == "upload"
    assert "120×100" in note


def test_start_up_clears_old_output_files(tmp_path):
    leftover = sessions.output_dir("sampler")
    (leftover / "old.gif").write_bytes(b"GIF89a")
    sessions.clear_outputs()  # what app.serve does before launching
    assert not Path(leftover).exists()


def test_one_heavy_job_per_session_over_http(small_server):
    url, _ = small_server
    client = _client(url)
    job = client.submit(**{**TRAIN, "steps": 20_000}, api_name="/toy_train")
    assert _wait(lambda: len(job.outputs()) >= 2), "training did not start"
    with pytest.raises(Exception, match="You are already training a 2D model"):
        client.predict("ddpm", 10, 0.0, 100, 0, False, api_name="/toy_sample")
    other = _client(url)  # another visitor is not affected
    _, text = other.predict("ddpm", 10, 0.0, 100, 0, False, api_name="/toy_sample")
    assert text == "Train a model first."
    job.cancel()
    # After ■ Stop the claim is released: the same visitor may sample now.
    assert _wait(lambda: _samples_ok(client)), "the claim was not released after Stop"


def _samples_ok(client) -> bool:
    try:
        _, text = client.predict("ddpm", 10, 0.0, 100, 0, False, api_name="/toy_sample")
    except Exception:
        return False
    return "SW1" in text


def test_a_long_training_gives_its_slot_to_a_waiting_user(small_server):
    url, demo = small_server
    greedy, student = _client(url), _client(url)
    long_job = greedy.submit(**{**TRAIN, "steps": 20_000}, api_name="/toy_train")
    assert _wait(lambda: len(long_job.outputs()) >= 2), "the long training did not start"
    # The one training slot is taken: the student's press waits in Gradio's queue …
    short_job = student.submit(**TRAIN, api_name="/toy_train")
    # … and the long run stops once it has computed for its 1 CPU-second turn, keeping its
    # model.
    text = long_job.result(timeout=30)[1]  # (loss figure, progress text, …)
    assert "Stopped at the end of its turn (1 s of computing; 1 other waiting)" in text, text
    done = short_job.result(timeout=30)[1]
    assert done.startswith("**Done: step 20 / 20**"), done


def test_gradio_summarises_its_queue_rarely_and_plots_skip_the_bokeh_search(small_server):
    """Two per-event costs of Gradio that grow with a class are off (app.py): the queue's
    analytics summary (a pandas table of its last events, after every event) and gr.Plot's
    `import bokeh` (a failed sys.path search for each new session's first figure)."""
    import sys

    import gradio as gr

    _, demo = small_server
    queue = demo._queue
    assert queue.ANAYLTICS_CACHE_FREQUENCY >= 100
    assert queue.ANALYTICS_MAX_EVENTS <= 1000
    records = [{"function": "f", "status": "success", "process_time": 0.1}] * 3
    for _ in range(5):  # a handful of events: the cached (empty) summary, no table built
        queue.events_recorded += 1
        assert queue.compute_analytics_summary(records) == {"functions": {}}
    assert sys.modules.get("bokeh", "absent") is None  # bokeh is not among our packages
    assert gr.Plot().get_config()["bokeh_version"] is None


def test_the_janitor_replaces_the_idle_worker_that_holds_the_most_memory(small_server,
                                                                          monkeypatch):
    url, demo = small_server
    _client(url).predict(**TRAIN, api_name="/toy_train")
    pool = jobs.server_pool()
    assert _wait(lambda: not pool.busy_workers()), "the training worker never came back to the pool"
    run = pool.train(remote_tests.session().trainer, 20)  # a worker that a big job left
    next(run)                                              # holding 100 MB more
    run.call(remote_tests._grow, 100)
    list(run)
    held = {w.process.pid: w.rss_mb() - w.fresh_mb() for w in pool.idle_workers()}
    biggest = max(held, key=held.get)  # grown the most since it was fresh
    assert held[biggest] > 90 and sorted(held.values())[-2] < held[biggest] - 50, held
    janitor = sessions.Janitor(demo, session_idle_s=3600, file_age_s=3600)
    monkeypatch.setattr(sessions, "WORKER_IDLE_S", 0.0)
    try:
        limits.configure(dataclasses.replace(TINY, worker_mb=held[biggest] + 20))
        janitor.tidy()
        assert set(pool.pids()) == set(held)  # nobody above the bar: all kept
        # (its heap is trimmed just after the run: a few MB less; the others grew < 50 MB)
        limits.configure(dataclasses.replace(TINY, worker_mb=held[biggest] - 30))
        janitor.tidy()
        now = set(pool.pids())
        assert len(now) == len(held) and now - set(held) and biggest not in now
        assert now - {biggest} >= set(held) - {biggest}  # the others kept
    finally:
        limits.configure(TINY)
    client = _client(url)  # the fresh worker serves the next visitor
    out = client.predict(**TRAIN, api_name="/toy_train")
    assert any(isinstance(o, str) and "step 20" in o for o in out), out[1:]


@pytest.mark.parametrize(("raw", "nice"), [(None, 10), ("", 10), ("0", 0), (" 19 ", 19)])
def test_worker_priority_from_the_environment(monkeypatch, raw, nice):
    import app

    monkeypatch.delenv("DIFFUSION_LAB_WORKER_NICE", raising=False)
    if raw is not None:
        monkeypatch.setenv("DIFFUSION_LAB_WORKER_NICE", raw)
    assert app.worker_nice() == nice
    assert app.WORKER_NICE == 10  # the default the README states


@pytest.mark.parametrize("raw", ["-1", "20", "abc", "1.5"])
def test_a_bad_worker_priority_is_refused_with_its_range(monkeypatch, raw):
    import app

    monkeypatch.setenv("DIFFUSION_LAB_WORKER_NICE", raw)
    with pytest.raises(ValueError, match="from 0 to 19"):
        app.worker_nice()


def test_the_served_app_runs_its_workers_at_that_priority(small_server):
    import app

    assert jobs.server_pool().nice == app.worker_nice()
