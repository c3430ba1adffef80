"""Diffusion Lab: build the Gradio app from pages/ and launch it (nothing runs at import)."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Gradio's queue re-summarises its last GRADIO_ANALYTICS_MAX_EVENTS (10,000) events in a pandas
# table after every event, for a monitoring page this app does not use: a cost that grows with
# the class (12 s of the server's CPU in a 5-minute soak). Once per 1,000 events, of 1,000.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
# gr.Plot's config asks for bokeh's version with `import bokeh` each time it is built (each
# new session's first figure): a failed search of sys.path every time, 6 s of the server's CPU
# in the soak. Without bokeh installed, answer "not installed" at once.
if importlib.util.find_spec("bokeh") is None:
    sys.modules.setdefault("bokeh", None)

import gradio as gr  # noqa: E402

from diffusion_core.schedule.config import ScheduleConfig  # noqa: E402
from diffusion_core.workflows.remote import WORKER_NICE, WorkerPool  # noqa: E402
from pages import (  # noqa: E402
    common,
    fast_skip,
    forward,
    imagetrain,
    jobs,
    layout,
    lean_sessions,
    lessons,
    limits,
    links,
    sampler,
    schedules,
    sessions,
    toy2d,
)

fast_skip.install()  # gr.skip() outputs cost the server nothing (pages/fast_skip.py)
lean_sessions.install()  # sessions keep no copy of the page's config (pages/lean_sessions.py)

TITLE = "Diffusion Lab"
INTRO = (
    "## Diffusion Lab · how denoising diffusion (DDPM, Ho et al. 2020) works\n"
    + common.INDEX_CONVENTION_MD
)
# The tabs by id (the ids name them in links: ?tab=toy2d); "Start here" comes first.
TAB_LABELS = {
    "start": "Start here",
    "schedules": "1 · Noise schedules",
    "forward": "2 · Forward noising",
    "toy2d": "3 · 2D toy trainer",
    "sampler": "4 · Image sampler",
    "imagetrain": "5 · Train images",
}
TABS = (("schedules", schedules), ("forward", forward), ("toy2d", toy2d), ("sampler", sampler),
        ("imagetrain", imagetrain))


def threads_per_job() -> int:
    """Torch threads per job: half the cores, so two concurrent jobs don't fight over them
    (``DIFFUSION_LAB_THREADS`` overrides it)."""
    return int(os.environ.get("DIFFUSION_LAB_THREADS", max(1, (os.cpu_count() or 2) // 2)))


def worker_nice() -> int:
    """How much lower the worker processes' CPU priority is than the server's: ``WORKER_NICE``,
    or ``DIFFUSION_LAB_WORKER_NICE`` (0 … 19; 0: the same priority — the test suite, whose two
    test processes would otherwise starve each other's workers)."""
    raw = os.environ.get("DIFFUSION_LAB_WORKER_NICE", "").strip()
    if not raw:
        return WORKER_NICE
    if not raw.isdigit() or not 0 <= int(raw) <= 19:
        raise ValueError(f"DIFFUSION_LAB_WORKER_NICE must be a whole number from 0 to 19, got "
                         f"{raw[:40]!r}")
    return int(raw)


def configure_threads() -> int:
    """Use :func:`threads_per_job` torch threads in this thread and in every heavy job's thread.

    ``torch.set_num_threads`` sets OpenMP's count for the calling thread only: Gradio runs
    handlers on worker threads, which kept OpenMP's default (every core) — measured: a job on
    a 2-core server computed on 2 threads and its CPU time was counted half. ``__main__`` also
    sets ``OMP_NUM_THREADS`` before torch loads (every thread then starts with it); heavy jobs
    set it on their own thread (:func:`pages.jobs.set_threads`). Imports torch (≈ 1 s), so
    ``__main__`` calls it after the server is up.
    """
    import torch

    n = threads_per_job()
    torch.set_num_threads(n)
    jobs.set_threads(n)
    return n


def warm_up() -> None:
    """Import the engine's compute modules (and torch) before the first visitor needs them.

    Building the UI imports none of them (see ``pages/common.py``), so the server answers
    ≈ 1.5 s sooner; this pays that import right after start-up instead of in a visitor's first
    event.
    """
    # What the first views need first (tabs 1 and 2), then the rest. The packages load their
    # names lazily, so name the modules that compute.
    import diffusion_core.schedule.noise_schedule  # noqa: F401, I001
    import diffusion_core.forward  # noqa: F401
    import diffusion_core.images  # noqa: F401
    import diffusion_core.data.toy2d  # noqa: F401
    import diffusion_core.data.registry  # noqa: F401
    import diffusion_core.checkpoints  # noqa: F401
    import safetensors.torch  # noqa: F401  (checkpoints imports it only when loading weights)
    import diffusion_core.models.build  # noqa: F401
    import diffusion_core.sampling.loop  # noqa: F401
    import diffusion_core.evaluation.distances  # noqa: F401
    import diffusion_core.training.trainer  # noqa: F401
    import diffusion_core.workflows.toy2d  # noqa: F401
    import diffusion_core.workflows.image_sampling  # noqa: F401
    import diffusion_core.workflows.forward_demo as forward_demo

    forward_demo.builtin_image("digit")  # loads scikit-learn's digits (≈ 1 s on first use)
    from diffusion_core.workflows.remote import warm_optimizer

    warm_optimizer()  # the first optimizer imports torch._dynamo (≈ 2 s): not in ▶ Train
    # The digit judge of tab 4's sampler lab (fitted once per process, 1.5–5 s): fitted now,
    # not inside a visitor's first sweep, where it held up that visitor's Stop.
    from diffusion_core.evaluation.digits import default_digit_classifier

    default_digit_classifier()


def build_demo(lim: limits.Limits | None = None) -> gr.Blocks:
    """Build the whole app under limits ``lim`` (default: from the environment).

    The schedule chosen on tab 1 is shared via ``gr.State``. *Start here* comes first; links
    and lessons set the tabs' controls (:mod:`pages.links`). Served files (uploads, images,
    CSVs) older than the cache age are deleted on a schedule.
    """
    lim = limits.configure(lim if lim is not None else limits.Limits.from_env())
    cache_age = int(lim.cache_minutes * 60)
    with gr.Blocks(title=TITLE, delete_cache=(max(60, cache_age // 2), cache_age)) as demo:
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                gr.Markdown(INTRO, latex_delimiters=[{"left": "$", "right": "$",
                                                      "display": False}])
            with gr.Column(scale=1, min_width=240):
                layout.presentation_toggle()
        shared_schedule = gr.State(ScheduleConfig(kind="cosine", T=1000).to_dict(),
                                   time_to_live=lim.state_ttl_s)
        shareable: dict[str, links.TabLinks | None] = {"start": None}
        bars: dict[str, links.LinkBar] = {}
        # "wrap": every tab button stays in the bar (Gradio's default hides the ones that do not
        # fit behind a "···" menu); on a phone the bar scrolls sideways (pages/layout.py).
        with gr.Tabs(overflow_behavior="wrap", elem_id="dl-tabs") as tabs:
            with gr.Tab(TAB_LABELS["start"], id="start"):
                lesson_buttons = lessons.render(TAB_LABELS)
            for tab_id, page in TABS:
                with gr.Tab(TAB_LABELS[tab_id], id=tab_id):
                    bars[tab_id] = links.link_bar(tab_id)
                    shareable[tab_id] = page.render(shared_schedule)
        # Links (?tab=toy2d&dataset=spirals) and the lessons' buttons set the tabs' controls.
        links.wire(tabs, links.LinkSpec(shareable, TAB_LABELS), bars,
                   [(button, ls.tab, ls.settings_dict) for button, ls in lesson_buttons])
    return demo


def launch_kwargs() -> dict:
    """Where and how to serve, with the upload and session limits of :data:`limits.ACTIVE`."""
    lim = limits.ACTIVE
    return dict(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        theme=common.theme(),
        css=common.CSS,
        head=layout.head(),
        js=layout.js(),
        footer_links=[],
        # Gradio's run history (on by default since 6.24) writes every event's outputs into the
        # browser's localStorage: ≈ 1 s of main-thread time per slider move on tab 1
        # (bench/browser_latency.py). Nothing here uses it.
        run_history=False,
        max_file_size=lim.max_upload_bytes,
        state_session_capacity=lim.max_sessions,
    )


def serve(demo: gr.Blocks, **overrides) -> sessions.Janitor:
    """Queue and launch ``demo`` (not blocking) and start its janitor; returns the janitor.

    Used by ``__main__`` and by the tests, so both serve with the same limits. Files written
    for visitors by an earlier run are removed first.
    """
    lim = limits.ACTIVE
    sessions.clear_outputs()
    sessions.limit_arenas()
    # Heavy jobs run in a few worker processes, several jobs each, not in the server's
    # threads: beside busy threads, Python's lock slowed training ~100×
    # (diffusion_core/workflows/remote.py).
    pool = WorkerPool(lim.workers, threads=threads_per_job(), nice=worker_nice(),
                      runs_per_worker=lim.runs_per_worker)
    pool.start()
    jobs.set_pool(pool)
    demo.queue(default_concurrency_limit=2)
    demo.launch(**{**launch_kwargs(), **overrides}, prevent_thread_lock=True)
    jobs.watch_queues(demo)  # a long run gives way when others wait for its kind of slot
    janitor = sessions.Janitor(demo, session_idle_s=lim.session_idle_s,
                               file_age_s=lim.cache_minutes * 60,
                               period_s=min(30.0, lim.session_idle_s / 4))
    janitor.start()
    return janitor


def configure_logging() -> None:
    """One line per event worth knowing (refused inputs at INFO); faults keep tracebacks."""
    logging.basicConfig(level=os.environ.get("DIFFUSION_LAB_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up requests


if __name__ == "__main__":
    # Before torch loads: every thread (Gradio's workers too) computes on this many threads.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_job()))
    configure_logging()
    demo = build_demo()
    serve(demo)
    configure_threads()
    warm_up()
    demo.block_thread()
