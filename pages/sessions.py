"""Bounded memory and disk over a long day: idle sessions dropped, output files swept.

Gradio keeps every session's state until the state's ``time_to_live`` runs out, and keeps the
session itself (its copy of the page's config) until ``state_session_capacity`` pushes it out;
sessions opened by scripts (``gradio_client``) never close. :class:`Janitor` runs beside the
server and, every ``period_s``:

* drops each session unused for ``session_idle_s`` (no event at all), running its states'
  delete callbacks first (they remove the session's output files); a session with a heavy job
  running, or an event waiting in the queue, is never dropped;
* deletes files under :func:`output_root` older than the cache age (CSV exports, sampler
  GIF/PNG files of sessions that are gone);
* deletes files in Gradio's cache older than the cache age (:func:`sweep_files`);
* hands the freed heap back to the system (:func:`release_memory`);
* replaces worker processes that idled for 30 s holding more than
  ``limits.ACTIVE.worker_mb`` above their fresh size by fresh ones (``WorkerPool.recycle``).

Models a session trained or uploaded (the image-training tab) are checkpoint folders that only
that session sees in the image sampler's list (:data:`SESSION_MODELS`); they go with the
session when the janitor drops it.

:func:`clear_outputs` empties :func:`output_root` at start-up (files of a previous run).
Gradio's own upload/served-file cache is cleaned by ``Blocks(delete_cache=...)`` (``app.py``)
and, for the files it does not track, by :func:`sweep_files` in the janitor.

The session part reads two attributes of Gradio's ``StateHolder`` (``time_last_used``,
``session_data``; Gradio 6.31): ``tests/app/test_limits.py`` fails if they change.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime
import functools
import gc
import os
import shutil
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pages import common, jobs, limits

FREED: Counter[str] = Counter()
"""How many per-session states of each kind were freed (expired or dropped) since start-up."""


def on_free(kind: str, cleanup: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
    """A ``gr.State`` delete callback: runs ``cleanup(value)`` and counts one freed ``kind``."""
    def callback(value: Any) -> None:
        if cleanup is not None:
            cleanup(value)
        if value is not None:
            FREED[kind] += 1
    return callback


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def output_root() -> Path:
    """Where the app writes files for visitors (under ``GRADIO_TEMP_DIR`` when it is set)."""
    base = os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()
    return Path(base) / "diffusion-lab-outputs"


def output_dir(kind: str) -> Path:
    """A fresh folder ``output_root()/kind/…`` for one export or run (created)."""
    parent = output_root() / kind
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=parent))


def clear_outputs() -> None:
    """Remove every file the app wrote for visitors (start-up: nobody can fetch them now)."""
    shutil.rmtree(output_root(), ignore_errors=True)


def sweep_outputs(max_age_s: float, *, now: float | None = None) -> int:
    """Delete output folders older than ``max_age_s`` seconds; returns how many went."""
    now = time.time() if now is None else now
    removed = 0
    root = output_root()
    if not root.is_dir():
        return 0
    for kind in root.iterdir():
        if not kind.is_dir():
            continue
        for run in kind.iterdir():
            try:
                old = now - run.stat().st_mtime > max_age_s
            except FileNotFoundError:
                continue
            if old:
                shutil.rmtree(run, ignore_errors=True)
                removed += 1
    return removed


def gradio_cache() -> Path:
    """Gradio's cache folder (uploads and served files): ``GRADIO_TEMP_DIR`` or its default."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def sweep_files(root: Path, max_age_s: float, *, now: float | None = None) -> int:
    """Delete files under ``root`` not modified for ``max_age_s`` seconds, then empty folders.

    For Gradio's cache: ``Blocks(delete_cache=...)`` only deletes the files of components it
    tracks, and the copies of a component made in a session (a ``gr.update`` of a download
    button or an image) are not tracked — the soak showed the cache growing by ~1,700 files
    in 5 minutes and staying there. Returns how many files went.
    """
    now = time.time() if now is None else now
    root = Path(root)
    if not root.is_dir():
        return 0
    removed = 0
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_file() or path.is_symlink():
                if now - path.lstat().st_mtime > max_age_s:
                    path.unlink()
                    removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        except (FileNotFoundError, OSError):
            continue
    return removed


def folder_bytes(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path`` (0, 0 if it does not exist)."""
    files = size = 0
    for p in Path(path).rglob("*"):
        try:
            if p.is_file():
                files += 1
                size += p.stat().st_size
        except FileNotFoundError:
            pass
    return files, size


# ---------------------------------------------------------------------------------------------
# Memory given back to the system
# ---------------------------------------------------------------------------------------------

# glibc keeps freed memory in per-thread arenas and rarely returns it: measured with the soak
# benchmark, RSS stayed ≈ 200 MB above the start after every session had been dropped. Fewer
# arenas and a trim after freeing give it back. (No-ops where glibc is absent.)
M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)


@functools.cache
def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018  (both must exist: glibc)
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(n: int = 2) -> bool:
    """Let glibc use at most ``n`` malloc arenas (threads share them); True if it took."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, int(n)) == 1)


def release_memory() -> bool:
    """Return freed heap memory to the system now (``malloc_trim(0)``); True if any went."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


# ---------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------


def drop_idle_sessions(state_holder, idle_s: float) -> int:
    """Drop every session of ``state_holder`` unused for ``idle_s`` seconds; returns how many.

    Each dropped session's states get their delete callbacks (as on expiry) before the session
    and its config copy are released. Sessions running a heavy job, or with an event waiting
    in the queue, are kept: the soak showed students whose ▶ Train waited over a minute for a
    slot coming back to "No image loaded yet".
    """
    now = datetime.datetime.now()
    dropped = 0
    queued = jobs.queued_sessions()
    for session, last in list(state_holder.time_last_used.items()):
        if (now - last).total_seconds() <= idle_s or jobs.running(session) or session in queued:
            continue
        state_holder.delete_state(session)  # runs every state's delete callback
        SESSION_MODELS.drop(session)
        with state_holder.lock:
            state_holder.session_data.pop(session, None)
            state_holder.time_last_used.pop(session, None)
        dropped += 1
    if dropped:
        common.log.info("dropped %d idle session(s)", dropped)
    return dropped


# ---------------------------------------------------------------------------------------------
# Models a session trained or uploaded
# ---------------------------------------------------------------------------------------------

SESSION_KEY_PREFIX = "session:"  # keys of session models in the image sampler's model list
SESSION_MODELS_KIND = "session-models"  # their folders: output_root()/session-models/run-…


@dataclass(frozen=True)
class SessionModel:
    """One checkpoint folder a session made: ``key`` (``"session:NAME"``, what the sampler's
    dropdown holds), the dropdown ``label`` and the ``directory`` (safetensors + JSON)."""

    key: str
    label: str
    directory: Path


class SessionModels:
    """Checkpoint folders each session trained or uploaded, seen by that session only.

    Keyed by Gradio's session hash: another session asking for the same key gets nothing, so
    a visitor can never load someone else's model. At most ``per_session`` models per session
    (the oldest goes) and, across sessions, the server's session capacity
    (``limits.ACTIVE.max_sessions``; the least recently used session goes). A model's folder is
    removed when it is replaced or dropped; :meth:`get` refreshes its time so the output sweep
    (:func:`sweep_outputs`, by age) keeps folders in use, and skips a folder the sweep took.
    """

    def __init__(self, per_session: int = 4) -> None:
        self.per_session = per_session
        self._lock = threading.Lock()
        self._models: OrderedDict[str, OrderedDict[str, SessionModel]] = OrderedDict()

    def put(self, session: str, name: str, directory: Path, label: str, *,
            replaces: str | None = None) -> str:
        """Add ``session``'s model ``name`` (replacing one of that name, and every one whose
        name starts with ``replaces``: a newer version of the same model); returns its key."""
        if not session:
            raise ValueError("a session model needs the visitor's session")
        key = SESSION_KEY_PREFIX + name
        gone: list[SessionModel] = []
        with self._lock:
            mine = self._models.setdefault(session, OrderedDict())
            self._models.move_to_end(session)
            stale = [k for k in mine
                     if k == key or (replaces and k.startswith(SESSION_KEY_PREFIX + replaces))]
            for k in stale:
                old = mine.pop(k, None)
                if old is not None and old.directory != Path(directory):
                    gone.append(old)
            mine[key] = SessionModel(key, label, Path(directory))
            while len(mine) > self.per_session:
                gone.append(mine.popitem(last=False)[1])
            while len(self._models) > limits.ACTIVE.max_sessions:
                gone.extend(self._models.popitem(last=False)[1].values())
        for m in gone:
            shutil.rmtree(m.directory, ignore_errors=True)
        return key

    def get(self, session: str | None, key: str) -> SessionModel | None:
        """``session``'s model ``key`` whose folder still exists (its time refreshed), or None
        (another session's key, an unknown one, or a folder swept away)."""
        with self._lock:
            model = self._models.get(session, {}).get(key) if session else None
        if model is None or not model.directory.is_dir():
            return None
        with contextlib.suppress(OSError):
            os.utime(model.directory)
        return model

    def choices(self, session: str | None) -> list[tuple[str, str]]:
        """``(label, key)`` of ``session``'s models, newest first (for the sampler's list)."""
        with self._lock:
            models = list(self._models.get(session, {}).values()) if session else []
        return [(m.label, m.key) for m in reversed(models) if m.directory.is_dir()]

    def drop(self, session: str) -> int:
        """Forget ``session``'s models and remove their folders; returns how many."""
        with self._lock:
            mine = self._models.pop(session, None)
        for m in (mine or {}).values():
            shutil.rmtree(m.directory, ignore_errors=True)
        return len(mine or {})

    def __len__(self) -> int:
        """Sessions holding models now."""
        with self._lock:
            return len(self._models)


SESSION_MODELS = SessionModels()
"""The app's one store of session models (the image-training tab writes, tab 4 reads)."""


WORKER_IDLE_S = 30.0
"""A worker idle this long (seconds) holding more than ``limits.ACTIVE.worker_mb`` MB above its
fresh size is replaced (``WorkerPool.recycle``)."""


class Janitor(threading.Thread):
    """Every ``period_s``: drop idle sessions, sweep old output files, give freed memory back
    to the system (a daemon thread)."""

    def __init__(self, demo, *, session_idle_s: float, file_age_s: float,
                 period_s: float = 30.0) -> None:
        super().__init__(name="diffusion-lab-janitor", daemon=True)
        self.demo = demo
        self.session_idle_s = session_idle_s
        self.file_age_s = file_age_s
        self.period_s = period_s
        self._stop_event = threading.Event()
        self._reported: set[str] = set()  # sessions whose overdue job was logged

    def run(self) -> None:
        while not self._stop_event.wait(self.period_s):
            self.tidy()

    def tidy(self) -> None:
        """One round (also callable directly, e.g. by tests)."""
        try:
            holder = getattr(self.demo, "state_holder", None)
            if holder is not None:
                drop_idle_sessions(holder, self.session_idle_s)
            sweep_outputs(self.file_age_s)
            sweep_files(gradio_cache(), self.file_age_s)
            # Every round, not only after a session's state was freed: a new ▶ Train or ▶ Sample
            # replaces a session's model or frames without any expiry, and glibc keeps the old
            # pages (the soak's RSS kept growing ≈ 30 MB/min with 22 busy users).
            release_memory()
            pool = jobs.server_pool()
            if pool is not None:  # workers that a big job left holding memory: fresh ones
                pool.recycle(limits.ACTIVE.worker_mb, WORKER_IDLE_S)
            self._report_overdue()
        except Exception:  # a janitor must never take the server down; log the fault
            common.log.exception("janitor round failed")

    def _report_overdue(self, now: float | None = None) -> None:
        """Log each heavy job that has outlived every cap, once (a fault: nobody drives it).
        ``now``: the monotonic clock (tests)."""
        if not jobs.overdue(limits.ACTIVE.overdue_s, now, where=False):
            return
        gc.collect()  # a generator nobody drives may only be held by a reference cycle
        for session, what, age, where in jobs.overdue(limits.ACTIVE.overdue_s, now):
            if session not in self._reported:
                self._reported.add(session)
                pool = jobs.server_pool()
                common.log.warning(
                    "a heavy job (%s) of session %s… has run for %.0f s, past every cap: %s; "
                    "runs per busy worker: %s", what, session[:6], age, where,
                    None if pool is None else [w.jobs for w in pool.busy_workers()])

    def stop(self) -> None:
        self._stop_event.set()
