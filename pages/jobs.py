"""Heavy jobs (training, sampling): one per visitor at a time, and long ones take turns.

**One per visitor.**
A visitor who starts a second heavy job while one runs (▶ Train, then Sample on another tab,
or a script that submits twice) gets a message instead of a second CPU. Jobs are keyed by the
Gradio session (one browser tab, or one ``gradio_client.Client``). The registry holds only
which session runs which job; it is emptied as each job ends, however it ends (done, error,
■ Stop, closed tab: a cancelled generator runs its ``finally``).

Handlers called directly (tests, no ``gr.Request``) are not tracked.

**A long run gives way** (:func:`turn_over`). Training and sampling each have a few slots
(:data:`TRAIN_QUEUE`, :data:`SAMPLE_QUEUE`); a run that has computed for
``limits.ACTIVE.turn_s`` CPU seconds stops at its next step while someone waits for a slot of
its kind, keeping what it did ("press ▶ Train to continue"), so a greedy user cannot hold a
slot for a whole minute while a class waits. The turn is counted in CPU seconds, not by the
clock: on a busy server a preset run (≈ 1.2 CPU s) takes several seconds by the clock, and
cutting it then would make everyone press ▶ Train twice. A job starts with what its session
computed lately (:class:`Usage`), so a visitor who presses ▶ Train again after each turn does not
get a fresh turn each time. The waiting count is read from Gradio's queue
(:func:`watch_queues`).

**Long jobs take turns** (:func:`paced`). A job that has computed for more than
``limits.ACTIVE.long_after_s`` CPU seconds is *long*; long jobs compute one step at a time on one
shared :class:`Lane`, the one that has computed least going first, so together they use about
one core however many there are, and short jobs (a preset training, a 25-step DDIM run) and
the light views keep the rest of the machine. Measured with ``bench/soak.py`` (20 students,
2 greedy users asking for the biggest model and the full DDPM chain): without the lane, light
calls' p95 was 1.4–1.8 s and the preset's ▶ Train waited up to 150 s in the queue. While a short
job runs, each long step first waits for it (up to :data:`SHORT_FIRST_S`): greedy jobs compute
in the time between a class's presses.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import gradio as gr

from diffusion_core.workflows.remote import WorkerPool, thread_clock
from pages import limits
from pages.common import UserError

TRAIN_QUEUE = "train"  # the concurrency id of every training event
SAMPLE_QUEUE = "sample"  # … and of every sampling event

_lock = threading.Lock()


@dataclass
class _Job:
    """One visitor's heavy job: what it is, since when (monotonic), its handler's generator."""

    what: str
    since: float
    gen: weakref.ref | None = None


_running: dict[str, _Job] = {}  # session hash → its job


def running(session: str) -> str | None:
    """What ``session`` is running now, or None."""
    with _lock:
        job = _running.get(session)
    return None if job is None else job.what


def overdue(max_s: float, now: float | None = None, *, where: bool = True
            ) -> list[tuple[str, str, float, str]]:
    """``(session, what, seconds, where)`` of each heavy job that has run longer than ``max_s``
    seconds by the clock: past every cap, so a job nobody drives any more (its generator was
    neither finished nor closed) — a fault the janitor reports. ``where`` says what its
    handler's generator is doing (:func:`_where`; ``""`` with ``where=False``)."""
    now = time.monotonic() if now is None else now
    with _lock:
        late = [(s, job) for s, job in _running.items() if now - job.since > max_s]
    return [(s, job.what, now - job.since, _where(job.gen) if where else "") for s, job in late]


def _where(ref: weakref.ref | None) -> str:
    """Where a job's generator is: computing, or suspended at file:line (innermost), and who
    holds it (a fault report: costs a scan of every object)."""
    gen = None if ref is None else ref()
    if gen is None:
        return "its generator is gone"
    if gen.gi_running:
        return "computing a step"
    inner = gen
    while getattr(inner, "gi_yieldfrom", None) is not None and hasattr(inner.gi_yieldfrom,
                                                                        "gi_frame"):
        inner = inner.gi_yieldfrom
    frame = inner.gi_frame
    at = "finished" if frame is None else f"suspended at {frame.f_code.co_filename}:" \
                                          f"{frame.f_lineno}"
    holders = sorted({type(r).__name__ for r in gc.get_referrers(gen)})
    return f"{at}; held by {', '.join(holders) or 'nothing'}"


def _session_of(args, kwargs) -> str | None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, gr.Request):
            return getattr(a, "session_hash", None)
    return None


def _claim(session: str, what: str) -> _Job:
    with _lock:
        other = _running.get(session)
        if other is not None:
            raise UserError(f"You are already {other.what}. One job at a time per visitor: "
                            "wait for it to finish or press ■ Stop, then try again.")
        job = _running[session] = _Job(what, time.monotonic())
        return job


def _release(session: str) -> None:
    with _lock:
        _running.pop(session, None)


def heavy(what: str) -> Callable:
    """Decorate a generator handler that takes a ``request: gr.Request | None`` parameter.

    ``what`` completes "You are already …", e.g. ``"training a 2D model"``.
    """
    def decorate(fn: Callable) -> Callable:
        if not inspect.isgeneratorfunction(fn):
            raise TypeError("jobs.heavy wraps generator handlers only (Stop must reach them)")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            session = _session_of(args, kwargs)
            if session is None:
                yield from fn(*args, **kwargs)
                return
            job = _claim(session, what)
            try:
                gen = fn(*args, **kwargs)
                job.gen = weakref.ref(gen)
                yield from _as_session(session, gen)
            finally:
                _release(session)

        return wrapper

    return decorate


def _as_session(session: str, gen: Iterator) -> Iterator:
    """Run each step of ``gen`` with :func:`current_session` = ``session`` and the server's torch
    thread count (Gradio may resume a generator on another worker thread, so both are set
    around every step)."""
    try:
        while True:
            _local.session = session
            _use_threads()
            try:
                item = next(gen)
            except StopIteration:
                return
            finally:
                _local.session = None
            yield item
    finally:
        gen.close()  # ■ Stop: the handler's own finally runs now


_local = threading.local()
_threads: int | None = None  # torch threads per job (set_threads); None: leave torch's own


def set_threads(n: int | None) -> None:
    """Heavy jobs compute on ``n`` torch threads, whichever worker thread runs them."""
    global _threads
    _threads = n


def _use_threads() -> None:
    """Set torch's thread count on this thread, once (OpenMP keeps one count per thread: a
    Gradio worker thread starts with every core, whatever the main thread set)."""
    if _threads is None or getattr(_local, "threads", None) == _threads:
        return
    import torch

    torch.set_num_threads(_threads)
    _local.threads = _threads


_pool: WorkerPool | None = None  # where heavy jobs run (set_pool); None: in the handler's thread


def set_pool(pool: WorkerPool | None) -> WorkerPool | None:
    """Run heavy jobs (2D training and sampling, image training and sampling) in ``pool``'s
    worker processes (``app.serve`` sets one; handlers called directly, as in most tests,
    compute in their own thread). Returns the pool used before, still open: whoever started
    a pool closes it (a test server that replaced the suite's server's pool puts it back)."""
    global _pool
    old, _pool = _pool, pool
    return old


def train_pool() -> WorkerPool | None:
    """The worker pool that this heavy job computes in, or None: the handler's thread. Only
    jobs of a served session use the pool (handlers called directly, as in tests, compute
    in their own thread, whether or not a server runs in the same process)."""
    return _pool if current_session() is not None else None


def server_pool() -> WorkerPool | None:
    """The served app's worker pool (None when not served), e.g. to measure its processes."""
    return _pool


WAIT_DONE_S = 10.0
"""How long a follow-up waits for a stopped job to hand its work back (:func:`wait_done`)."""


def wait_done(request, timeout_s: float = WAIT_DONE_S) -> None:
    """Wait (at most ``timeout_s``) until the request's session runs no heavy job.

    A follow-up event after ■ Stop can start while the stopped job's generator is still being
    closed (Gradio retries the close while a step runs); a job computing in a worker process
    hands its model or frames back in that close. Follow-ups that read them call this first.
    The close waits its turn in a worker that other runs share (a step each of up to
    ``runs_per_worker`` runs), so on a busy server it can take seconds, not the 2 s this
    waited before.
    """
    session = getattr(request, "session_hash", None)
    if session is None:
        return
    deadline = time.monotonic() + timeout_s
    while running(session) is not None and time.monotonic() < deadline:
        time.sleep(0.02)


def in_worker(run, returns: tuple[str, ...], method: str = "__iter__", args: tuple = ()):
    """Iterate ``run.method(*args)`` (a sampling run) in a worker process of
    :func:`train_pool` when the server has one, getting back ``run``'s attributes ``returns``
    at the end (however it ends); else iterate it here."""
    pool = train_pool()
    if pool is None:
        return getattr(run, method)(*args)
    return pool.iterate(run, returns=returns, method=method, args=args)


def current_session() -> str | None:
    """The session whose heavy job runs on this thread now (None outside :func:`heavy`)."""
    return getattr(_local, "session", None)


# ---------------------------------------------------------------------------------------------
# What each visitor computed lately
# ---------------------------------------------------------------------------------------------


class Usage:
    """CPU seconds each session computed lately, decaying with half-life ``half_life_s``.

    A job starts with its session's recent usage as its computed time (:class:`Paced`), so a
    visitor who presses ▶ Train again and again right after each turn starts *long*: on the
    shared lane, giving way at once to anyone waiting. A student who trained a preset a few
    minutes ago starts fresh.
    """

    def __init__(self, half_life_s: float = 60.0) -> None:
        self.half_life_s = half_life_s
        self._lock = threading.Lock()
        self._cpu: dict[str, tuple[float, float]] = {}  # session → (cpu s, when)

    def recent(self, session: str | None, now: float | None = None) -> float:
        if session is None:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            cpu, when = self._cpu.get(session, (0.0, now))
        return cpu * 0.5 ** ((now - when) / self.half_life_s)

    def add(self, session: str | None, cpu_s: float, now: float | None = None) -> None:
        if session is None or cpu_s <= 0:
            return
        now = time.monotonic() if now is None else now
        value = self.recent(session, now) + cpu_s
        with self._lock:
            self._cpu[session] = (value, now)
            if len(self._cpu) > 4096:  # forget the quietest half (sessions long gone)
                keep = sorted(self._cpu.items(), key=lambda kv: kv[1][1])[2048:]
                self._cpu = dict(keep)


USAGE = Usage()


# ---------------------------------------------------------------------------------------------
# A long run gives way when others wait
# ---------------------------------------------------------------------------------------------

_watched = None  # the served Blocks whose queue waiting() reads


def watch_queues(demo) -> None:
    """Read how many events wait in ``demo``'s queue (``app.serve`` calls it)."""
    global _watched
    _watched = demo


def waiting(queue_id: str) -> int:
    """Events waiting for a slot of concurrency group ``queue_id`` (0 when not served).

    Reads Gradio's ``Blocks._queue.event_queue_per_concurrency_id`` (Gradio 6.31);
    ``tests/app/test_limits.py`` fails if that changes.
    """
    try:
        group = _watched._queue.event_queue_per_concurrency_id.get(queue_id)
        return len(group.queue) if group is not None else 0
    except AttributeError:
        return 0


def queued_sessions() -> set[str]:
    """Sessions with an event waiting for a slot in the served app's queue (empty when not
    served). Such a session is not idle, however long it waits (:mod:`pages.sessions`)."""
    try:
        groups = list(_watched._queue.event_queue_per_concurrency_id.values())
    except AttributeError:
        return set()
    return {event.session_hash for group in groups for event in list(group.queue)}


def turn_over(queue_id: str, computed_s: float) -> str | None:
    """Why a run that has computed for ``computed_s`` CPU seconds (:attr:`Paced.computed_s`)
    should stop now to free its slot for a waiting user, or None."""
    if computed_s < limits.ACTIVE.turn_s:
        return None
    n = waiting(queue_id)
    if n == 0:
        return None
    return (f"the end of its turn ({limits.ACTIVE.turn_s:g} s of computing; {n} other"
            f"{'s' if n > 1 else ''} waiting)")


# ---------------------------------------------------------------------------------------------
# Long jobs take turns
# ---------------------------------------------------------------------------------------------


SHORT_FIRST_S = 0.5  # a long job's step waits at most this long for short jobs to finish
SHORT_STALE_S = 5.0
"""A short job that has not stepped for this long no longer counts as running: one that was
dropped without an end (its generator suspended for good, held by a reference cycle) would
otherwise make every long step on the server wait :data:`SHORT_FIRST_S` for ever — in the
test suite, a likelihood bound that takes 10 s did not finish in 90 s."""


class Lane:
    """A lock for long jobs' steps that goes to the waiting job that has computed least, after
    the short jobs.

    "Least attained service": a job that just became long goes before greedy jobs that have
    computed for a minute, and two greedy jobs alternate (each one's service grows while it
    runs). Ties go to the earlier request.

    Short jobs first: while any short job runs (:meth:`short_started` … :meth:`short_ended`,
    which :class:`Paced` calls), the next long step waits, up to ``short_first_s``; then it
    goes anyway, so long jobs keep moving (and reach their turn's end) on a busy server. A
    class's ▶ Train and Sample presses thus get the cores, and greedy jobs the time between
    them: the soak measured students' jobs running 5 s by the clock for 1.2 CPU s beside two
    greedy jobs.
    """

    def __init__(self, *, short_first_s: float = SHORT_FIRST_S,
                 short_stale_s: float = SHORT_STALE_S) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._tickets = 0
        self._waiting: set[tuple[float, int]] = set()
        self._short: dict[object, float] = {}  # short job's key → when it last stepped
        self.short_first_s = short_first_s
        self.short_stale_s = short_stale_s

    def short_started(self, key: object = None) -> None:
        """Short job ``key`` steps now (called at each of its steps: it counts as running
        while it stepped within ``short_stale_s``)."""
        now = time.monotonic()
        with self._cond:
            self._short[key] = now
            if len(self._short) > 64:  # forget jobs dropped long ago without an end
                self._short = {k: t for k, t in self._short.items()
                               if now - t <= 60 * self.short_stale_s}

    def short_ended(self, key: object = None) -> None:
        with self._cond:
            self._short.pop(key, None)
            self._cond.notify_all()

    def _live_shorts(self, now: float) -> int:
        # under self._cond
        return sum(now - t <= self.short_stale_s for t in self._short.values())

    @property
    def shorts(self) -> int:
        """Short jobs running now (that stepped within ``short_stale_s``)."""
        with self._cond:
            return self._live_shorts(time.monotonic())

    @contextlib.contextmanager
    def hold(self, attained_s: float = 0.0):
        """Wait for the lane (least attained first, after short jobs up to ``short_first_s``),
        hold it for the ``with`` block."""
        with self._cond:
            me = (attained_s, self._tickets)
            self._tickets += 1
            self._waiting.add(me)
            deadline = time.monotonic() + self.short_first_s
            while True:
                if self._busy or min(self._waiting) != me:
                    self._cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left > 0 and self._live_shorts(time.monotonic()) > 0:
                    self._cond.wait(left)  # woken when a short job ends
                    continue
                break
            self._waiting.discard(me)
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


LONG_LANE = Lane()


class Paced:
    """Iterate ``steps``; once the job has computed for ``long_after_s`` CPU seconds (default:
    the server's limit), compute each further item while holding the shared long-job ``lane``.

    :attr:`computed_s` is the job's computed time so far, measured inside the steps by
    :func:`~diffusion_core.workflows.remote.thread_clock`: the thread's CPU time (torch
    computing in it with one intra-op thread) plus what a worker process computed for it.
    :attr:`turn_s` adds what the visitor's session computed lately beyond one turn
    (:data:`USAGE`, half-life one minute). On a busy server a preset run takes longer by
    the clock but not in CPU, so it never becomes long, never waits behind a greedy job's step
    and never loses its turn; a visitor who starts job after job gives way at once.
    """

    def __init__(self, steps: Iterable, *, long_after_s: float | None = None,
                 lane: Lane = LONG_LANE, usage: Usage | None = None) -> None:
        self._it = iter(steps)
        self._limit = limits.ACTIVE.long_after_s if long_after_s is None else long_after_s
        self._lane = lane
        self._usage = usage = USAGE if usage is None else usage
        self._session = current_session()
        self.computed_s = 0.0  # this job's own CPU time: what makes it long (the lane)
        # What the visitor computed lately beyond one turn counts towards this job's turn: a
        # visitor who starts job after job gives way at once; a student's preset runs, a
        # sample and an image run (≈ 3 CPU s in a few minutes) count nothing.
        self.carried_s = max(0.0, usage.recent(self._session) - limits.ACTIVE.turn_s)

    @property
    def turn_s(self) -> float:
        """CPU seconds that count towards this job's turn (:func:`turn_over`)."""
        return self.carried_s + self.computed_s

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        if self.computed_s > self._limit:
            self._set_short(False)
            with self._lane.hold(self.computed_s):
                return self._step()  # the time spent waiting for the lane is not counted
        self._set_short(True)
        try:
            return self._step()
        except BaseException:  # StopIteration included: the job is over
            self._set_short(False)
            raise

    _short = False

    def __del__(self) -> None:  # a job dropped without close() stops counting as short
        if self._short:
            self._set_short(False)

    def _set_short(self, short: bool) -> None:
        """Count this job among the lane's short jobs while it is short and not over (each
        short step tells the lane again: :attr:`Lane.short_stale_s`)."""
        if short:
            self._short = True
            self._lane.short_started(id(self))
        elif self._short:
            self._short = False
            self._lane.short_ended(id(self))

    def _step(self):
        t0 = thread_clock()
        try:
            return next(self._it)
        finally:
            spent = thread_clock() - t0  # a worker process's computing counts as this job's
            self.computed_s += spent
            self._usage.add(self._session, spent)

    def close(self) -> None:
        """Close the underlying generator (its ``finally`` runs now)."""
        self._set_short(False)
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


def paced(steps: Iterable, *, long_after_s: float | None = None, lane: Lane = LONG_LANE
          ) -> Paced:
    """:class:`Paced` over ``steps`` (the name the handlers read as a verb)."""
    return Paced(steps, long_after_s=long_after_s, lane=lane)
