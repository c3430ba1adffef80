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
    biggest 2D model, measured), and every worker would hold that for ever."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


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
        next rounds. So after a class leaves, the workers would hold that for ever (+607 MB
        over the start in a soak with four of them); recycled, they hold what fresh ones do.
        Only idle workers are replaced (a busy class never waits for a new one), and each
        replacement is ready (torch imported, optimiser warm) before it joins the pool; until
        then its slot is taken, as if lent.
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
