"""Train in a worker process, one report at a time: the server's answer to Python's lock.

Why. The app serves every visitor from one Python process. Training a small network is hundreds
of short torch ops a step, and after each op the thread must take Python's interpreter lock back;
while other threads run Python (building figures, serialising answers) each take-back waits up
to the switch interval. ``bench/gil_contention.py`` measured 50 steps of the 2D preset: 0.24 s
alone, 97 s beside a thread running Python, 0.18 s in a worker process. So the server trains in
worker processes, each with its own interpreter and one torch thread.

How. A :class:`WorkerPool` keeps up to ``size`` worker processes (started on first use, or at
once with :meth:`WorkerPool.start`). :meth:`WorkerPool.train` sends a copy of a
:class:`~diffusion_core.training.Trainer` (model, optimiser, EMA, generator, data) to a free
worker and returns a :class:`RemoteRun`: an iterator of the trainer's
:class:`~diffusion_core.training.TrainProgress` reports, computed in the worker **only when
asked** — one report per ``next()``, as a local ``Trainer.run`` would give them — so the caller
keeps pacing, budgets and turns exactly as before (``pages/jobs.py``). The caller's own trainer
mirrors the worker's step count and per-t loss after every report, and gets the trained state
back when the run ends, however it ends: done, closed (■ Stop), or diverged (the last good
weights). The result is bit-identical to training locally (``tests/core/test_remote.py``).
:meth:`WorkerPool.iterate` does the same for any iterable object (a sampling run): its items
one ``next()`` at a time, and the attributes it names back when it ends.
If a worker dies (killed, out of memory), the run raises :class:`WorkerLost` and the caller's
trainer keeps the state it had before the run; the pool starts a new worker for the next job.

The two ends are this program's own processes: messages are pickled by us over a private socket
pair; nothing read from a file or sent by a visitor is ever unpickled.

Index convention: t ∈ {0, …, T−1} (the trainer's).

CPU time. A worker reports the CPU seconds each report took; :func:`thread_clock` adds them to
the calling thread's own CPU clock, so a caller timing "CPU spent in this step" (the server's
turns, :class:`pages.jobs.Paced`) counts the worker's computing as its own.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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


def _send(conn: Connection, message: Any) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _recv(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())  # our own worker's message (module docstring)


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


WORKER_NICE = 10
"""How much lower the workers' CPU priority is than the server's (Unix ``nice``): the server
process answers every visitor's clicks and streams, the workers compute heavy jobs. When both
want the CPU, the kernel gives the server ≈ 9× a worker's share (Linux weights 1024 vs 110), so
light views stay quick under any number of heavy jobs; when the server idles, the workers get
the whole machine (priorities only order who waits)."""


def serve(fd: int, threads: int = 1, nice: int = 0) -> None:
    """A worker's loop on socket ``fd`` (the child end of :class:`_Worker`'s pair).

    Messages (caller → worker ⇒ answer, each answer ``(kind, payload, cpu_s)``):
    ``("start", obj, method, args, mirror, returns)`` ⇒ ``("ok", None)``: iterate
    ``obj.method(*args)``; ``("next",)`` ⇒ ``("item", (item, {name: obj.name for name in
    mirror}))``, or at the end ``("end", back)``, or ``("error", (exception, back))``;
    ``("close",)`` ⇒ ``("closed", back)`` (the iterator closed first);
    ``("call", fn, args)`` ⇒ ``("called", fn(obj, *args))`` (the run does not advance);
    ``("ping",)`` ⇒ ``("pong", None)`` (the worker is ready: torch imported, optimiser warm).
    ``back`` is ``obj`` itself when ``returns`` is None, else
    ``{name: obj.name for name in returns}``.
    """
    if nice:
        with contextlib.suppress(OSError, AttributeError):  # not Unix: the same priority
            os.nice(nice)
    import torch

    torch.set_num_threads(threads)
    import diffusion_core.training.trainer  # noqa: F401  (what the first job unpickles)

    warm_optimizer()
    conn = Connection(fd)
    obj = it = None
    mirror: tuple[str, ...] = ()
    returns: tuple[str, ...] | None = None

    def back():
        return obj if returns is None else {name: getattr(obj, name) for name in returns}

    while True:
        try:
            message = _recv(conn)
        except (EOFError, OSError):
            return  # the server went away
        c0 = time.process_time()
        kind, payload = "ok", None
        if message[0] == "start":
            obj, method, args, mirror, returns = message[1:]
            it = iter(getattr(obj, method)(*args))
        elif message[0] == "next":
            try:
                item = next(it)
                kind, payload = "item", (item, {name: getattr(obj, name) for name in mirror})
            except StopIteration:
                kind, payload = "end", back()
            except Exception as e:  # noqa: BLE001 — sent back and raised in the caller
                kind, payload = "error", (_picklable(e), back())
        elif message[0] == "close":
            close = getattr(it, "close", None)
            if close is not None:
                close()
            kind, payload = "closed", back()
        elif message[0] == "ping":
            kind = "pong"
        elif message[0] == "call":
            try:
                fn, args = message[1:]
                kind, payload = "called", fn(obj, *args)
            except Exception as e:  # noqa: BLE001 — sent back and raised in the caller
                kind, payload = "error", (_picklable(e), None)
        _send(conn, (kind, payload, time.process_time() - c0))
        if kind in ("end", "error", "closed") and message[0] not in ("call", "ping"):
            obj = it = payload = None
            _give_memory_back()


def _give_memory_back() -> None:
    """Return the freed heap to the system after a job. Without it a worker's memory stays at
    its largest job's high-water mark (glibc keeps freed blocks: +200 MB after one run of the
    biggest 2D model, measured), and four workers hold that for ever."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _picklable(e: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(e))
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

    def ask(self, *message) -> tuple[str, Any]:
        """Send ``message``, wait for the answer; ``(kind, payload)``. Adds the worker's CPU
        seconds to this thread's :func:`thread_clock`. :class:`WorkerLost` if it died."""
        try:
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
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def kill(self) -> None:
        self.conn.close()
        if self.alive:
            self.process.kill()
        self.process.wait()


class WorkerPool:
    """Up to ``size`` worker processes with ``threads`` torch threads each, running at ``nice``
    (lower CPU priority than the caller's; :data:`WORKER_NICE` in the app) — see the module
    docstring. Thread-safe; :meth:`train` waits while all of them are busy."""

    def __init__(self, size: int, *, threads: int = 1, nice: int = 0) -> None:
        if size < 1 or threads < 1 or not 0 <= nice <= 19:
            raise ValueError(f"a worker pool needs size ≥ 1, threads ≥ 1 and nice 0…19; got "
                             f"{size}, {threads}, {nice}")
        self.size, self.threads, self.nice = size, threads, nice
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._lent: set[_Worker] = set()
        self._count = 0  # workers alive (idle or lent)
        self._closed = False

    def start(self) -> None:
        """Start every worker now (each imports torch, ≈ 1–2 s) instead of on first use."""
        with self._cond:
            while self._count < self.size:
                worker = _Worker(self.threads, self.nice)
                worker.idle_since = time.monotonic()
                self._idle.append(worker)
                self._count += 1

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the worker pool is closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        self._lent.add(worker)
                        return worker
                    worker.kill()
                    self._count -= 1
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            worker = _Worker(self.threads, self.nice)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._lent.add(worker)
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            self._lent.discard(worker)
            if worker.alive and not self._closed:
                worker.idle_since = time.monotonic()
                self._idle.append(worker)
            else:
                worker.kill()
                self._count -= 1
            self._cond.notify()

    def recycle(self, max_mb: float, idle_s: float) -> int:
        """Replace each worker that has idled for ``idle_s`` seconds holding more than
        ``max_mb`` MB by a fresh one; returns how many were replaced.

        A worker keeps what its biggest job left behind even after the job's objects are gone
        and the heap is trimmed (:func:`_give_memory_back`): torch's and oneDNN's caches and
        glibc's fragments. Measured (one worker, each job type three times): ≈ 200 MB fresh,
        315–460 MB after 2D jobs, 640 MB after training 16×16 digits, the same again in the
        next rounds. So after a class leaves, four workers would hold ≈ 0.5 GB more than
        at start for ever; recycled, they hold what fresh ones do. Only idle workers are
        replaced (a busy class never waits for a new one), and each replacement is ready
        (torch imported, optimiser warm) before it joins the pool; until then its slot is
        taken, as if lent.
        """
        now = time.monotonic()
        with self._cond:
            if self._closed:
                return 0
            old = [w for w in self._idle
                   if now - getattr(w, "idle_since", now) >= idle_s and w.rss_mb() > max_mb]
            for w in old:
                self._idle.remove(w)
        for w in old:
            w.kill()
        for _ in old:
            try:
                fresh = _Worker(self.threads, self.nice)
                fresh.ask("ping")
            except (OSError, WorkerLost):  # could not start one: the pool is one smaller
                with self._cond:           # until the next job starts a worker on demand
                    self._count -= 1
                    self._cond.notify()
                continue
            with self._cond:
                if self._closed:
                    self._count -= 1
                    fresh.kill()
                    continue
                fresh.idle_since = time.monotonic()
                self._idle.insert(0, fresh)  # the front: the idle list is used last-in first
                self._cond.notify()
        return len(old)

    def pids(self) -> list[int]:
        """Process ids of the workers alive now (idle or computing), e.g. to measure memory."""
        with self._cond:
            return [w.process.pid for w in (*self._idle, *self._lent) if w.alive]

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
        """Stop every idle worker now and every lent one when its run ends."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


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
        self._worker: _Worker | None = pool._acquire()
        try:
            self._worker.ask("start", obj, method, args, mirror, returns)
        except BaseException:
            self._finish(None)
            raise

    def __next__(self):
        if self._worker is None:
            raise StopIteration
        try:
            kind, payload = self._worker.ask("next")
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
        function (it travels by name) and must not change ``obj``. After the run ended: here,
        on the caller's own ``obj``. The worker's CPU time counts as this thread's
        (:func:`thread_clock`)."""
        if self._worker is None:
            return fn(self._obj, *args)
        try:
            kind, payload = self._worker.ask("call", fn, args)
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
            kind, back = self._worker.ask("close")
        except WorkerLost:
            self._finish(None)
            raise
        self._finish(back)

    def _finish(self, back) -> None:
        worker, self._worker = self._worker, None
        if back is not None:
            self._install(back)
        else:  # lost (or never started): the mirrored attributes as they were before the run
            self._set(self._before)
        if worker is not None:
            self._pool._release(worker)

    def _install(self, back) -> None:
        """The worker's state into the caller's object (same object, new state)."""
        if self._returns is None:
            self._obj.__dict__.update(back.__dict__)
        else:
            self._set(back)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 — a dropped run must not raise at collection
            pass
