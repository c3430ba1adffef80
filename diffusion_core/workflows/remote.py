"""Train in a worker process, one report at a time: the server's answer to Python's lock.

Why. The app serves every visitor from one Python process. Training a small network is hundreds
of short torch ops a step, and after each op the thread must take Python's interpreter lock back;
while other threads run Python (building figures, serialising answers) each take-back waits up
to the switch interval. ``bench/gil_contention.py`` measured 50 steps of the 2D preset: 0.24 s
alone, 97 s beside a thread running Python, 0.18 s in a worker process. So the server trains in
worker processes, each with its own interpreter and one torch thread.

How. A :class:`WorkerPool` keeps up to ``size`` worker processes (started on first use, or at
once with :meth:`WorkerPool.start`), each holding up to ``runs_per_worker`` runs that take turns
a report at a time. :meth:`WorkerPool.train` sends a copy of a
:class:`~diffusion_core.training.Trainer` (model, optimiser, EMA, generator, data) to an idle
worker, or the least loaded one, and returns a :class:`RemoteRun`: an iterator of the trainer's
:class:`~diffusion_core.training.TrainProgress` reports, computed in the worker **only when
asked** — one report per ``next()``, as a local ``Trainer.run`` would give them — so the caller
keeps pacing, budgets and turns exactly as before (``pages/jobs.py``). The caller's own trainer
mirrors the worker's step count and per-t loss after every report, and gets the trained state
back when the run ends, however it ends: done, closed (■ Stop), or diverged (the last good
weights). The result is bit-identical to training locally (``tests/core/test_remote.py``).
:meth:`WorkerPool.iterate` does the same for any iterable object (a sampling run): its items
one ``next()`` at a time, and the attributes it names back when it ends.
If a worker dies (killed, out of memory), each of its runs raises :class:`WorkerLost` and each
caller's trainer keeps the state it had before its run; the pool starts a new worker for the
next job. One run's own failure (it diverges, its item cannot travel) ends that run only.

The two ends are this program's own processes, over a private socket pair; nothing read from a
file or sent by a visitor is ever in a message. Even so a message is read by an allow-list
(:func:`loads`): tensors travel as raw bytes (never a nested ``torch.load``), and only the names
a job needs are resolved — our own classes, functions marked :func:`travels`, torch's modules
and optimisers, numpy arrays, plain containers and exceptions.

Index convention: t ∈ {0, …, T−1} (the trainer's).

CPU time. A worker reports the CPU seconds each report took; :func:`thread_clock` adds them to
the calling thread's own CPU clock, so a caller timing "CPU spent in this step" (the server's
turns, :class:`pages.jobs.Paced`) counts the worker's computing as its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds diffusion_core/
_local = threading.local()


class WorkerLost(RuntimeError):
    """The worker process died mid-run; the caller's trainer is as it was before the run."""


def thread_clock() -> float:
    """This thread's CPU seconds plus what workers computed for it (:class:`RemoteRun`)."""
    return time.thread_time() + getattr(_local, "remote_cpu_s", 0.0)


def _add_remote_cpu(seconds: float) -> None:
    _local.remote_cpu_s = getattr(_local, "remote_cpu_s", 0.0) + seconds


# ---------------------------------------------------------------------------------------------
# The wire: pickle with tensors as raw bytes, read back by an allow-list
# ---------------------------------------------------------------------------------------------
# Plain pickle would write each tensor as a nested torch.save blob and read it back with torch's
# loader, weights-only checks off (torch.storage._load_from_bytes): a full unpickler inside
# ours, and a zip round trip per tensor.
# Here a tensor travels as its raw bytes, dtype, shape and layout; and the reader resolves only
# what a job needs (:class:`_Reader`): our own classes and the functions marked
# :func:`travels`, torch's modules, optimisers and parameter rebuild, numpy's array rebuild, and
# plain containers and exceptions. Anything else (``os.system``, ``torch.load``, a module no job
# uses) is refused before it is even imported.

_OWN_MODULES = ("diffusion_core.", "tests.")  # classes and marked functions may come from here
_TORCH_CLASS_MODULES = ("torch.nn.modules.", "torch.optim.")
_EXACT = frozenset({
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("collections", "deque"),
    ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"), ("pathlib", "PurePosixPath"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("torch", "device"), ("torch", "Size"), ("torch", "Generator"), ("torch._C", "Generator"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch.nn.parameter", "Parameter"),
    ("diffusion_core.schedule.noise_schedule", "_rebuild"),  # NoiseSchedule.__reduce__
})
_BUILTINS = frozenset({"dict", "list", "set", "frozenset", "tuple", "slice", "range", "complex",
                       "bytearray", "bytes", "int", "float", "str", "bool"})


def travels(fn):
    """Mark a module-level function as one that may be named in a worker message (a
    :meth:`RemoteRun.call` function, a reconstructor); the reader refuses unmarked ones."""
    fn.__dl_travels__ = True
    return fn


@travels
def _tensor(raw: bytes, dtype: str, shape: tuple, stride: tuple, order: tuple,
            requires_grad: bool):
    """A tensor from :func:`_reduce_tensor`'s parts: a fresh tensor with the sender's
    strides (the same kernels then run on it: a strided copy can round differently)."""
    import torch

    dt = getattr(torch, dtype, None)
    if not isinstance(dt, torch.dtype):
        raise pickle.UnpicklingError(f"not a torch dtype: {dtype[:40]!r}")
    x = torch.empty_strided(shape, stride, dtype=dt)
    if len(raw):
        x.permute(order).view(-1).view(torch.uint8).copy_(
            torch.frombuffer(bytearray(raw), dtype=torch.uint8))
    return x.requires_grad_(True) if requires_grad else x


def _reduce_tensor(t):
    """(``_tensor``, its parts): the raw bytes in the order they lie in memory, the dtype by
    name, the shape and the strides (a channels-last weight stays channels-last)."""
    import torch

    requires_grad = t.requires_grad
    t = t.detach().cpu()
    order = tuple(sorted(range(t.dim()), key=lambda d: (-t.stride(d), d)))
    stored = t.permute(order)
    if not stored.is_contiguous():  # overlapping or with gaps: travels contiguous
        t = t.contiguous()
        order, stored = tuple(range(t.dim())), t
    raw = stored.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return _tensor, (raw, str(t.dtype).removeprefix("torch."), tuple(t.shape), t.stride(),
                     order, requires_grad)


class _Writer(pickle.Pickler):
    def reducer_override(self, obj):
        import torch

        if type(obj) is torch.Tensor:  # Parameters keep their own reduce (their data is one)
            return _reduce_tensor(obj)
        return NotImplemented


class _Reader(pickle.Unpickler):
    """Resolves only the names a worker message may hold (see above)."""

    def find_class(self, module: str, name: str):
        if (module, name) in _EXACT:
            return super().find_class(module, name)
        if module == "builtins":
            obj = super().find_class(module, name)
            if name in _BUILTINS or (isinstance(obj, type) and issubclass(obj, BaseException)):
                return obj
        elif module == "torch" and _is_dtype_name(name):
            return super().find_class(module, name)
        elif module.startswith(_TORCH_CLASS_MODULES):
            obj = super().find_class(module, name)
            if isinstance(obj, type):
                return obj
        elif module.startswith(_OWN_MODULES) or module == "diffusion_core":
            obj = super().find_class(module, name)
            if isinstance(obj, type) or getattr(obj, "__dl_travels__", False):
                return obj
        raise pickle.UnpicklingError(f"a worker message may not name {module[:60]}."
                                     f"{name[:60]}")


def _is_dtype_name(name: str) -> bool:
    import torch

    return isinstance(getattr(torch, name, None), torch.dtype)


def dumps(obj: Any) -> bytes:
    """``obj`` as a worker message (tensors as raw bytes)."""
    buf = io.BytesIO()
    _Writer(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def loads(data: bytes) -> Any:
    """A worker message back (allow-listed names only: :class:`_Reader`)."""
    return _Reader(io.BytesIO(data)).load()


def _send(conn: Connection, message: Any) -> None:
    conn.send_bytes(dumps(message))


def _recv(conn: Connection) -> Any:
    return loads(conn.recv_bytes())  # our own process's message, read by the allow-list


# ---------------------------------------------------------------------------------------------
# The worker side
# ---------------------------------------------------------------------------------------------


TRAINER_MIRROR = ("step", "_bin_sum", "_bin_eps_sum", "_bin_count")
"""What a caller's trainer mirrors after each report: the step count and per-t loss sums."""


def warm_optimizer() -> None:
    """Build and step one fused AdamW, as a ``Trainer`` does: the first one in a process
    imports ``torch._dynamo`` (measured 2–4 s), which a visitor's first ▶ Train should not
    wait for (in a worker, stepping an unpickled optimizer imports it too)."""
    import torch

    p = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.AdamW([p], fused=True)
    p.grad = torch.ones(1)
    optimizer.step()


def warm_kernels() -> None:
    """Run each kind of job's kernels once, small: a 2D MLP and an image U-Net (the presets'
    layouts, random weights), forward and backward, and a U-Net forward under ``no_grad`` at
    8×8 and 16×16. A worker then starts with the code and first-use buffers its jobs load
    (measured: +35 MB after a first image chain, +16 MB after a first 2D training), so its
    memory when fresh is what it returns to after jobs, and a visitor's first job does not
    pay for them."""
    import torch

    from ..models import build_model
    from ..presets import DIGITS, TOY

    torch.manual_seed(0)
    mlp = build_model(TOY.model)
    x = torch.randn(64, 2)
    t = torch.randint(0, TOY.model.num_timesteps, (64,))
    mlp(x, t).square().mean().backward()
    for channels, size in ((1, 8), (3, 16)):
        unet = build_model(replace(DIGITS.model, channels=channels, image_size=size))
        x = torch.randn(4, channels, size, size)
        t = torch.randint(0, 1000, (4,))
        unet(x, t).square().mean().backward()
        with torch.no_grad():
            unet(torch.randn(16, channels, size, size), torch.randint(0, 1000, (16,)))


WORKER_NICE = 10
"""How much lower the workers' CPU priority is than the server's (Unix ``nice``): the server
process answers every visitor's clicks and streams, the workers compute heavy jobs. When both
want the CPU, the kernel gives the server ≈ 9× a worker's share (Linux weights 1024 vs 110), so
light views stay quick under any number of heavy jobs; when the server idles, the workers get
the whole machine (priorities only order who waits)."""


def serve(fd: int, threads: int = 1, nice: int = 0) -> None:
    """A worker's loop on socket ``fd`` (the child end of :class:`_Worker`'s pair).

    A worker holds several runs at once, each under the job id ``j`` the caller gave it, and
    computes one message at a time: runs in one worker take turns, a report each (see
    :class:`WorkerPool`). Messages (caller → worker ⇒ answer, each answer
    ``(kind, payload, cpu_s)``):
    ``("start", j, obj, method, args, mirror, returns)`` ⇒ ``("ok", None)``: iterate
    ``obj.method(*args)``; ``("next", j)`` ⇒ ``("item", (item, {name: obj.name for name in
    mirror}))``, or at the end ``("end", back)``, or ``("error", (exception, back))``;
    ``("close", j)`` ⇒ ``("closed", back)`` (the iterator closed first);
    ``("call", j, fn, args)`` ⇒ ``("called", fn(obj, *args))`` (the run does not advance);
    ``("ping",)`` ⇒ ``("pong", fresh_mb)``: the worker is ready (torch imported, kernels and
    optimiser warm, :func:`warm_kernels`) and held ``fresh_mb`` MB of resident memory then.
    ``back`` is ``obj`` itself when ``returns`` is None, else
    ``{name: obj.name for name in returns}``. A run that ended (end, error, closed) is
    forgotten; when the last one has, the worker gives its memory back. A failure that is
    one run's (it does not start, its answer does not travel) is that run's error; the
    other runs go on.
    """
    if nice:
        with contextlib.suppress(OSError, AttributeError):  # not Unix: the same priority
            os.nice(nice)
    import torch

    torch.set_num_threads(threads)
    import diffusion_core.training.trainer  # noqa: F401  (what the first job unpickles)

    warm_optimizer()
    warm_kernels()
    _give_memory_back()
    fresh_mb = rss_mb(os.getpid())
    conn = Connection(fd)
    runs: dict[int, _Run] = {}
    trimmed = time.monotonic()
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the server went away
        c0 = time.process_time()
        try:
            message = ("unread",)  # until read: a message the allow-list refuses is an error
            message = loads(data)  # our own process's message, read by the allow-list
            kind, payload = _answer(runs, message, fresh_mb)
        except Exception as e:  # noqa: BLE001 — this run's failure, raised in its caller
            kind, payload = "error", (_picklable(e), None)
            if message[0] == "start":
                runs.pop(message[1], None)
        try:
            data = dumps((kind, payload, time.process_time() - c0))
        except Exception as e:  # noqa: BLE001 — an item that cannot travel ends its run
            kind, payload = "error", None
            if message[0] in ("start", "next", "close"):
                run = runs.pop(message[1], None)
                if run is not None:
                    run.close()
            data = dumps((kind, (_picklable(e), None), time.process_time() - c0))
        conn.send_bytes(data)
        if kind in ("end", "error", "closed") and message[0] in ("start", "next", "close"):
            runs.pop(message[1], None)
            payload = None
            # A busy worker may never be without a run: it trims after ends too, now and then.
            if not runs or time.monotonic() - trimmed >= TRIM_EVERY_S:
                _give_memory_back()
                trimmed = time.monotonic()


class _Run:
    """One run in a worker: ``obj``, the iterator of ``obj.method(*args)``, and what goes back."""

    def __init__(self, obj, method: str, args: tuple, mirror: tuple[str, ...],
                 returns: tuple[str, ...] | None) -> None:
        self.obj, self.mirror, self.returns = obj, mirror, returns
        self.it = iter(getattr(obj, method)(*args))

    def back(self):
        obj = self.obj
        return obj if self.returns is None else {n: getattr(obj, n) for n in self.returns}

    def close(self) -> None:
        close = getattr(self.it, "close", None)
        if close is not None:
            close()


def _answer(runs: dict[int, _Run], message: tuple, fresh_mb: float = 0.0
            ) -> tuple[str, Any]:
    """The worker's answer ``(kind, payload)`` to one message (see :func:`serve`)."""
    if message[0] == "ping":
        return "pong", fresh_mb
    kind, job = message[0], message[1]
    if kind == "start":
        runs[job] = _Run(*message[2:])
        return "ok", None
    run = runs[job]
    if kind == "next":
        try:
            item = next(run.it)
        except StopIteration:
            return "end", run.back()
        except Exception as e:  # noqa: BLE001 — sent back and raised in the caller
            return "error", (_picklable(e), run.back())
        return "item", (item, {name: getattr(run.obj, name) for name in run.mirror})
    if kind == "close":
        run.close()
        return "closed", run.back()
    if kind == "call":
        fn, args = message[2:]
        return "called", fn(run.obj, *args)
    raise ValueError(f"unknown worker message {kind!r}")


TRIM_EVERY_S = 2.0
"""A worker that still holds runs gives freed memory back after a run ends at most this often
(one that holds none, after every end). Measured in the soak: without it, four workers that
were never idle while a class worked grew by ≈ 190 MB each over five minutes."""


def _give_memory_back() -> None:
    """Return the freed heap to the system after a job. Without it a worker's memory stays at
    its largest job's high-water mark (glibc keeps freed blocks: +200 MB after one run of the
    biggest 2D model, measured), and every worker would hold that for ever."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def rss_mb(pid: int) -> float:
    """Process ``pid``'s resident memory in MB (0 if it is gone or not on Linux)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _picklable(e: Exception) -> Exception:
    try:
        loads(dumps(e))
        return e
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(e).__name__}: {e}")


# ---------------------------------------------------------------------------------------------
# The caller side
# ---------------------------------------------------------------------------------------------


class _Worker:
    """One worker process and the caller's end of its socket."""

    def __init__(self, threads: int, nice: int = 0) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   PYTHONPATH=os.pathsep.join(filter(None, (str(_ROOT),
                                                             os.environ.get("PYTHONPATH")))))
        code = ("from diffusion_core.workflows.remote import serve; "
                f"serve({child.fileno()}, {threads}, {int(nice)})")
        self.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(child.fileno(),),
                                        env=env, cwd=str(_ROOT), stdin=subprocess.DEVNULL)
        child.close()
        self.conn = Connection(parent.detach())
        # One message and its answer at a time. Not in strict turns: a ticket lock made every
        # report wait for a hand-off between the server's threads, and the soak's runs slowed
        # (preset ▶ Train p50 32 s against 18–24 s); a run that asks again at once may get
        # the lock back first (unfair, but no run starved in the soak).
        self._lock = threading.Lock()
        self.jobs = 0  # runs lent this worker now (kept by the pool, under its lock)
        self.last_job = 0  # the last job id given out (each run has its own)
        self.idle_since = time.monotonic()
        self._fresh_mb: float | None = None  # (:meth:`fresh_mb`)

    def ask(self, *message) -> tuple[str, Any]:
        """Send ``message``, wait for the answer; ``(kind, payload)``. Adds the worker's CPU
        seconds to this thread's :func:`thread_clock`. :class:`WorkerLost` if it died.
        Thread-safe: the runs sharing this worker ask in turn."""
        try:
            with self._lock:
                _send(self.conn, message)
                kind, payload, cpu_s = _recv(self.conn)
        except (EOFError, OSError) as e:
            self.kill()
            raise WorkerLost("the worker process computing it stopped unexpectedly (out of "
                             "memory?)") from e
        _add_remote_cpu(cpu_s)
        return kind, payload

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_mb(self) -> float:
        """The worker's resident memory in MB (0 if it is gone or not on Linux)."""
        return rss_mb(self.process.pid)

    def fresh_mb(self) -> float:
        """The worker's resident memory in MB when it was ready, before any job (asks it the
        first time: waits until it is ready)."""
        if self._fresh_mb is None:
            self._fresh_mb = float(self.ask("ping")[1])
        return self._fresh_mb

    def kill(self) -> None:
        self.conn.close()
        if self.alive:
            self.process.kill()
        self.process.wait()


class WorkerPool:
    """Up to ``size`` worker processes with ``threads`` torch threads each, running at ``nice``
    (lower CPU priority than the caller's; :data:`WORKER_NICE` in the app), each holding up to
    ``runs_per_worker`` runs at once — see the module docstring. Thread-safe.

    A run goes to an idle worker if there is one, else to a new worker while there are fewer
    than ``size``, else it shares the worker with the fewest runs: the runs in one worker take
    turns a report at a time (:func:`serve`), so every run starts at once and moves, and a few
    processes serve many runs (each process costs ≈ 290 MB, and grows to its jobs' working
    size: fewer processes reach it sooner and hold less). :meth:`train` waits only while every
    worker holds ``runs_per_worker`` runs.
    """

    def __init__(self, size: int, *, threads: int = 1, nice: int = 0,
                 runs_per_worker: int = 1) -> None:
        if size < 1 or threads < 1 or not 0 <= nice <= 19 or runs_per_worker < 1:
            raise ValueError(f"a worker pool needs size ≥ 1, threads ≥ 1, nice 0…19 and "
                             f"runs_per_worker ≥ 1; got {size}, {threads}, {nice}, "
                             f"{runs_per_worker}")
        self.size, self.threads, self.nice = size, threads, nice
        self.runs_per_worker = runs_per_worker
        self._cond = threading.Condition()
        self._workers: list[_Worker] = []  # alive or not yet reaped, in the order of last use
        self._starting = 0  # workers being started (their slots are taken)
        self._closed = False

    def idle_workers(self) -> list[_Worker]:
        """The workers holding no run now."""
        with self._cond:
            return [w for w in self._workers if w.jobs == 0]

    def busy_workers(self) -> list[_Worker]:
        """The workers holding at least one run now."""
        with self._cond:
            return [w for w in self._workers if w.jobs > 0]

    def start(self) -> None:
        """Start every worker now (each imports torch, ≈ 1–2 s) instead of on first use."""
        with self._cond:
            while len(self._workers) + self._starting < self.size:
                self._workers.append(_Worker(self.threads, self.nice))

    def _acquire(self) -> tuple[_Worker, int]:
        """A worker for one more run and the run's job id (see the class docstring)."""
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the worker pool is closed")
                for w in [w for w in self._workers if w.jobs == 0 and not w.alive]:
                    self._workers.remove(w)
                    w.kill()
                alive = [w for w in self._workers if w.alive]  # (a dead one with runs left
                open_ = [w for w in alive if w.jobs < self.runs_per_worker]  # goes when they do)
                idle = [w for w in open_ if w.jobs == 0]
                if idle or len(alive) + self._starting >= self.size:
                    if open_:
                        # an idle one (the last used: warm), else the least loaded
                        worker = idle[-1] if idle else min(open_, key=lambda w: w.jobs)
                        return self._lend(worker), worker.last_job
                    self._cond.wait()
                    continue
                self._starting += 1
                break
        try:
            worker = _Worker(self.threads, self.nice)
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._starting -= 1
            self._workers.append(worker)
            return self._lend(worker), worker.last_job

    def _lend(self, worker: _Worker) -> _Worker:
        # under self._cond
        worker.jobs += 1
        worker.last_job += 1
        self._workers.remove(worker)
        self._workers.append(worker)  # the end: the most recently used
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            worker.jobs -= 1
            if worker.jobs == 0:
                worker.idle_since = time.monotonic()
                if not worker.alive or self._closed:
                    if worker in self._workers:
                        self._workers.remove(worker)
                    worker.kill()
            self._cond.notify()

    def recycle(self, max_mb: float, idle_s: float) -> int:
        """Replace each worker that has idled for ``idle_s`` seconds holding more than
        ``max_mb`` MB above its fresh size (:meth:`_Worker.fresh_mb`) by a fresh one; returns
        how many were replaced.

        A worker keeps what its biggest job left behind even after the job's objects are gone
        and the heap is trimmed (:func:`_give_memory_back`): torch's and oneDNN's caches and
        glibc's fragments. Measured (one worker, each job type three times, kernels warmed at
        start): ≈ 330 MB fresh (220 MB of it its own, the rest shared libraries), 340–355 MB
        after 2D jobs and image chains, 640 MB after training 16×16 digits, the same again in
        the next rounds. So after a class leaves, the workers would hold that for ever;
        recycled, they hold what fresh ones do.
        Only idle workers are replaced (a busy class never waits for a new one), and each
        replacement is ready (torch imported, kernels and optimiser warm) before it joins the
        pool; until then its slot is taken, as if lent.
        """
        now = time.monotonic()
        with self._cond:
            if self._closed:
                return 0
            idle = [w for w in self._workers
                    if w.jobs == 0 and w.alive and now - w.idle_since >= idle_s]
        grown = []
        for w in idle:  # (a ping, outside the pool's lock: a new worker may still be warming)
            with contextlib.suppress(WorkerLost):  # (a dead one is reaped by the next run)
                if w.rss_mb() > w.fresh_mb() + max_mb:
                    grown.append(w)
        with self._cond:
            if self._closed:
                return 0
            old = [w for w in grown if w in self._workers and w.jobs == 0]
            for w in old:
                self._workers.remove(w)
            self._starting += len(old)
        for w in old:
            w.kill()
        for _ in old:
            try:
                fresh = _Worker(self.threads, self.nice)
                fresh.fresh_mb()  # (ready: it answered)
            except (OSError, WorkerLost):  # could not start one: the pool is one smaller
                with self._cond:           # until the next job starts a worker on demand
                    self._starting -= 1
                    self._cond.notify()
                continue
            with self._cond:
                self._starting -= 1
                if self._closed:
                    fresh.kill()
                    continue
                fresh.idle_since = time.monotonic()
                self._workers.insert(0, fresh)  # the front: used after the warm ones
                self._cond.notify()
        return len(old)

    def pids(self) -> list[int]:
        """Process ids of the workers alive now (idle or computing), e.g. to measure memory."""
        with self._cond:
            return [w.process.pid for w in self._workers if w.alive]

    def train(self, trainer, steps: int | None = None) -> RemoteRun:
        """Train ``trainer`` for ``steps`` more steps (default its ``config.steps``) in a
        worker: a :class:`RemoteRun` over its reports. ``trainer`` is updated in place."""
        return RemoteRun(self, trainer, "run", (steps,), mirror=TRAINER_MIRROR)

    def iterate(self, obj, *, returns: tuple[str, ...], method: str = "__iter__",
                args: tuple = ()) -> RemoteRun:
        """Iterate ``obj.method(*args)`` (e.g. a sampling run) in a worker: a
        :class:`RemoteRun` over its items; when it ends, ``obj``'s attributes ``returns``
        take the worker's values."""
        return RemoteRun(self, obj, method, args, returns=returns)

    def close(self) -> None:
        """Stop every idle worker now and every busy one when its last run ends."""
        with self._cond:
            self._closed = True
            idle = [w for w in self._workers if w.jobs == 0]
            self._workers = [w for w in self._workers if w.jobs > 0]
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


@travels
def _attributes(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """``{name: obj.name}`` (:meth:`RemoteRun.peek`, computed in the worker)."""
    return {name: getattr(obj, name) for name in names}


class RemoteRun(Iterator):
    """The items of one run in a worker (:meth:`WorkerPool.train`, :meth:`WorkerPool.iterate`).

    ``next()`` computes one item in the worker (``obj.method(*args)``'s next) and returns it,
    after copying the worker's values of the attributes ``mirror`` onto the caller's ``obj``.
    At the end (the last item, :meth:`close`, or an error) the worker's state comes back
    (:meth:`_install`: the whole object when ``returns`` is None, else those attributes) and
    the worker returns to the pool. If the worker dies, the mirrored attributes get their
    values from before the run and :class:`WorkerLost` is raised.
    """

    def __init__(self, pool: WorkerPool, obj, method: str, args: tuple = (), *,
                 mirror: tuple[str, ...] = (), returns: tuple[str, ...] | None = None) -> None:
        self._pool, self._obj, self._returns = pool, obj, returns
        self._before = {name: getattr(obj, name) for name in mirror}  # restored if it dies
        self._worker: _Worker | None
        self._worker, self._job = pool._acquire()
        try:
            kind, payload = self._worker.ask("start", self._job, obj, method, args, mirror,
                                             returns)
        except BaseException:
            self._finish(None)
            raise
        if kind == "error":  # it could not start there (e.g. no such method)
            self._finish(None)
            raise payload[0]

    def __next__(self):
        if self._worker is None:
            raise StopIteration
        try:
            kind, payload = self._worker.ask("next", self._job)
        except WorkerLost:
            self._finish(None)
            raise
        if kind == "item":
            item, mirrored = payload
            self._set(mirrored)
            return item
        if kind == "error":
            error, back = payload
            self._finish(back)
            raise error
        self._finish(payload)  # "end"
        raise StopIteration

    def peek(self, *names: str) -> dict[str, Any]:
        """The worker's current values of ``obj``'s attributes ``names`` (copies), between two
        items, without advancing the run: e.g. ``run.peek("step")``. After the run ended: the
        caller's own values. (:meth:`call` with a getter.)"""
        return self.call(_attributes, names)

    def call(self, fn, *args) -> Any:
        """``fn(obj, *args)`` computed in the worker on its current ``obj``, between two items,
        without advancing the run; only the answer comes back (e.g. a live preview drawn from
        a model while it trains, without copying the model). ``fn`` must be a module-level
        function marked :func:`travels` (it travels by name) and must not change ``obj``.
        After the run ended: here,
        on the caller's own ``obj``. The worker's CPU time counts as this thread's
        (:func:`thread_clock`)."""
        if not getattr(fn, "__dl_travels__", False):
            raise TypeError(f"{getattr(fn, '__qualname__', fn)!r} is not marked travels(): a "
                            "worker runs only functions marked to travel")
        if self._worker is None:
            return fn(self._obj, *args)
        try:
            kind, payload = self._worker.ask("call", self._job, fn, args)
        except WorkerLost:
            self._finish(None)
            raise
        if kind == "error":
            raise payload[0]
        return payload

    def _set(self, values: dict) -> None:
        for name, value in values.items():
            setattr(self._obj, name, value)

    def close(self) -> None:
        """Stop the run (if still going) and take the worker's state back. Idempotent."""
        if self._worker is None:
            return
        try:
            kind, back = self._worker.ask("close", self._job)
        except WorkerLost:
            self._finish(None)
            raise
        if kind == "error":  # the state could not travel back: as before the run
            self._finish(None)
            raise back[0]
        self._finish(back)

    def _finish(self, back) -> None:
        worker, self._worker = self._worker, None
        try:
            if back is not None:
                self._install(back)
            else:  # lost (or never started): the mirrored attributes as before the run
                self._set(self._before)
        finally:  # whatever installing did, the worker's place goes back to the pool
            if worker is not None:
                self._pool._release(worker)

    def _install(self, back) -> None:
        """The worker's state into the caller's object (same object, new state)."""
        if self._returns is None:
            self._obj.__dict__.update(back.__dict__)
        else:
            self._set(back)

    def __del__(self) -> None:
        # A run dropped without close() frees its place in the worker. Not on this thread: the
        # collector may run here while this thread is inside an ask to the same worker (holding
        # its lock), so the close goes to a thread of its own.
        if self._worker is None:
            return
        try:
            threading.Thread(target=self._close_quietly, name="remote-run-close",
                             daemon=True).start()
        except RuntimeError:  # interpreter shutting down: the worker goes with it
            pass

    def _close_quietly(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 — a dropped run must not raise at collection
            pass
