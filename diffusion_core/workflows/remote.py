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


def _light_state(trainer) -> tuple:
    """What the caller's trainer mirrors after each report: the step count and per-t loss sums."""
    return trainer.step, trainer._bin_sum, trainer._bin_eps_sum, trainer._bin_count


def serve(fd: int, threads: int = 1) -> None:
    """A worker's loop on socket ``fd`` (the child end of :class:`_Worker`'s pair).

    Messages (caller → worker ⇒ answer, each answer ``(kind, payload, cpu_s)``):
    ``("run", trainer, steps)`` ⇒ ``("ok", None)``; ``("next",)`` ⇒ ``("item", (progress,
    light state))``, ``("end", None)`` or ``("error", exception)``; ``("close",)`` ⇒
    ``("trainer", trainer)`` (the run's generator closed first).
    """
    import torch

    torch.set_num_threads(threads)
    conn = Connection(fd)
    trainer = run = None
    while True:
        try:
            message = _recv(conn)
        except (EOFError, OSError):
            return  # the server went away
        c0 = time.process_time()
        kind, payload = "ok", None
        if message[0] == "run":
            trainer, steps = message[1], message[2]
            run = trainer.run(steps)
        elif message[0] == "next":
            try:
                progress = next(run)
                kind, payload = "item", (progress, _light_state(trainer))
            except StopIteration:
                kind = "end"
            except Exception as e:  # noqa: BLE001 — sent back and raised in the caller
                kind, payload = "error", _picklable(e)
        elif message[0] == "close":
            if run is not None:
                run.close()
            kind, payload = "trainer", trainer
            trainer = run = None
        _send(conn, (kind, payload, time.process_time() - c0))


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

    def __init__(self, threads: int) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   PYTHONPATH=os.pathsep.join(filter(None, (str(_ROOT),
                                                             os.environ.get("PYTHONPATH")))))
        code = ("from diffusion_core.workflows.remote import serve; "
                f"serve({child.fileno()}, {threads})")
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
            raise WorkerLost("the training worker process stopped unexpectedly (out of memory?);"
                             " the model is as it was before this run") from e
        _add_remote_cpu(cpu_s)
        return kind, payload

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.conn.close()
        if self.alive:
            self.process.kill()
        self.process.wait()


class WorkerPool:
    """Up to ``size`` worker processes with ``threads`` torch threads each (see the module
    docstring). Thread-safe; :meth:`train` waits while all of them are busy."""

    def __init__(self, size: int, *, threads: int = 1) -> None:
        if size < 1 or threads < 1:
            raise ValueError(f"a worker pool needs size ≥ 1 and threads ≥ 1; got {size}, "
                             f"{threads}")
        self.size, self.threads = size, threads
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._lent: set[_Worker] = set()
        self._count = 0  # workers alive (idle or lent)
        self._closed = False

    def start(self) -> None:
        """Start every worker now (each imports torch, ≈ 1–2 s) instead of on first use."""
        with self._cond:
            while self._count < self.size:
                self._idle.append(_Worker(self.threads))
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
            worker = _Worker(self.threads)
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
                self._idle.append(worker)
            else:
                worker.kill()
                self._count -= 1
            self._cond.notify()

    def pids(self) -> list[int]:
        """Process ids of the workers alive now (idle or computing), e.g. to measure memory."""
        with self._cond:
            return [w.process.pid for w in (*self._idle, *self._lent) if w.alive]

    def train(self, trainer, steps: int | None = None) -> RemoteRun:
        """Train ``trainer`` for ``steps`` more steps (default its ``config.steps``) in a
        worker: a :class:`RemoteRun` over its reports. ``trainer`` is updated in place."""
        return RemoteRun(self, trainer, steps)

    def close(self) -> None:
        """Stop every idle worker now and every lent one when its run ends."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


class RemoteRun(Iterator):
    """The reports of one training run in a worker (:meth:`WorkerPool.train`).

    ``next()`` computes one report in the worker and returns it, after mirroring the worker's
    step count and per-t loss sums onto the caller's trainer. At the end (the last report,
    :meth:`close`, or an error from training) the trained state is copied back into the
    caller's trainer (:meth:`_install`) and the worker returns to the pool.
    """

    def __init__(self, pool: WorkerPool, trainer, steps: int | None) -> None:
        self._pool, self._trainer = pool, trainer
        self._before = _light_state(trainer)  # restored if the worker dies
        self._worker: _Worker | None = pool._acquire()
        try:
            self._worker.ask("run", trainer, steps)
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
            progress, light = payload
            self._mirror(light)
            return progress
        self.close()  # "end" or "error": take the trained state back
        if kind == "error":
            raise payload
        raise StopIteration

    def _mirror(self, light: tuple) -> None:
        t = self._trainer
        t.step, t._bin_sum, t._bin_eps_sum, t._bin_count = light

    def close(self) -> None:
        """Stop the run (if still going) and copy the trained state back. Idempotent."""
        if self._worker is None:
            return
        try:
            kind, trained = self._worker.ask("close")
        except WorkerLost:
            self._finish(None)
            raise
        self._finish(trained)

    def _finish(self, trained) -> None:
        worker, self._worker = self._worker, None
        if trained is not None:
            self._install(trained)
        else:  # lost (or never started): the caller's trainer as it was before the run
            self._mirror(self._before)
        if worker is not None:
            self._pool._release(worker)

    def _install(self, trained) -> None:
        """Make the caller's trainer the worker's: same object, the trained state."""
        self._trainer.__dict__.update(trained.__dict__)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 — a dropped run must not raise at collection
            pass
