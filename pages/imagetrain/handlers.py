"""The image-training tab's event handlers: check the inputs, drive the workflow, format it.

Plain module-level functions (a generator for training) so tests can call them directly; each
visitor's model lives in their own ``gr.State`` as an
:class:`~diffusion_core.workflows.image_train.ImageTrainSession`. The work itself (data,
networks, training, the panel, checkpoints) is :mod:`diffusion_core.workflows.image_train`;
here are the Stop-friendly yield cadence, the pictures (:mod:`.views`) and the messages.

=====================  ========================================================================
handler                what it does
=====================  ========================================================================
``data_changed``       shows the upload controls for "my own images"; Steps: the recipe's count
``recipe_changed``     the Steps box takes the chosen recipe's step count for these data
``train``              generator: trains (or continues) the model, streams the loss, the
                       progress and, every few seconds, the panel (x_t, x̂0, DDIM samples)
``train_finished``     after ▶ Train ends or is stopped: a fresh panel, the stop text, the model
                       published to the image sampler (this session only) and its zip
``upload_model``       a checkpoint zip (as ⬇ downloads it) → validated, never unpickled, into
                       the image sampler's list for this session
=====================  ========================================================================

Session models: a trained or uploaded model is a checkpoint folder in
:data:`pages.sessions.SESSION_MODELS` under the visitor's session, so tab 4 lists and loads it
for that session only (:mod:`pages.sampler.models`).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import gradio as gr

from diffusion_core.workflows.remote import WorkerLost
from pages import common, jobs, limits, sessions
from pages.imagetrain import views
from pages.imagetrain.inputs import (
    CHANNEL_CHOICES,
    DATA_CHOICES,
    MODEL_CHOICES,
    MODEL_NAMES,
    RECIPE_CHOICES,
    SIZE_CHOICES,
    UPLOAD,
    choice,
    is_session,
    recipe_defaults,
    recipe_steps,
    schedule_config,
    uploaded_paths,
)

# Imported by the first event that needs them, not while the UI is built (see pages.common).
workflow = common.LazyModule("diffusion_core.workflows.image_train")
training = common.LazyModule("diffusion_core.training")
checkpoints = common.LazyModule("diffusion_core.checkpoints")
image_sampling = common.LazyModule("diffusion_core.workflows.image_sampling")

YIELD_EVERY_S = 0.1  # progress text at least this often (■ Stop reacts within a step)
FIGURE_EVERY_S = 1.0  # the loss figure at most this often
PANEL_EVERY_S = 3.0  # a new panel at most this often …
PANEL_SHARE = 0.1  # … and at most this share of the time (a slow panel comes less often)
TRAINED_NAME = "trained"  # session models ▶ Train publishes: trained-<model uid>-<folder>
LIMIT_PREFIX = "**⏱ Stopped at"  # a run that spent its budget starts its text with this
DONE_PREFIX = "**Done"
DIVERGED = "Diverged"

__all__ = ["data_changed", "recipe_changed", "train", "train_finished", "upload_model"]


def data_changed(dataset, recipe):
    """The Data control changed → (upload controls, Steps, Model, Schedule, T): the upload
    controls show for "my own images" only; the other four take the recipe's own for these
    data (:func:`recipe_defaults`: e.g. the pixel MLP on a linear schedule for colour
    gradients), so ▶ Train trains what the train CLI's preset does."""
    return (gr.update(visible=dataset == UPLOAD), *recipe_changed(dataset, recipe))


def recipe_changed(dataset, recipe):
    """The Recipe control changed → (Steps, Model, Schedule, T): that recipe's own."""
    model, kind, T = recipe_defaults(dataset, recipe)
    return (gr.update(value=recipe_steps(dataset, recipe)), gr.update(value=model),
            gr.update(value=kind), gr.update(value=T))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _budget_words() -> str:
    return f"this server allows {limits.ACTIVE.training_budget().describe()} (▶ Train continues)"


def _progress_md(state, p, note: str, *, stopped: bool = False, limit: str | None = None
                 ) -> str:
    if p is None:
        return (f"**Step 0 / {state.trainer.config.steps:,}** · {note}  \n"
                f"<small>{_budget_words()}</small>")
    rate = p.run_step / p.elapsed_s if p.elapsed_s > 0 else float("nan")
    if limit is not None:
        return (f"{LIMIT_PREFIX} {limit}** (this server's limit) after "
                f"{p.run_step:,} of {p.run_steps:,} steps · loss {p.loss:.4f} · "
                f"{p.elapsed_s:.1f} s · {rate:.1f} steps/s  \nThe model keeps what it learned "
                f"({state.step:,} steps in total): press ▶ Train to continue.")
    head = "Done" if p.done else ("Stopped" if stopped else "Training")
    return (f"**{head}: step {p.run_step:,} / {p.run_steps:,} of this press** · loss "
            f"{p.loss:.4f} · {p.elapsed_s:.1f} s · {rate:.1f} steps/s  \n{note} "
            f"({state.step:,} steps in total, all presses)  \n<small>{_budget_words()}</small>")


def _inputs(dataset, files, size, channels, model_kind, recipe, kind, T, steps):
    """The controls checked → (dataset, paths, size, channels, model, recipe, schedule config,
    steps or None)."""
    dataset = choice("Data", dataset, DATA_CHOICES)
    model_kind = choice("Model", model_kind, MODEL_CHOICES)
    recipe = choice("Recipe", recipe, RECIPE_CHOICES)
    paths: list[str] = []
    if dataset == UPLOAD:
        size = choice("Image size", size, SIZE_CHOICES)
        channels = choice("Channels", channels, CHANNEL_CHOICES)
        paths = uploaded_paths(files)
        if not paths:
            raise common.UserError("My own images: upload several image files or one .zip of "
                                   "images first (the box under Data).")
    sched = schedule_config(kind, T)
    cap = limits.ACTIVE.training_budget().max_steps
    steps = common.number("Steps", steps, 1, cap, integer=True, default=0) or None
    return dataset, paths, size, channels, model_kind, recipe, sched, steps


@jobs.heavy("training an image model")
def train(state, dataset, files, size, channels, model_kind, recipe, kind, T, steps,
          request: gr.Request | None = None):
    """Train (or keep training) this session's image model; a generator for ▶ Train.

    ``dataset``: a registry set or ``"upload"`` (then ``files``: several image files or one
    zip, resized to ``size`` 16/32 with ``channels`` 1/3); ``model_kind``: pixel MLP, U-Net
    small or medium; ``recipe``: quick or default; ``kind`` and ``T``: the schedule;
    ``steps``: this press's steps (empty, from a script: the recipe's). The same data, model,
    schedule and
    recipe continue the model; anything else starts a new one.

    One press trains at most the server's budget (:data:`pages.limits.ACTIVE`: steps and
    seconds); when it is spent the run stops cleanly, keeps the model and says so.
    ``request`` (filled in by Gradio) identifies the session: one heavy job per session.

    Yields ``(state, loss figure, panel HTML, progress Markdown)`` (``gr.skip()`` for
    parts that did not change): a panel at once (step 0, before any training), then the text
    at least every 0.1 s of work, the loss figure every second and a panel every few seconds;
    ■ Stop (which closes the generator) leaves the model trained so far in ``state``.
    """
    dataset, paths, size, channels, model_kind, recipe, sched, steps = _inputs(
        dataset, files, size, channels, model_kind, recipe, kind, T, steps)
    budget = limits.ACTIVE.training_budget()
    try:
        data, description, data_note = workflow.load_images(dataset, files=paths, size=size,
                                                            channels=channels)
        train_cfg = workflow.train_config(dataset, recipe, steps=steps)
        c, s, _ = data.shape
        batch = workflow.fit_batch(workflow.model_config(model_kind, c, s, sched.T,
                                                         dataset=dataset, recipe=recipe),
                                   train_cfg.batch_size)
        cut = batch != train_cfg.batch_size
        train_cfg = replace(train_cfg, batch_size=batch)
        state, reason = workflow.start_or_continue(state, data, description, model_kind, sched,
                                                   train_cfg, recipe=recipe)
    except (ValueError, FileNotFoundError) as e:
        raise common.UserError(str(e)) from None
    if reason is not None:
        note = f"Started a {reason}: {workflow.describe(state)} ({data_note})"
        if cut:
            note += f"; batch {batch}, not the recipe's, so that ■ Stop reacts within a second"
        health = state.schedule.health().warning
        if health:
            note += f"  \n⚠️ {health}"
    else:
        note = f"Continuing the model from step {state.step:,} (same settings)"
    skip = gr.skip()
    panel = state.panel()  # the first panel before any step: it appears within a second
    yield state, views.loss_figure(state), views.panel_html(panel), _progress_md(state, None, note)

    p = spent = None
    last_yield = last_fig = last_panel = time.perf_counter()
    panel_every = max(PANEL_EVERY_S, panel.seconds / PANEL_SHARE)
    # In a worker process when the server has a pool (diffusion_core.workflows.remote: Python's
    # lock slows in-thread training beside busy threads); long jobs take turns (CPU-timed).
    run = jobs.paced(state.train(train_cfg.steps, pool=jobs.train_pool()))
    try:
        for p in run:
            if p.done:
                break
            spent = (budget.stop_reason(p.run_step, p.elapsed_s)
                     or jobs.turn_over(jobs.TRAIN_QUEUE, run.turn_s))
            if spent is not None:
                break
            now = time.perf_counter()
            if now - last_panel >= panel_every:
                panel = state.panel()  # mid-run: drawn by the worker that trains
                panel_every = max(PANEL_EVERY_S, panel.seconds / PANEL_SHARE)
                last_panel = last_fig = last_yield = time.perf_counter()
                yield (state, views.loss_figure(state), views.panel_html(panel),
                       _progress_md(state, p, note))
            elif now - last_fig >= FIGURE_EVERY_S:
                last_fig = last_yield = now
                yield state, views.loss_figure(state), skip, _progress_md(state, p, note)
            elif now - last_yield >= YIELD_EVERY_S:
                last_yield = now
                yield state, skip, skip, _progress_md(state, p, note)
    except training.TrainingDiverged as e:
        gr.Warning(f"Training diverged: {e}")
        yield (state, views.loss_figure(state), skip,
               _progress_md(state, p, f"⚠️ {DIVERGED} (NaN loss): {e}", stopped=True))
        return
    except WorkerLost as e:
        common.log.error("image training worker lost: %s", e)
        gr.Warning(f"Training stopped: {e}. The model is as it was before this press: "
                   "press ▶ Train to try again.")
        yield (state, views.loss_figure(state), skip,
               _progress_md(state, None, f"⚠️ Stopped: {e}", stopped=True))
        return
    finally:
        run.close()
    if spent is not None:
        gr.Info(f"Training stopped at {spent} of one press; press ▶ Train to continue.")
    yield (state, views.loss_figure(state), views.panel_html(state.panel()),
           _progress_md(state, p, note, limit=spent))


def _stopped_md(state) -> str:
    """Progress text after ■ Stop (the cancelled generator cannot write it)."""
    recent = state.recent_loss()
    loss = f" · recent loss {recent:.4f}" if math.isfinite(recent) else ""
    return (f"**Stopped** after {state.step:,} steps in total{loss}. The model keeps what it "
            f"learned: press ▶ Train to continue.  \n<small>{_budget_words()}</small>")


def _model_label(state) -> str:
    cfg = state.model_config
    name = state.dataset.get("name", "?")
    return (f"★ your {name} model · {MODEL_NAMES.get(state.model_kind, state.model_kind)} · "
            f"{cfg.channels}×{cfg.image_size}×{cfg.image_size} · {state.step:,} steps "
            "(this session only)")


def publish(state, session: str | None) -> tuple[str, Path]:
    """Write the session's model as a checkpoint folder with its zip; list it in the image
    sampler for ``session`` (replacing the one published before). Returns (label, zip)."""
    directory = sessions.output_dir(sessions.SESSION_MODELS_KIND)
    state.to_checkpoint(directory)
    name = state.dataset.get("name", "model")
    out = directory / f"diffusion-lab-{name}-{state.model_kind}-{state.step}-steps.zip"
    checkpoints.export_zip(directory, out)
    label = _model_label(state)
    if session:  # a newer version of this model replaces the one published before
        sessions.SESSION_MODELS.put(session, f"{TRAINED_NAME}-{state.uid}-{directory.name}",
                                    directory, label, replaces=f"{TRAINED_NAME}-{state.uid}-")
    return label, out


def _zip_button(path: Path | None):
    if path is None:
        return gr.update(value=None, interactive=False)
    kb = path.stat().st_size / 1024
    size = f"{kb / 1024:.1f} MB" if kb >= 1024 else f"{kb:.0f} kB"
    return gr.update(value=str(path), interactive=True, label=f"⬇ Download the model ({size})")


def train_finished(state, text, request: gr.Request | None = None):
    """Runs after ▶ Train ends, is stopped (cancelled) or diverges; not after a ``gr.Error``.

    Publishes the model: a checkpoint folder listed in the image sampler (tab 4) for this
    session only, and its zip behind ⬇ Download. After a Stop it also draws a fresh panel,
    the loss figure and the stop text (writing every output clears the "Error" badge Gradio
    puts on a cancelled event's outputs). Returns ``(loss figure, panel HTML, progress,
    download button)``.
    """
    skip = gr.skip()
    if not is_session(state) or state.step == 0:
        return skip, skip, skip, skip
    session = getattr(request, "session_hash", None)
    try:
        label, zipped = publish(state, session)
    except (OSError, ValueError) as e:  # a full disk, say: the model stays in this tab
        common.log.exception("publishing an image model failed")
        gr.Warning(f"Could not save the model for tab 4 and the download: {e}")
        label = zipped = None
    where = (f"  \n✓ **In tab 4 (Image sampler)** as “{label}”: every sampler feature works "
             "on it there. ⬇ Download keeps it as a zip." if session and label else "")
    if isinstance(text, str) and text.startswith((DONE_PREFIX, LIMIT_PREFIX)):
        return skip, skip, text + where, _zip_button(zipped)
    if isinstance(text, str) and DIVERGED in text:
        return skip, skip, text + where, _zip_button(zipped)
    return (views.loss_figure(state), views.panel_html(state.panel()),
            _stopped_md(state) + where, _zip_button(zipped))


# ---------------------------------------------------------------------------------------------
# Bring a model back
# ---------------------------------------------------------------------------------------------


def upload_model(file, request: gr.Request | None = None) -> str:
    """A checkpoint zip (as ⬇ Download writes it) → the image sampler's list, this session.

    :func:`~diffusion_core.checkpoints.import_zip` validates it (never unpickles: a pickle, a
    wrong config, mismatched weights or a non-zip are refused with its message). Returns the
    status Markdown.
    """
    paths = uploaded_paths(file)
    if not paths:
        return "Upload a model zip (as ⬇ Download writes it) to sample from it in tab 4."
    if len(paths) > 1:
        raise common.UserError("Upload one model zip at a time.")
    session = getattr(request, "session_hash", None)
    if not session:
        raise common.UserError("Uploading a model needs a browser session: reload the page.")
    directory = sessions.output_dir(sessions.SESSION_MODELS_KIND)
    name = Path(paths[0]).name
    try:
        ck = checkpoints.import_zip(paths[0], directory)
        if not image_sampling.is_image_model(ck):
            raise ValueError(f"{name} holds a 2D model, not an image model: only image models "
                             "can be sampled in tab 4")
    except ValueError as e:
        shutil.rmtree(directory, ignore_errors=True)
        raise common.UserError(str(e)) from None
    cfg = ck.model_config
    data = ck.dataset.get("name", "?") if isinstance(ck.dataset, dict) else "?"
    steps = ck.training.get("steps") if isinstance(ck.training, dict) else None
    trained = f" · {steps:,} steps" if isinstance(steps, int) else ""
    label = (f"★ uploaded {name} · {data} · {cfg.channels}×{cfg.image_size}×{cfg.image_size}"
             f"{trained} (this session only)")
    sessions.SESSION_MODELS.put(session, f"upload-{directory.name}", directory, label)
    return (f"✓ **{name}** is valid: a {data} model of {cfg.channels}×{cfg.image_size}×"
            f"{cfg.image_size} images. It is in **tab 4 (Image sampler)**'s model list as "
            f"“{label}”, for this browser session only.")
