"""Soak: a class of concurrent ``gradio_client`` sessions against ``python app.py`` for minutes.

    python -m bench.soak [--users 20] [--greedy 2] [--minutes 5 | --seconds S]
                         [--out bench/results/soak.json] [--no-expiry-wait]

The server. ``python app.py`` in its own process on a free localhost port, with a fresh
``GRADIO_TEMP_DIR`` and short lifetimes so that the end of the run can check that memory and
files are given back: ``DIFFUSION_LAB_SESSION_IDLE_S`` = 60 s (a session without any event for
that long is dropped with its state) and ``DIFFUSION_LAB_CACHE_MINUTES`` = 0.5 (flags change
them). The per-state time-to-live keeps the app's default (hours): it counts from a state's last
*change*, so a short one would take the image from under a user who only moves a slider.
``DIFFUSION_LAB_TRAIN_SECONDS`` and ``DIFFUSION_LAB_SAMPLE_SECONDS`` are passed only when
given (``--train-seconds``, ``--sample-seconds``); any other ``DIFFUSION_LAB_*`` variable set
here is inherited. Ready means HTTP 200 on ``/`` and a first ``/schedules_plot`` answered (the
app imports torch after it is up).

The users. One thread and one ``gradio_client.Client`` (one Gradio session) each, arriving over
the first few seconds. Think times between calls are 2–8 s (a student looks at each view for a
few seconds before the next click), drawn from a seeded RNG per user.
- A *normal* user loops over what a class does: 1–3 schedule plots (random kinds, T, scaling);
  on tab 2 an image (first loop, then now and then), a schedule and x_t at 3 values of t; then,
  with probability ``--bad-input-rate``, one deliberate bad input (a value out of range, an
  empty box, text in a number) that must be answered with a readable message; on tab 3 the data
  plot of a random toy set, ▶ Train with the 2D preset (``presets.TOY``: width, depth, batch,
  lr, steps), the vector field at 2 values of t and 500 samples with DDPM over the preset's T;
  on tab 4 16 images with DDIM in 25 steps from the default model, then 2 frames of the chain.
- A *greedy* user always asks for the largest jobs, with no think time: ▶ Train with width 512,
  depth 6, batch 4096 and 100,000 steps, then 64 images over the checkpoint's full DDPM chain.
  A refusal with a message is expected; the greedy user then asks for the largest job the
  message allows (the largest number it names below the one asked for the input it names, e.g.
  "Steps must be … from 1 to 20,000"; half the batch after "too big") and keeps that size.

Per call (``client.submit``, polled every 25 ms): *total* = submit → result; *queue wait* =
submit → the client sees the job start (status PROCESSING or later; includes joining the queue
over HTTP and the client's own 50 ms read cadence, so about ±0.07 s); *first output* = submit →
the first streamed output of a generator (the result for a plain event). Outcome: *ok*;
*refused*, an expected refusal: a ``gr.Error`` with a readable message that names a cap or a busy
slot (:data:`REFUSAL_WORDS`), or any readable message for a deliberate bad input; *error*:
anything else, a bare "Error" with no text, a missing endpoint, a light call over
:data:`LIGHT_TIMEOUT_S`; *cut*: a job the bench cancelled because the run ended.

Every 5 s a monitor thread reads the server's RSS (VmRSS of ``app.py`` and its child processes,
from /proc) and the files and bytes under ``GRADIO_TEMP_DIR`` (Gradio's cache plus the app's
own output files). After the run the bench cancels heavy jobs still running, closes every
client (like closing the tabs), waits max(idle time, 2 × cache age) + 30 s and samples both
once more. The *start* RSS is read after one warm-up visit that ran each kind of job once
(▶ Train, 2D samples, images): torch's first-use costs (kernels, thread pools, the checkpoint)
are no leak. The RSS before that visit is reported as ``idle_mb``.

Targets (PASS / FAIL; SKIP when the run could not measure one):
0. ``server_up``: the app ran to the end (if it dies the soak stops; its exit code and last
   lines are reported).
1. ``errors``: 0 errors (expected refusals and cut jobs are counted apart).
2. ``light_p95_during_greedy``: p95 of the total time of the ok light calls (:data:`LIGHT`) that
   were submitted while a greedy user's heavy job was running on the server ≤ 1 s.
3. ``preset_train_start``: every normal user's preset ▶ Train shows its first streamed output
   within 10 s of the press (the max over the run; a press cut by the end before any output
   counts with the time it waited).
4. ``rss_flat``: max RSS over the second half of the run ≤ max over the first half + 50 MB. A
   max-vs-max test shrugs off the sawtooth of the allocator and the 5 s sampling; growth that
   goes on (a leak per request or per session) shows up as a higher second half. The slope of a
   least-squares line through the second half (MB/min) is reported, not judged.
5. ``rss_after_expiry``: RSS after the expiry wait ≤ the start RSS + 100 MB.
6. ``cache_bounded``: after the expiry wait the cache holds ≤ max(5 MB, 10 % of its peak),
   i.e. old files are deleted; the peak (bytes and files) is reported.

Writes ``bench/results/soak.json`` (or ``--out``): the config, the server's limits, per-endpoint
counts and p50/p95 of total time, queue wait and first output, per-user counts, the first error
messages, the refusals by message, the RSS and cache series and the verdicts. The bench process
shares the machine with the server; its own CPU seconds are reported as ``bench_cpu_s``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "soak.json"

LIGHT = ("/schedules_plot", "/forward_image", "/forward_schedule", "/forward_frame",
         "/forward_view", "/toy_data_plot", "/toy_vector_field", "/sampler_model",
         "/sampler_frame")
HEAVY = ("/toy_train", "/toy_sample", "/sampler_run")
# A gr.Error whose message contains one of these is a cap or a busy slot: an expected refusal.
REFUSAL_WORDS = ("limit", "already", "at most", "too big", "one job at a time", "try again",
                 "busy")
# What gradio_client says when the handler raised something other than gr.Error: no text for
# the user (a bare "Error" in the browser).
BARE_ERROR = "has raised an exception but has not enabled verbose error reporting"
LIGHT_TIMEOUT_S = 120.0
POLL_S = 0.025
GREEDY_TRAIN = dict(hidden=512, depth=6, batch_size=4096, steps=100_000)
GREEDY_IMAGES = 64
NORMAL_IMAGES, NORMAL_IMAGE_STEPS = 16, 25
TOY_SAMPLES = 500
TARGETS = {"light_p95_s": 1.0, "train_start_s": 10.0, "rss_flat_mb": 50.0,
           "rss_expiry_mb": 100.0, "cache_floor_mb": 5.0, "cache_fraction": 0.10}


@dataclass(frozen=True)
class SoakConfig:
    """One soak run. ``seconds`` is the time users run, from the first user's arrival."""

    users: int = 20
    greedy: int = 2
    seconds: float = 300.0
    seed: int = 0
    think_s: tuple[float, float] = (2.0, 8.0)
    ramp_s: float = 5.0  # users arrive evenly over this (at most a fifth of the run)
    bad_input_rate: float = 0.15
    session_idle_s: float = 60.0
    cache_minutes: float = 0.5
    train_seconds: float | None = None  # DIFFUSION_LAB_TRAIN_SECONDS if given
    sample_seconds: float | None = None  # DIFFUSION_LAB_SAMPLE_SECONDS if given
    wait_expiry: bool = True
    calls_out: Path | None = None  # every request as one JSON line (who waited behind whom)
    expiry_margin_s: float = 30.0  # the app checks for idle sessions every so often
    warm_visit: bool = True  # one visit runs each kind of job before the start RSS is read
    sample_every_s: float = 5.0
    verbose: bool = True

    def server_env(self) -> dict[str, str]:
        env = {"DIFFUSION_LAB_SESSION_IDLE_S": f"{self.session_idle_s:g}",
               "DIFFUSION_LAB_CACHE_MINUTES": f"{self.cache_minutes:g}"}
        if self.train_seconds is not None:
            env["DIFFUSION_LAB_TRAIN_SECONDS"] = f"{self.train_seconds:g}"
        if self.sample_seconds is not None:
            env["DIFFUSION_LAB_SAMPLE_SECONDS"] = f"{self.sample_seconds:g}"
        return env

    def expiry_wait_s(self) -> float:
        return max(self.session_idle_s, 2 * 60 * self.cache_minutes) + self.expiry_margin_s


# ---------------------------------------------------------------------------------------------
# The server process and what it holds
# ---------------------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    """``pid`` and all its child processes (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def rss_mb(pid: int, *, children: bool = True) -> float | None:
    """Resident memory of ``pid`` and (``children``) its descendants in MB (None when ``pid``
    is gone)."""
    if not Path(f"/proc/{pid}/status").exists():
        return None
    total_kb = 0
    for p in _descendants(pid) if children else [pid]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            pass
    return round(total_kb / 1024, 1)


def process_memory(pid: int) -> list[list]:
    """``[pid, RSS MB, anonymous RSS MB, PSS MB]`` of ``pid`` and each descendant (its
    workers). Anonymous memory is the process's own (heap, tensors); RSS adds every page of the
    shared libraries it touched (torch's, counted again in each process); PSS shares those
    pages out among the processes that map them, so PSS adds up across processes."""
    out = []
    for p in _descendants(pid):
        try:
            fields = dict(line.split(":", 1) for line in
                          Path(f"/proc/{p}/status").read_text().splitlines() if ":" in line)
            rollup = dict(line.split(":", 1) for line in
                          Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()[1:]
                          if ":" in line)
            out.append([p, *(round(int(f.split()[0]) / 1024, 1) for f in
                             (fields["VmRSS"], fields["RssAnon"], rollup["Pss"]))])
        except (OSError, KeyError, ValueError, IndexError):
            pass
    return out


def cpu_s(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) so far of ``pid`` alone and of its live descendants (its
    workers); None when ``pid`` is gone."""
    tick = os.sysconf("SC_CLK_TCK")

    def one(p: int) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    if not Path(f"/proc/{pid}/stat").exists():
        return None
    return one(pid), sum(one(p) for p in _descendants(pid) if p != pid)


def dir_usage(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``; files deleted while it walks are skipped."""
    files = size = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                size += os.stat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


class Server:
    """``python app.py`` on a free port with its own temp dir; ``with`` starts and stops it."""

    def __init__(self, env: dict[str, str], *, timeout_s: float = 180.0) -> None:
        self.extra_env = env
        self.timeout_s = timeout_s
        self.temp_dir = Path(tempfile.mkdtemp(prefix="diffusion-lab-soak-"))
        self.log_path = Path(tempfile.mkstemp(prefix="diffusion-lab-soak-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.startup_s = math.nan

    def __enter__(self) -> Server:
        from bench.ui_bench import free_port, wait_http

        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        env = {**os.environ, **self.extra_env, "GRADIO_SERVER_PORT": str(port),
               "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_TEMP_DIR": str(self.temp_dir),
               "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
               "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}  # a crash leaves a trace
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(port, timeout=self.timeout_s)
            self._warm(t0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.startup_s = round(time.perf_counter() - t0, 2)
        return self

    def _warm(self, t0: float) -> None:
        """Until a first schedule plot comes back (torch and the engine are loaded)."""
        last = None
        while time.perf_counter() - t0 < self.timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                client = new_client(self.url)
                client.predict(api_name="/schedules_plot")
                client.close()
                return
            except Exception as e:  # noqa: BLE001 — not ready yet: retry until the timeout
                last = e
                time.sleep(0.5)
        raise TimeoutError(f"app.py never answered /schedules_plot: {last!r}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def cleanup(self) -> None:
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_summary(self) -> dict:
        """What the server printed: tracebacks, lines per log level, the top warnings/errors."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        levels = Counter(m.group(1) for line in lines
                         if (m := re.search(r" (DEBUG|INFO|WARNING|ERROR|CRITICAL) ", line)))
        raised = Counter(re.sub(r"^[\d-]+ [\d:,]+ ", "", line.strip())[:160] for line in lines
                         if re.search(r" (WARNING|ERROR|CRITICAL) ", line)
                         or re.match(r"^[\w.]+(Error|Exception)\b.*:", line.strip()))
        return {"tracebacks": sum("Traceback (most recent call last)" in line for line in lines),
                "levels": dict(levels), "top_problems": dict(raised.most_common(10)),
                "last_lines": lines[-10:]}


class Monitor(threading.Thread):
    """Samples the server's RSS and the temp dir every ``every_s`` seconds, with a phase label."""

    def __init__(self, server: Server, clock, every_s: float, on_exit=None) -> None:
        super().__init__(name="soak-monitor", daemon=True)
        self.server, self.clock, self.every_s = server, clock, every_s
        self.on_exit = on_exit  # called once with the exit code if the server dies
        self.phase = "start"
        self.rss: list[list] = []  # [t_s, phase, MB]
        self.main_rss: list[list] = []  # [t_s, MB of the server process alone, not its workers]
        self.processes: list[list] = []  # [t_s, process_memory(): each process's RSS and own]
        self.cpu: list[list] = []  # [t_s, CPU s of the server process, CPU s of its workers]
        self.cache: list[list] = []  # [t_s, phase, files, MB]
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def sample(self) -> tuple[float | None, float]:
        """Take one sample now; returns (RSS MB or None if the server is gone, cache MB)."""
        code = self.server.proc.poll()
        if code is not None and self.on_exit is not None:
            self.on_exit(code)
            self.on_exit = None
        rss = None if code is not None else rss_mb(self.server.proc.pid)
        main = None if code is not None else rss_mb(self.server.proc.pid, children=False)
        files, size = dir_usage(self.server.temp_dir)
        t = round(self.clock(), 1)
        with self._lock:
            self.rss.append([t, self.phase, rss])
            self.main_rss.append([t, main])
            if code is None:
                self.processes.append([t, process_memory(self.server.proc.pid)])
            cpu = None if code is not None else cpu_s(self.server.proc.pid)
            if cpu is not None:
                self.cpu.append([t, round(cpu[0], 2), round(cpu[1], 2)])
            self.cache.append([t, self.phase, files, round(size / 2**20, 2)])
        return rss, size / 2**20

    def run(self) -> None:
        while not self._stop_event.wait(self.every_s):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# One call, measured and classified
# ---------------------------------------------------------------------------------------------


def new_client(url: str):
    from gradio_client import Client

    return Client(url, download_files=False, verbose=False)


@dataclass
class Call:
    """One request of one user. Times in seconds; ``start`` and ``run_*`` since the soak start."""

    user: str
    role: str
    endpoint: str
    start: float
    outcome: str = "ok"  # ok | refused | error | cut
    total_s: float | None = None
    queue_s: float | None = None
    first_s: float | None = None
    run_start: float | None = None  # when the job was seen running on the server
    run_end: float | None = None
    message: str = ""
    deliberate: bool = False  # a deliberate bad input
    tag: str = ""  # e.g. "preset_train"
    result: object = field(default=None, repr=False)


def classify(exc: BaseException, *, any_message: bool) -> tuple[str, str]:
    """(outcome, message) of a failed call: ``refused`` (expected) or ``error``.

    A readable ``gr.Error`` is a refusal when it names a cap or a busy slot, or, with
    ``any_message`` (a deliberate bad input, a greedy request past the caps), whatever it says.
    """
    from gradio_client.exceptions import AppError

    msg = " ".join(str(exc).split())
    if isinstance(exc, AppError):
        readable = bool(msg) and msg.lower() != "error" and BARE_ERROR not in msg
        if readable and (any_message or any(w in msg.lower() for w in REFUSAL_WORDS)):
            return "refused", msg
        if not readable:
            msg = f"bare error, no message for the user ({msg or 'empty'})"
    return "error", f"{type(exc).__name__}: {msg}"


def _cancel(job) -> None:
    """Ask the server to cancel ``job``; a slow or failed cancel request (an HTTP timeout on a
    busy machine) is not the job's outcome: the job was given up either way."""
    try:
        job.cancel()
    except Exception:  # noqa: BLE001
        pass


class Soak:
    """What the user threads share: the clock, the stop signal, the records, the app's facts."""

    def __init__(self, cfg: SoakConfig, url: str) -> None:
        self.cfg, self.url = cfg, url
        self.t0 = time.perf_counter()
        self.stop = threading.Event()
        self.calls: list[Call] = []
        self.loops: Counter = Counter()
        self._lock = threading.Lock()
        self.api: dict = {}
        self.model_key = "digits"
        self.model_T = 1000
        self.missing: set[str] = set()

    def clock(self) -> float:
        return time.perf_counter() - self.t0

    def log(self, msg: str) -> None:
        if self.cfg.verbose:
            print(f"[{self.clock():6.1f} s] {msg}", flush=True)

    # --- the app's endpoints, read once from the API page --------------------------------------
    def read_api(self, client) -> None:
        self.api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        self.missing = {ep for ep in (*LIGHT, *HEAVY) if ep not in self.api}
        self.model_key = self.default("/sampler_run", "key", "digits")
        r = self.call(client, "setup", "setup", "/sampler_model", {"key": self.model_key},
                      record=False)
        steps = r.result[2] if r.outcome == "ok" and isinstance(r.result, tuple) else None
        if isinstance(steps, dict) and isinstance(steps.get("maximum"), int | float):
            self.model_T = int(steps["maximum"])

    def param(self, endpoint: str, name: str) -> dict:
        for p in self.api.get(endpoint, {}).get("parameters", []):
            if p.get("parameter_name") == name:
                return p
        return {}

    def default(self, endpoint: str, name: str, fallback):
        p = self.param(endpoint, name)
        return p.get("parameter_default", fallback) if p.get("parameter_has_default") else fallback

    def choices(self, endpoint: str, name: str, fallback: list) -> list:
        t = self.param(endpoint, name).get("type", {})
        return list(t.get("enum") or t.get("items", {}).get("enum") or fallback)

    # --- calls ----------------------------------------------------------------------------------
    def call(self, client, user: str, role: str, endpoint: str, kwargs: dict, *,
             deliberate: bool = False, tag: str = "", record: bool = True) -> Call:
        """Submit one request and follow it to its end (or cancel it when the soak stops).

        Light calls wait for their answer even after the stop (≤ :data:`LIGHT_TIMEOUT_S`);
        heavy ones are cancelled then (outcome ``cut``).
        """
        from gradio_client.utils import Status

        running = {Status.PROCESSING, Status.ITERATING, Status.PROGRESS, Status.LOG,
                   Status.FINISHED}
        c = Call(user, role, endpoint, round(self.clock(), 3), deliberate=deliberate, tag=tag)
        heavy = endpoint in HEAVY
        t0 = time.perf_counter()
        if endpoint in self.missing:
            c.outcome, c.message = "error", f"endpoint {endpoint} is missing from the app's API"
            return self._record(c, record)
        try:
            job = client.submit(api_name=endpoint, **kwargs)
        except Exception as e:  # noqa: BLE001 — whatever the client raises is the finding
            c.outcome, c.message = "error", f"{type(e).__name__}: {e}"
            return self._record(c, record)
        started = first = None
        while True:
            done = job.done()
            now = time.perf_counter()
            if started is None and (done or job.status().code in running):
                started = now
                c.run_start = round(now - self.t0, 3)
            if first is None and job.outputs():
                first = now
            if done:
                break
            if heavy and self.stop.is_set():
                _cancel(job)
                c.outcome, c.message = "cut", "cancelled: the soak ended"
                break
            if not heavy and now - t0 > LIGHT_TIMEOUT_S:
                _cancel(job)
                c.outcome, c.message = "error", f"timeout: no answer in {LIGHT_TIMEOUT_S:g} s"
                break
            time.sleep(POLL_S)
        end = time.perf_counter()
        c.run_end = round(end - self.t0, 3)
        c.total_s = round(end - t0, 3)  # for a cut job: how long it ran or waited
        c.queue_s = None if started is None else round(started - t0, 3)
        c.first_s = None if first is None else round(first - t0, 3)
        if c.outcome == "ok":
            try:
                c.result = job.result(timeout=10)
                c.first_s = c.first_s if c.first_s is not None else c.total_s
                if deliberate:
                    c.message = "bad input accepted"
            except Exception as e:  # noqa: BLE001
                c.outcome, c.message = classify(e, any_message=deliberate or role == "greedy")
        return self._record(c, record)

    def _record(self, c: Call, record: bool) -> Call:
        if record:
            with self._lock:
                self.calls.append(c)
            if c.outcome == "error":
                self.log(f"{c.user} {c.endpoint}: {c.message[:160]}")
        return c

    def think(self, rng: random.Random, lo: float | None = None, hi: float | None = None) -> bool:
        """Sleep a think time; False when the soak has stopped meanwhile."""
        lo = self.cfg.think_s[0] if lo is None else lo
        hi = self.cfg.think_s[1] if hi is None else hi
        return not self.stop.wait(rng.uniform(lo, hi))


# ---------------------------------------------------------------------------------------------
# The users
# ---------------------------------------------------------------------------------------------


def _toy_train_kwargs(dataset: str, **override) -> dict:
    from diffusion_core.data.toy2d_spec import TOY_SPECS
    from diffusion_core.presets import TOY

    kw = dict(dataset=dataset, n=2000, noise=TOY_SPECS[dataset].default_noise, seed=0,
              source="preset", kind=TOY.schedule.kind, T=TOY.schedule.T, hidden=TOY.model.hidden,
              depth=TOY.model.depth, time_embedding=TOY.model.time_embedding,
              activation=TOY.model.activation, lr=TOY.train.lr,
              batch_size=TOY.train.batch_size, steps=TOY.train.steps)
    return {**kw, **override}


def normal_user(soak: Soak, client, name: str, rng: random.Random) -> None:
    """The mix of a class: tabs 1 → 4, with think times, until the soak stops."""
    from diffusion_core.data.toy2d_spec import TOY_DATASETS
    from diffusion_core.presets import TOY

    def call(endpoint, kw, **extra) -> Call:
        return soak.call(client, name, "normal", endpoint, kw, **extra)

    kinds_all = soak.choices("/schedules_plot", "primary", ["linear", "cosine"])
    images = [k for k in soak.choices("/forward_image", "choice", ["china"]) if k != "upload"]
    # the built-in sets only ("drawn" needs a drawing on the canvas first)
    datasets = [d for d in soak.choices("/toy_data_plot", "dataset", list(TOY_DATASETS))
                if d in TOY_DATASETS]
    toy_T = TOY.schedule.T
    loop = 0
    while not soak.stop.is_set():
        # Tab 1: the schedule plot, a few settings
        for _ in range(rng.randint(1, 3)):
            kinds = rng.sample(kinds_all, rng.randint(1, min(3, len(kinds_all))))
            call("/schedules_plot", dict(kinds=kinds, primary=rng.choice(kinds),
                                         T=rng.choice([50, 100, 250, 500, 1000, 2000]),
                                         beta_start=1e-4, beta_end=0.02,
                                         scale_to_T=rng.random() < 0.5, cosine_s=0.008,
                                         power=2.0, x_axis="t"))
            if not soak.think(rng):
                return
        # Tab 2: an image, a schedule, x_t at a few t
        if loop == 0 or rng.random() < 0.3:
            call("/forward_image", dict(choice=rng.choice(images), upload_path=None,
                                        seed=rng.randint(0, 1000)))
        fwd_T = rng.choice([100, 500, 1000])
        call("/forward_schedule", dict(use_shared=False, kind=rng.choice(kinds_all), T=fwd_T))
        if rng.random() < 0.5:
            call("/forward_view", {})
        for t in sorted(rng.sample(range(fwd_T), 3)):
            if not soak.think(rng):
                return
            call("/forward_frame", dict(t=t))
        # Now and then a deliberate bad input: it must come back with a readable message.
        if rng.random() < soak.cfg.bad_input_rate:
            if not soak.think(rng):
                return
            bad_input(soak, call, rng, fwd_T)
        # Tab 3: data, ▶ Train with the preset, vector field, samples
        dataset = rng.choice(datasets)
        train_kw = _toy_train_kwargs(dataset)
        call("/toy_data_plot", {k: train_kw[k] for k in ("dataset", "n", "noise", "seed")})
        if not soak.think(rng):
            return
        trained = call("/toy_train", train_kw, tag="preset_train")
        if trained.outcome == "ok":
            for t in sorted(rng.sample(range(toy_T), 2)):
                if not soak.think(rng):
                    return
                call("/toy_vector_field", dict(t=t))
            if not soak.think(rng):
                return
            call("/toy_sample", dict(sampler="ddpm", steps=toy_T, eta=0.0,
                                     n_samples=TOY_SAMPLES, seed=rng.randint(0, 1000),
                                     clip_x0=False))
        if not soak.think(rng):
            return
        # Tab 4: images from the default model, then scrub the chain
        run = call("/sampler_run", dict(key=soak.model_key, sampler="ddim",
                                        variance="beta_tilde", steps=NORMAL_IMAGE_STEPS,
                                        eta=0.0, spacing="trailing", n_images=NORMAL_IMAGES,
                                        seed=rng.randint(0, 1000), clip_x0=True))
        if run.outcome == "ok":
            for _ in range(2):
                if not soak.think(rng):
                    return
                call("/sampler_frame", dict(index=rng.randint(0, NORMAL_IMAGE_STEPS - 1)))
        soak.loops[name] += 1
        loop += 1
        if not soak.think(rng):
            return


def bad_input(soak: Soak, call, rng: random.Random, fwd_T: int) -> Call:
    """One bad input: a number out of range, an empty box, text where a number goes (a script)."""
    cases = [
        ("/forward_frame", dict(t=fwd_T + 100)),  # past the schedule's end
        ("/forward_frame", dict(t="abc")),
        ("/schedules_plot", dict(kinds=["linear"], primary="linear", T=100, beta_start=0.02,
                                 beta_end=1e-4, scale_to_T=False, cosine_s=0.008, power=2.0,
                                 x_axis="t")),  # β_end < β_start
        ("/toy_data_plot", dict(dataset="moons", n=None, noise=0.05, seed=0)),  # empty box
        ("/forward_schedule", dict(use_shared=False, kind="linear", T=None)),  # empty box
        ("/sampler_run", dict(key=soak.model_key, sampler="ddim", variance="beta_tilde",
                              steps=10, eta=0.0, spacing="trailing", n_images=10 * GREEDY_IMAGES,
                              seed=0, clip_x0=True)),  # more images than allowed
    ]
    endpoint, kw = rng.choice(cases)
    return call(endpoint, kw, deliberate=True)


def warm_visit(soak: Soak) -> None:
    """One visitor runs each kind of job once, so the start RSS holds torch's first-use costs
    (kernels, thread pools, the checkpoint), which are no leak. Not counted in the figures."""
    client = new_client(soak.url)
    try:
        for endpoint, kw in (
                ("/toy_train", _toy_train_kwargs("moons")),
                ("/toy_vector_field", dict(t=10)),
                ("/toy_sample", dict(sampler="ddpm", steps=20, eta=0.0, n_samples=TOY_SAMPLES,
                                     seed=0, clip_x0=False)),
                ("/sampler_run", dict(key=soak.model_key, sampler="ddim",
                                      variance="beta_tilde", steps=NORMAL_IMAGE_STEPS, eta=0.0,
                                      spacing="trailing", n_images=NORMAL_IMAGES, seed=0,
                                      clip_x0=True))):
            r = soak.call(client, "warm", "warm", endpoint, kw, record=False)
            if r.outcome != "ok":
                soak.log(f"warm-up {endpoint}: {r.outcome} {r.message[:120]}")
    finally:
        client.close()


def greedy_user(soak: Soak, client, name: str, rng: random.Random) -> None:
    """The largest training job, then the largest sampling job, again and again."""
    ask = dict(GREEDY_TRAIN)

    def call(endpoint, kw) -> Call:
        return soak.call(client, name, "greedy", endpoint, kw)

    while not soak.stop.is_set():
        for _ in range(8):  # ask, and step down only as far as a refusal says
            r = call("/toy_train", _toy_train_kwargs("moons", **ask))
            if r.outcome != "refused" or soak.stop.is_set():
                break
            smaller = _smaller(ask, r.message)
            if smaller == ask:
                soak.stop.wait(1.0)  # busy: ask again in a moment
            ask = smaller
        if not soak.think(rng, 0.1, 0.3):
            return
        call("/sampler_run", dict(key=soak.model_key, sampler="ddpm", variance="beta_tilde",
                                  steps=soak.model_T, eta=0.0, spacing="trailing",
                                  n_images=GREEDY_IMAGES, seed=rng.randint(0, 1000),
                                  clip_x0=True))
        soak.loops[name] += 1
        if not soak.think(rng, 0.1, 0.3):
            return


def _smaller(ask: dict, message: str) -> dict:
    """The largest training job a refusal message allows (the same job if it names no size)."""
    ask = dict(ask)
    low = message.lower()
    if "too big" in low:  # the step-cost guard: halve the batch, then fewer/narrower layers
        if ask["batch_size"] > 128:
            ask["batch_size"] //= 2
        elif ask["depth"] > 2:
            ask["depth"] -= 1
        elif ask["hidden"] > 32:
            ask["hidden"] //= 2
        return ask
    # A range or cap on one input ("Steps must be … from 1 to 20,000", "At most 20,000 steps"):
    # the largest number the message names below what was asked.
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\d|\d", message)]
    for key, word in (("steps", "step"), ("batch_size", "batch"), ("hidden", "width"),
                      ("depth", "depth")):
        below = [n for n in numbers if 0 < n < ask[key]]
        if word in low and below:
            ask[key] = max(below)
            return ask
    return ask


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def run_soak(cfg: SoakConfig) -> dict:
    """Start the app, run the users for ``cfg.seconds``, wait for expiry; return the results."""
    server = Server(cfg.server_env())
    try:
        with server:
            soak = Soak(cfg, server.url)
            monitor = Monitor(server, soak.clock, cfg.sample_every_s,
                              on_exit=lambda code: _server_died(soak, server, code))
            try:
                return _run(cfg, soak, server, monitor)
            finally:
                monitor.stop()
    finally:
        server.cleanup()


def _server_died(soak: Soak, server: Server, code: int) -> None:
    soak.log(f"the server exited with code {code}; stopping. Its last lines:\n"
             + server.log_tail(15))
    soak.stop.set()


def _run(cfg: SoakConfig, soak: Soak, server: Server, monitor: Monitor) -> dict:
    soak.log(f"server up at {server.url} in {server.startup_s:.1f} s (pid {server.proc.pid})")
    setup_client = new_client(server.url)
    soak.read_api(setup_client)
    setup_client.close()
    if soak.missing:
        soak.log(f"missing endpoints: {sorted(soak.missing)}")
    rss_idle, _ = monitor.sample()
    if cfg.warm_visit:
        soak.log("warm-up visit: one preset ▶ Train, 2D samples and 16 images")
        warm_visit(soak)
    time.sleep(1.0)
    rss_start, _ = monitor.sample()
    monitor.phase = "run"
    monitor.start()

    roles = ["greedy"] * cfg.greedy + ["normal"] * cfg.users
    names = [f"g{i}" for i in range(cfg.greedy)] + [f"u{i}" for i in range(cfg.users)]
    ramp = min(cfg.ramp_s, cfg.seconds / 5)
    clients: dict[str, object] = {}
    clients_lock = threading.Lock()

    def user(i: int) -> None:
        name, role = names[i], roles[i]
        if soak.stop.wait(ramp * i / max(1, len(names))):
            return
        try:
            client = new_client(server.url)
        except Exception as e:  # noqa: BLE001
            soak._record(Call(name, role, "connect", round(soak.clock(), 3), outcome="error",
                              message=f"{type(e).__name__}: {e}"), True)
            return
        with clients_lock:
            clients[name] = client
        rng = random.Random(cfg.seed * 100_003 + i)
        try:
            (greedy_user if role == "greedy" else normal_user)(soak, client, name, rng)
        except Exception as e:  # noqa: BLE001 — a bug in the bench itself: record, don't hang
            soak._record(Call(name, role, "bench", round(soak.clock(), 3), outcome="error",
                              message=f"bench: {type(e).__name__}: {e}"), True)

    threads = [threading.Thread(target=user, args=(i,), name=names[i], daemon=True)
               for i in range(len(names))]
    run_t0 = soak.clock()
    soak.log(f"{cfg.users} users + {cfg.greedy} greedy for {cfg.seconds:g} s")
    for th in threads:
        th.start()
    soak.stop.wait(cfg.seconds)
    soak.stop.set()
    run_t1 = soak.clock()
    soak.log("stopping: cancelling heavy jobs, waiting for light calls")
    monitor.phase = "drain"
    for th in threads:
        th.join(timeout=LIGHT_TIMEOUT_S + 10)
    hung = [th.name for th in threads if th.is_alive()]
    for client in clients.values():
        client.close()
    rss_end_run, _ = monitor.sample()

    after_expiry = None
    if cfg.wait_expiry and server.proc.poll() is None:
        wait = cfg.expiry_wait_s()
        soak.log(f"clients closed; waiting {wait:g} s for sessions and cached files to expire")
        monitor.phase = "expiry"
        time.sleep(wait)
        monitor.phase = "after_expiry"
        rss, cache = monitor.sample()
        after_expiry = {"rss_mb": rss, "cache_mb": round(cache, 2), "waited_s": wait}
    monitor.stop()
    if cfg.calls_out is not None:
        write_calls(soak.calls, cfg.calls_out)

    return summarise(cfg, soak, server, monitor, rss_idle=rss_idle, rss_start=rss_start,
                     run=(run_t0, run_t1),
                     rss_end_run=rss_end_run, after_expiry=after_expiry, hung=hung)


# ---------------------------------------------------------------------------------------------
# Figures and verdicts
# ---------------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def _stats(values: list[float], prefix: str = "") -> dict:
    return {f"{prefix}p50_s": pct(values, 50), f"{prefix}p95_s": pct(values, 95),
            f"{prefix}max_s": max(values) if values else None}


def _cpu_during(series: list[list], run: tuple[float, float]) -> dict | None:
    """CPU seconds of the server process and of its workers between the run's start and end
    (the samples nearest inside), and their share of the wall time."""
    inside = [row for row in series if run[0] <= row[0] <= run[1]]
    if len(inside) < 2:
        return None
    (t0, m0, w0), (t1, m1, w1) = inside[0], inside[-1]
    wall = t1 - t0
    return {"wall_s": round(wall, 1), "main_cpu_s": round(m1 - m0, 1),
            "workers_cpu_s": round(w1 - w0, 1),
            "main_cores": round((m1 - m0) / wall, 2) if wall else None,
            "workers_cores": round((w1 - w0) / wall, 2) if wall else None}


def _slope_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return None
    return round(60 * sum((t - mt) * (v - mv) for t, v in points) / var, 2)


def _verdict(ok: bool | None, value, target: str, how: str) -> dict:
    status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
    return {"status": status, "value": value, "target": target, "how": how}


def summarise(cfg: SoakConfig, soak: Soak, server: Server, monitor: Monitor, *,
              rss_idle: float, rss_start: float, run: tuple[float, float],
              rss_end_run: float,
              after_expiry: dict | None, hung: list[str]) -> dict:
    calls = list(soak.calls)
    by_outcome = Counter(c.outcome for c in calls)
    endpoints = {}
    for ep in sorted({c.endpoint for c in calls}):
        cs = [c for c in calls if c.endpoint == ep]
        ok = [c for c in cs if c.outcome == "ok" and not c.deliberate]
        counts = Counter(c.outcome for c in cs)
        endpoints[ep] = {
            "kind": "light" if ep in LIGHT else ("heavy" if ep in HEAVY else "other"),
            "calls": len(cs), "ok": counts["ok"], "refused": counts["refused"],
            "errors": counts["error"], "cut": counts["cut"],
            **_stats([c.total_s for c in ok]),
            **_stats([c.queue_s for c in ok if c.queue_s is not None], "queue_"),
            **_stats([c.first_s for c in ok if c.first_s is not None], "first_"),
        }

    # Light calls submitted while a greedy user's heavy job ran on the server.
    greedy_runs = [(c.run_start, c.run_end) for c in calls
                   if c.role == "greedy" and c.endpoint in HEAVY and c.run_start is not None
                   and c.outcome in ("ok", "cut")]
    during = [c.total_s for c in calls
              if c.endpoint in LIGHT and c.outcome == "ok" and not c.deliberate
              and any(a <= c.start <= b for a, b in greedy_runs)]
    light_all = [c.total_s for c in calls
                 if c.endpoint in LIGHT and c.outcome == "ok" and not c.deliberate]

    # Preset training: submit → first streamed output (a press cut before it: its wait).
    starts = [c.first_s if c.first_s is not None else c.total_s for c in calls
              if c.tag == "preset_train" and c.outcome in ("ok", "cut")]

    exit_code = server.proc.poll()  # None: still up (the bench stops it after this)
    run_rss = [(t, mb) for t, phase, mb in monitor.rss if phase == "run" and mb is not None]
    mid = (run[0] + run[1]) / 2
    first_half = [mb for t, mb in run_rss if t < mid] + [rss_start]
    second_half = [mb for t, mb in run_rss if t >= mid]
    if exit_code is not None:  # a dead server's memory says nothing
        second_half = []
    # The same halves of the processes' own (anonymous) memory: RSS without shared libraries.
    own = [(t, sum(p[2] for p in procs)) for t, procs in monitor.processes
           if run[0] <= t <= run[1]]
    own_halves = ([mb for t, mb in own if t < mid], [mb for t, mb in own if t >= mid])
    pss = [(t, sum(p[3] for p in procs)) for t, procs in monitor.processes
           if run[0] <= t <= run[1]]
    pss_halves = ([mb for t, mb in pss if t < mid], [mb for t, mb in pss if t >= mid])
    cache_peak = max((row[3] for row in monitor.cache), default=0.0)
    cache_peak_files = max((row[2] for row in monitor.cache), default=0)

    deliberate = [c for c in calls if c.deliberate]
    errors = [c for c in calls if c.outcome == "error"]
    refusals = Counter(c.message[:120] for c in calls if c.outcome == "refused")
    users = []
    for name in sorted({c.user for c in calls}, key=lambda n: (n[0] != "g", int(n[1:]))):
        cs = [c for c in calls if c.user == name]
        k = Counter(c.outcome for c in cs)
        users.append({"user": name, "role": cs[0].role, "requests": len(cs), "ok": k["ok"],
                      "refused": k["refused"], "errors": k["error"], "cut": k["cut"],
                      "loops": soak.loops[name]})

    T = TARGETS
    targets = {
        "server_up": _verdict(exit_code is None, exit_code, "up to the end",
                              "the app's exit code if it died during the soak"),
        "errors": _verdict(not errors and not hung, len(errors) + len(hung), "0",
                           "calls that failed other than by an expected refusal; users whose "
                           "thread never ended count too"),
        "light_p95_during_greedy": _verdict(
            None if not during else pct(during, 95) <= T["light_p95_s"], pct(during, 95),
            f"≤ {T['light_p95_s']:g} s",
            f"p95 of total time of {len(during)} ok light calls submitted while a greedy "
            "heavy job ran"),
        "preset_train_start": _verdict(
            None if not starts else max(starts) <= T["train_start_s"],
            max(starts) if starts else None, f"≤ {T['train_start_s']:g} s (max)",
            f"submit → first streamed output of {len(starts)} normal preset ▶ Train presses"),
        "rss_flat": _verdict(
            None if not second_half else max(second_half) <= max(first_half) + T["rss_flat_mb"],
            round(max(second_half) - max(first_half), 1) if second_half else None,
            f"≤ +{T['rss_flat_mb']:g} MB",
            "max RSS in the run's second half − max in its first half (start included)"),
        "rss_after_expiry": _verdict(
            None if after_expiry is None or after_expiry["rss_mb"] is None
            else after_expiry["rss_mb"] <= rss_start + T["rss_expiry_mb"],
            None if after_expiry is None or after_expiry["rss_mb"] is None
            else round(after_expiry["rss_mb"] - rss_start, 1),
            f"≤ +{T['rss_expiry_mb']:g} MB",
            "RSS after the expiry wait − start RSS (after the warm-up visit)"),
        "cache_bounded": _verdict(
            None if after_expiry is None else after_expiry["cache_mb"] <= max(
                T["cache_floor_mb"], T["cache_fraction"] * cache_peak),
            None if after_expiry is None else after_expiry["cache_mb"],
            f"≤ max({T['cache_floor_mb']:g} MB, {T['cache_fraction']:.0%} of the peak "
            f"{cache_peak:.1f} MB)", "MB under GRADIO_TEMP_DIR after the expiry wait"),
    }
    statuses = {v["status"] for v in targets.values()}
    verdict = "FAIL" if "FAIL" in statuses else ("PASS" if statuses == {"PASS"} else "INCOMPLETE")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    run_s = run[1] - run[0]
    cfg_dict = asdict(cfg)
    cfg_dict["think_s"] = list(cfg.think_s)
    return {
        "config": cfg_dict,
        "server": {"startup_s": server.startup_s, "exit_code": exit_code,
                   "env": cfg.server_env(),
                   "inherited_env": {k: v for k, v in os.environ.items()
                                     if k.startswith("DIFFUSION_LAB_")},
                   "model_key": soak.model_key, "model_T": soak.model_T,
                   "missing_endpoints": sorted(soak.missing), "log": server.log_summary()},
        "run_s": round(run_s, 1),
        "totals": {"requests": len(calls), "ok": by_outcome["ok"],
                   "refused": by_outcome["refused"], "errors": by_outcome["error"],
                   "cut": by_outcome["cut"],
                   "requests_per_s": round(len(calls) / run_s, 2) if run_s > 0 else None,
                   "bad_inputs": {"sent": len(deliberate),
                                  "refused_readably": sum(c.outcome == "refused"
                                                          for c in deliberate),
                                  "accepted": sum(c.outcome == "ok" for c in deliberate)},
                   "hung_users": hung},
        "endpoints": endpoints,
        "light": {"all": {"calls": len(light_all), **_stats(light_all)},
                  "during_greedy": {"calls": len(during), **_stats(during),
                                    "greedy_jobs": len(greedy_runs)}},
        "preset_train_start": {"presses": len(starts), **_stats(starts)},
        "users": users,
        "first_errors": [{"t_s": c.start, "user": c.user, "endpoint": c.endpoint,
                          "message": c.message[:300]} for c in errors[:10]],
        "refusals": dict(refusals.most_common(12)),
        "rss": {"idle_mb": rss_idle, "start_mb": rss_start, "end_of_run_mb": rss_end_run,
                "max_mb": max((r[2] for r in monitor.rss if r[2] is not None), default=None),
                "first_half_max_mb": max(first_half),
                "second_half_max_mb": max(second_half) if second_half else None,
                "second_half_slope_mb_per_min": _slope_mb_per_min(
                    [(t, mb) for t, mb in run_rss if t >= mid]),
                "after_expiry_mb": None if after_expiry is None else after_expiry["rss_mb"],
                "series": monitor.rss,
                # the server process alone (the rest is its worker processes)
                "main_first_mb": next((r[1] for r in monitor.main_rss if r[1]), None),
                "main_last_mb": next((r[1] for r in reversed(monitor.main_rss) if r[1]), None),
                "main_series": monitor.main_rss,
                "own_first_half_max_mb": max(own_halves[0], default=None),
                "own_second_half_max_mb": max(own_halves[1], default=None),
                "pss_first_half_max_mb": max(pss_halves[0], default=None),
                "pss_second_half_max_mb": max(pss_halves[1], default=None),
                "processes_series": monitor.processes},
        # CPU seconds the server process and its workers used while the users ran: is the
        # server's own process (one interpreter) the bottleneck, or the machine?
        "server_cpu": _cpu_during(monitor.cpu, run),
        "cache": {"peak_mb": cache_peak, "peak_files": cache_peak_files,
                  "after_expiry_mb": None if after_expiry is None else after_expiry["cache_mb"],
                  "series": monitor.cache},
        "targets": targets,
        "verdict": verdict,
        "bench_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
    }


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}{unit}"
    return f"{v}{unit}"


def report(results: dict) -> str:
    """A readable table of the results."""
    cfg, tot = results["config"], results["totals"]
    lines = [
        f"soak: {cfg['users']} users + {cfg['greedy']} greedy for {results['run_s']:g} s "
        f"(server up in {results['server']['startup_s']:g} s)",
        f"requests {tot['requests']} ({_fmt(tot['requests_per_s'])}/s): ok {tot['ok']}, "
        f"refused {tot['refused']} (expected), errors {tot['errors']}, cut at the end "
        f"{tot['cut']}; bad inputs sent {tot['bad_inputs']['sent']}, answered readably "
        f"{tot['bad_inputs']['refused_readably']}, accepted {tot['bad_inputs']['accepted']}",
        "",
        f"{'endpoint':<19}{'kind':<6}{'calls':>6}{'ok':>5}{'ref':>5}{'err':>5}{'cut':>5}"
        f"{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'queue p95':>10}{'first p95':>10}",
    ]
    for ep, s in results["endpoints"].items():
        lines.append(f"{ep:<19}{s['kind']:<6}{s['calls']:>6}{s['ok']:>5}{s['refused']:>5}"
                     f"{s['errors']:>5}{s['cut']:>5}{_fmt(s['p50_s']):>8}{_fmt(s['p95_s']):>8}"
                     f"{_fmt(s['max_s']):>8}{_fmt(s['queue_p95_s']):>10}"
                     f"{_fmt(s['first_p95_s']):>10}")
    rss, cache = results["rss"], results["cache"]
    lines += [
        "",
        f"RSS: idle {_fmt(rss['idle_mb'])} MB, start (after the warm-up visit) "
        f"{_fmt(rss['start_mb'])} MB, max {_fmt(rss['max_mb'])} MB, halves "
        f"{_fmt(rss['first_half_max_mb'])} → {_fmt(rss['second_half_max_mb'])} MB (slope "
        f"{_fmt(rss['second_half_slope_mb_per_min'])} MB/min), end of run "
        f"{_fmt(rss['end_of_run_mb'])} MB, after expiry {_fmt(rss['after_expiry_mb'])} MB; "
        f"of which the server process alone {_fmt(rss.get('main_first_mb'))} → "
        f"{_fmt(rss.get('main_last_mb'))} MB (the rest: its workers); the processes' own "
        f"memory (no shared libraries) over the halves {_fmt(rss.get('own_first_half_max_mb'))}"
        f" → {_fmt(rss.get('own_second_half_max_mb'))} MB, their PSS (shared pages shared out)"
        f" {_fmt(rss.get('pss_first_half_max_mb'))} → "
        f"{_fmt(rss.get('pss_second_half_max_mb'))} MB",
        f"server CPU during the run: {results.get('server_cpu')}",
        f"cache: peak {_fmt(cache['peak_mb'])} MB in {cache['peak_files']} files, after expiry "
        f"{_fmt(cache['after_expiry_mb'])} MB",
    ]
    if results["refusals"]:
        lines += ["", "expected refusals:"]
        lines += [f"  {n:>4} × {msg}" for msg, n in results["refusals"].items()]
    if results["first_errors"]:
        lines += ["", "first errors:"]
        lines += [f"  {e['t_s']:7.1f} s {e['user']:<4} {e['endpoint']:<18} {e['message'][:150]}"
                  for e in results["first_errors"]]
    lines += ["", "targets:"]
    for name, v in results["targets"].items():
        lines.append(f"  {v['status']:<5} {name:<25} {_fmt(v['value']):>8}  target {v['target']}"
                     f"  ({v['how']})")
    lines.append(f"verdict: {results['verdict']}")
    return "\n".join(lines)


def write_calls(calls: list[Call], out: Path) -> Path:
    """Every request, one JSON object a line (``--calls``): enough to see which jobs held the
    slots while a request waited (``run_start`` … ``run_end``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for c in calls:
            f.write(json.dumps({k: v for k, v in dataclasses.asdict(c).items()
                                if k != "result"}, default=str) + "\n")
    return out


def write(results: dict, out: Path) -> Path:
    """The results file, as the other benches write theirs (machine description first)."""
    from bench.common import machine

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), **results}, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20, help="normal users (default 20)")
    ap.add_argument("--greedy", type=int, default=2, help="greedy users (default 2)")
    ap.add_argument("--minutes", type=float, default=5.0, help="run time (default 5)")
    ap.add_argument("--seconds", type=float, default=None, help="run time, overrides --minutes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bad-input-rate", type=float, default=0.15,
                    help="chance per loop that a normal user sends a bad input (default 0.15)")
    ap.add_argument("--ttl", type=float, default=60.0,
                    help="DIFFUSION_LAB_SESSION_IDLE_S (default 60)")
    ap.add_argument("--cache-minutes", type=float, default=0.5,
                    help="DIFFUSION_LAB_CACHE_MINUTES (default 0.5)")
    ap.add_argument("--train-seconds", type=float, default=None,
                    help="DIFFUSION_LAB_TRAIN_SECONDS (default: the app's)")
    ap.add_argument("--sample-seconds", type=float, default=None,
                    help="DIFFUSION_LAB_SAMPLE_SECONDS (default: the app's)")
    ap.add_argument("--no-expiry-wait", action="store_true",
                    help="skip the wait for expiry at the end (its two targets are skipped)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--calls", type=Path, default=None,
                    help="also write every request as JSON lines to this file")
    args = ap.parse_args(argv)
    cfg = SoakConfig(users=args.users, greedy=args.greedy,
                     seconds=args.seconds if args.seconds is not None else 60 * args.minutes,
                     seed=args.seed, bad_input_rate=args.bad_input_rate,
                     session_idle_s=args.ttl, cache_minutes=args.cache_minutes,
                     train_seconds=args.train_seconds, sample_seconds=args.sample_seconds,
                     wait_expiry=not args.no_expiry_wait, calls_out=args.calls)
    results = run_soak(cfg)
    print()
    print(report(results))
    write(results, args.out)
    return 0 if results["verdict"] != "FAIL" else 1


if __name__ == "__main__":
    sys.exit(main())
