"""Tab 3's event handlers: check the inputs, drive the 2D workflow, format what it returns.

Plain module-level functions (generators for anything long) so tests can call them directly;
each user's model lives in their own ``gr.State`` as a
:class:`~diffusion_core.workflows.toy2d.Toy2DSession`. The work itself (training, the vector
field, sampling, the quality score, forward diffusion) is in
:mod:`diffusion_core.workflows.toy2d`; here are the Stop-friendly yield cadence, the figures
(:mod:`pages.toy2d.figures`) and the messages.
"""

from __future__ import annotations

import math
import time

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from diffusion_core.sampling.config import SAMPLER_NAMES, SAMPLERS
from diffusion_core.workflows.remote import WorkerLost
from pages import common, jobs, limits, sessions
from pages.toy2d import draw
from pages.toy2d.figures import (
    ANIM_POINTS,
    FIELD_FRAMES,
    FORWARD_FRAMES,
    GRID,
    MAX_FRAMES,
    data_figure,
    field_animation_figure,
    field_key,
    forward_figure,
    live_field_figure,
    live_samples_figure,
    loss_figure,
    sample_figure,
    vector_field_figure,
    with_field_table,
)
from pages.toy2d.inputs import (
    DENOISER_CHOICES,
    DRAWN,
    FIELD_CHOICES,
    MAX_SAMPLES,
    MAX_SEED,
    PREDICTION_NAMES,
    check_choice,
    data_spec,
    default_noise,
    is_session,
    model_config,
    need_model,
    num_classes,
    schedule_from_ui,
    source_choices,
    train_config,
)

# Imported by the first event that needs them, not while the UI is built (see pages.common).
torch = common.LazyModule("torch")
workflow = common.LazyModule("diffusion_core.workflows.toy2d")
sampling = common.LazyModule("diffusion_core.sampling")
training = common.LazyModule("diffusion_core.training")

YIELD_EVERY_S = 0.1  # progress text / state at least this often (Stop reacts within 0.5 s)
FIGURE_EVERY_S = 0.6  # rebuild the loss figure at most this often while training
LIVE_EVERY_S = 2.5  # redraw the live field and sample preview this often while training
PREVIEW_SAMPLES = 300  # points in the live sample preview
MAX_PATHS = 20  # the Sample sub-tab traces at most this many points' paths

__all__ = [
    "data_plot", "dataset_changed", "field_animation", "field_table_view",
    "forward_animation", "live_figures",
    "loss_figure", "memorisation_md", "sample", "sample_finished", "samples_csv",
    "samples_csv_name", "shared_schedule_changed", "train", "train_finished",
    "train_stopped", "vector_field", "vector_field_after_train",
]


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def data_plot(dataset, n, noise, seed, drawing=None) -> go.Figure:
    """Scatter of the toy set ``make_2d(dataset, n, noise=noise, seed=seed)``, or of the
    learner's drawing (``dataset = "drawn"``, ``drawing`` its anchors: :mod:`.draw`)."""
    if dataset == DRAWN and drawing is None:
        return draw.empty_figure()  # nothing drawn yet: the plot says how to start
    spec = data_spec(dataset, n, noise, seed, drawing)
    return data_figure(spec, spec.draw())


def dataset_changed(dataset, n, seed, drawing=None) -> tuple[go.Figure, float]:
    """A new data set: its default noise and its scatter."""
    noise = default_noise(dataset)
    return data_plot(dataset, n, noise, seed, drawing), noise


def shared_schedule_changed(shared, source):
    """Tab 1 changed its schedule: refresh the label of that choice (keep the selection)."""
    return gr.update(choices=source_choices(shared), value=source)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


LIMIT_PREFIX = "**⏱ Stopped at"  # a run that spent its budget starts its text with this


def _progress_md(state, p, note: str, *, stopped: bool = False, limit: str | None = None
                 ) -> str:
    if p is None:
        return f"**Step 0 / {state.trainer.config.steps}** of this press · {note}"
    rate = p.run_step / p.elapsed_s if p.elapsed_s > 0 else float("nan")
    if limit is not None:
        return (f"{LIMIT_PREFIX} {limit}** (this server's limit) after "
                f"{p.run_step:,} of {p.run_steps:,} steps of this press · loss {p.loss:.3f} · "
                f"{p.elapsed_s:.1f} s · {rate:,.0f} steps/s  \nThe model keeps what it learned: "
                f"press ▶ Train to continue. {_total_steps_md(state)}")
    head = "Done" if p.done else ("Stopped" if stopped else "Training")
    # Two counts: this press's steps (bold, "step k / n") and the model's steps over every
    # press so far, named so that "300 / 300" beside "600" does not read as a contradiction.
    return (f"**{head}: step {p.run_step:,} / {p.run_steps:,}** of this press · loss "
            f"{p.loss:.3f} · {p.elapsed_s:.1f} s · {rate:,.0f} steps/s  \n{note}. "
            f"{_total_steps_md(state)}")


def _total_steps_md(state) -> str:
    """The model's training steps over all presses of ▶ Train, in words."""
    runs = getattr(state, "runs", 1)
    presses = "this one press" if runs <= 1 else f"all {runs:,} presses"
    return f"The model has now trained **{state.trainer.step:,} steps** in {presses}."


def live_figures(state, t) -> tuple[go.Figure, go.Figure]:
    """The live views beside the loss: the learned field at ``t`` (clamped to 0..T−1; the
    middle when it is not a number) and :data:`PREVIEW_SAMPLES` fast samples, both from the
    weights as they are now (``workflow.live_preview``: computed by the worker that trains
    them, mid-run). :class:`WorkerLost` if that worker died."""
    try:
        t = min(max(int(t), 0), state.T - 1)
    except (TypeError, ValueError, OverflowError):
        t = state.T // 2
    preview = workflow.live_preview(state, t, n_samples=PREVIEW_SAMPLES, grid_size=GRID)
    return live_field_figure(state, preview), live_samples_figure(state, preview)


@jobs.heavy("training a 2D model")
def train(state, dataset, n, noise, seed, source, kind, T, shared, hidden, depth,
          time_embedding, activation, lr, batch_size, steps, prediction="eps",
          conditional=False, drawing=None, t=None, request: gr.Request | None = None):
    """Train (or keep training) this session's model; a generator for the Train button.

    ``prediction`` (``"eps"``, ``"x0"`` or ``"v"``: what the network outputs) goes into
    ``TrainConfig.prediction``; changing it starts a new model, which keeps the per-t loss
    curves of the other predictions trained on the same data, schedule and model.

    ``conditional`` ("Train with class labels (for guidance)") trains a class-conditional
    model (``num_classes`` = the set's classes, label dropout ``TrainConfig.p_uncond``) for
    the Guidance sub-tab; ticking or unticking it starts a new model. A set without classes
    is refused with the names of the sets that have them.

    ``drawing``: the anchors ``[m, 2]`` of the learner's drawing (the *Use my drawing* state,
    :mod:`pages.toy2d.draw`), used when ``dataset`` is ``"drawn"``; a drawing has no classes.

    ``t`` (the Vector field sub-tab's t slider) is where the live views look: every
    :data:`LIVE_EVERY_S` of training and once at the end, the field at t and a small sample
    preview of the weights as they are then (:func:`live_figures`; a new model looks at its
    middle t, where its t slider moves).

    One press trains at most the server's budget (:data:`pages.limits.ACTIVE`: steps and
    seconds); when it is spent the run stops cleanly, keeps the model and says so.
    ``request`` (filled in by Gradio) identifies the session: one heavy job per session.

    Yields ``(state, loss figure, progress Markdown, t-slider update, sampler-steps update,
    live field, live samples)`` (``gr.skip()`` for parts that did not change) at least
    every 0.1 s of work, so the Stop button (which closes the generator) leaves the model
    trained so far in ``state``. The same data, schedule and model settings continue the
    model (learning rate, batch and steps may change); other settings start a new one.
    """
    spec = data_spec(dataset, n, noise, seed, drawing)
    sched_cfg = schedule_from_ui(source, kind, T, shared)
    model_cfg = model_config(hidden, depth, time_embedding, activation, sched_cfg.T,
                             num_classes(dataset, conditional))
    train_cfg = train_config(lr, batch_size, steps, prediction)
    budget = limits.ACTIVE.training_budget()
    try:  # (train_config has held the steps to the budget's cap)
        workflow.check_step_cost(model_cfg, train_cfg)
        state, reason = workflow.start_or_continue(state, spec, sched_cfg, model_cfg, train_cfg)
    except ValueError as e:
        raise common.UserError(str(e)) from None
    if reason is not None:
        what = ("" if train_cfg.prediction == "eps"
                else f", predicting {PREDICTION_NAMES[train_cfg.prediction]}")
        if state.conditional:
            what += (f", with class labels: {' / '.join(state.class_names)}, label dropout "
                     f"{train_cfg.p_uncond:g}")
        note = f"Started a {reason} ({spec.name}, {sched_cfg.kind} T = {sched_cfg.T}{what})"
        # A new model may have a new T: move the t slider and the sampler's step count.
        t_update = gr.update(maximum=state.T - 1, value=state.T // 2)
        steps_update = gr.update(value=state.T, maximum=state.T)
        t = state.T // 2
    else:
        note = f"Continuing the model from step {state.trainer.step:,} (same settings)"
        t_update = steps_update = gr.skip()
    skip = gr.skip()
    yield (state, loss_figure(state), _progress_md(state, None, note), t_update, steps_update,
           skip, skip)

    p = None
    spent = None
    last_yield = last_fig = last_live = time.perf_counter()
    # In a worker process when the server has a pool (diffusion_core.workflows.remote: Python's
    # lock slowed training ~100× beside busy threads); long jobs take turns (CPU-timed).
    run = jobs.paced(state.train(train_cfg.steps, pool=jobs.train_pool()))
    try:
        for p in run:
            now = time.perf_counter()
            if p.done:
                break
            spent = (budget.stop_reason(p.run_step, p.elapsed_s)
                     or jobs.turn_over(jobs.TRAIN_QUEUE, run.turn_s))
            if spent is not None:
                break
            if now - last_live >= LIVE_EVERY_S:
                last_fig = last_yield = now
                yield (state, loss_figure(state), _progress_md(state, p, note), skip, skip,
                       *live_figures(state, t))
                last_live = time.perf_counter()  # the next one LIVE_EVERY_S of training on
            elif now - last_fig >= FIGURE_EVERY_S:
                last_fig = last_yield = now
                yield (state, loss_figure(state), _progress_md(state, p, note), skip, skip,
                       skip, skip)
            elif now - last_yield >= YIELD_EVERY_S:
                last_yield = now
                yield state, skip, _progress_md(state, p, note), skip, skip, skip, skip
    except training.TrainingDiverged as e:
        gr.Warning(f"Training diverged: {e}")
        yield (state, loss_figure(state),
               _progress_md(state, p, f"⚠️ Diverged (NaN loss): {e}", stopped=True), skip,
               skip, skip, skip)
        return
    except WorkerLost as e:
        common.log.error("2D training worker lost: %s", e)
        gr.Warning(f"Training stopped: {e}. The model is as it was before this press: "
                   "press ▶ Train to try again.")
        yield (state, loss_figure(state),
               _progress_md(state, None, f"⚠️ Stopped: {e}", stopped=True), skip, skip, skip,
               skip)
        return
    finally:
        run.close()
    if spent is not None:
        gr.Info(f"Training stopped at {spent} of one press; press ▶ Train to continue.")
    live = live_figures(state, t) if p is not None else (skip, skip)
    yield state, loss_figure(state), _progress_md(state, p, note, limit=spent), skip, skip, *live


def train_stopped(state) -> str:
    """Progress text after Stop (the cancelled generator cannot write it)."""
    if not is_session(state):
        return "Stopped before any training step."
    recent = state.losses[-50:]
    loss = f" · recent loss {np.mean(recent):.3f}" if recent else ""
    return (f"**Stopped** after {state.trainer.step:,} steps in total{loss}. The model keeps "
            "what it learned: press ▶ Train to continue, or look at the vector field and "
            "samples.")


def train_finished(state, t, text, show="learned", request: gr.Request | None = None):
    """Runs after ▶ Train ends, is stopped (cancelled) or diverges; not after a gr.Error.

    Refreshes the vector field (``show``: learned, ideal or both, as the Show control says)
    and, after a Stop, the loss figure and the progress text. Its
    outputs are all of the train event's outputs: writing them clears the "Error" badge that
    Gradio 6 puts on the outputs of a cancelled event.
    Returns ``(vector field, loss figure, progress, t slider, sampler steps)``.
    """
    jobs.wait_done(request)  # a stopped run's model comes back from its worker
    skip = gr.skip()
    if not is_session(state):
        return skip, skip, skip, skip, skip
    field_fig = vector_field_after_train(state, t, show)
    if isinstance(text, str) and (text.startswith(("**Done", LIMIT_PREFIX))
                                  or "Diverged" in text):
        return field_fig, skip, skip, skip, skip
    return field_fig, loss_figure(state), train_stopped(state), skip, skip


# ---------------------------------------------------------------------------------------------
# Vector field
# ---------------------------------------------------------------------------------------------


def vector_field(state, t, show="learned") -> go.Figure:
    """Arrows of −ε on a GRID×GRID grid over the noised cloud x_t (same ε each time).

    ``show``: ``"learned"`` the network's −ε̂_θ (dark arrows), ``"ideal"`` the ideal denoiser's
    exact −ε* for the training points (vermillion), ``"both"`` the two overlaid and scaled
    together. Arrow length is normalised: proportional to |ε| up to its 90th percentile over
    the grid, which (and anything longer) spans 0.9 grid cells; hover shows the true ε̂ (and
    ε*) and the marker colour is |ε| of the main field.
    """
    show = check_choice("Show", show, FIELD_CHOICES)
    state = need_model(state)
    if state is None:
        return gr.skip()
    t = common.number("t", t, 0, state.T - 1, integer=True)
    if show == "ideal":
        return vector_field_figure(state, workflow.vector_field(state, t, grid_size=GRID,
                                                                denoiser="ideal"))
    learned = workflow.vector_field(state, t, grid_size=GRID)
    ideal = (workflow.vector_field(state, t, grid_size=GRID, denoiser="ideal")
             if show == "both" else None)
    return vector_field_figure(state, learned, ideal)


def field_animation(state, show="learned") -> go.Figure:
    """"▶ Play over t": the field (``show``: learned, ideal or both) at :data:`FIELD_FRAMES`
    evenly spaced t from T−1 down to 0, as client-side animation frames on one grid
    (:func:`~diffusion_core.workflows.toy2d.field_frames`): the order the reverse chain goes,
    from pure noise to the data. The browser plays it (``pages/widgets/animated.py``)."""
    show = check_choice("Show", show, FIELD_CHOICES)
    state = need_model(state)
    if state is None:
        return gr.skip()
    if show == "ideal":
        return field_animation_figure(state, workflow.field_frames(
            state, frames=FIELD_FRAMES, grid_size=GRID, denoiser="ideal"))
    learned = workflow.field_frames(state, frames=FIELD_FRAMES, grid_size=GRID)
    ideal = (workflow.field_frames(state, frames=FIELD_FRAMES, grid_size=GRID,
                                   denoiser="ideal") if show == "both" else None)
    return field_animation_figure(state, learned, ideal)


def field_table_view(state, t, show="learned", request: gr.Request | None = None):
    """After ▶ Train (following :func:`train_finished`): the vector field at ``t`` again, now
    carrying the learned field at every t (:func:`~diffusion_core.workflows.toy2d.field_table`,
    one batched forward pass, ≈ 0.1–0.2 s for the preset; :func:`~.figures.field_table_meta`,
    ≈ 70 kB), which the browser keeps to redraw the t slider's field at once
    (:func:`~.figures.field_fast_js`). Skipped (no change) without a model, while this session
    trains, or if the model trained on while the table was computed: a table of other weights
    is never sent. The live previews during training never compute one."""
    jobs.wait_done(request)  # a stopped run's model comes back from its worker
    session = getattr(request, "session_hash", None)
    if not is_session(state) or (session is not None and jobs.running(session) is not None):
        return gr.skip()
    key = field_key(state)
    fig = vector_field_after_train(state, t, show)
    table = workflow.field_table(state, grid_size=GRID)
    if field_key(state) != key or not isinstance(fig, go.Figure):
        return gr.skip()
    return with_field_table(fig, state, table)


def vector_field_after_train(state, t, show="learned") -> go.Figure:
    """The vector field refreshed after training, silently skipped if there is no model."""
    if not is_session(state):
        return gr.skip()
    try:
        t = min(max(int(t), 0), state.T - 1)
    except (TypeError, ValueError):
        t = state.T // 2
    if show not in {v for _, v in FIELD_CHOICES}:
        show = "learned"
    return vector_field(state, t, show)


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------


def samples_csv_name(dataset: str, settings, T: int, denoiser: str = "network") -> str:
    """The samples file's name: ``<data set>_samples_<sampler>_<steps>.csv`` (e.g.
    ``moons_samples_ddpm_200.csv``; ``…_samples_ideal_ddim_25.csv`` for the ideal denoiser)."""
    who = "ideal_" if denoiser == "ideal" else ""
    return f"{dataset}_samples_{who}{settings.sampler}_{settings.resolved_steps(T)}.csv"


def samples_csv(state, denoiser="network"):
    """After Sample: the latest finished run's points, as a file for the ⬇ CSV button.

    Runs as a follow-up of the Sample event, so the button already holds the file when the
    learner clicks it (one click, a real file name: :func:`samples_csv_name`). Columns
    ``x1,x2`` in model coordinates, one row per sample. Returns a DownloadButton update,
    disabled while ``denoiser`` has no finished run in this session.
    """
    if denoiser not in {v for _, v in DENOISER_CHOICES}:
        denoiser = "network"
    score = state.last_scores.get(denoiser) if is_session(state) else None
    if score is None or score.samples is None or score.settings is None:
        return gr.update(value=None, interactive=False, label="⬇ CSV (sample first)")
    name = samples_csv_name(state.spec.name, score.settings, state.T, denoiser)
    path = sessions.output_dir("csv") / name
    np.savetxt(path, score.samples.numpy(), delimiter=",", header="x1,x2", comments="",
               fmt="%.6g")
    return gr.update(value=str(path), interactive=True, label=f"⬇ {name}")


def sample_finished(text):
    """Runs after Sample ends or is stopped; says so after a Stop (and clears its badges).

    Returns ``(figure, quality Markdown)``.
    """
    if isinstance(text, str) and text.startswith("Sampling") and "stopped" not in text:
        return gr.skip(), "Sampling stopped: " + text.removeprefix("Sampling").strip(" …")
    return gr.skip(), gr.skip()


# The Sample sub-tab's note on x̂0 (the 2D preset's cosine schedule ends at ᾱ_{T−1} ≈ 6e-8;
# measured in diffusion_core/workflows/toy2d.py, Toy2DSampling).
X0_BOX_MD = (
    "**x̂0 stays inside the data's box.** Each step predicts the clean point, "
    "$\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\varepsilon)/"
    "\\sqrt{\\bar\\alpha_t}$. At the first steps of the 2D preset's cosine schedule "
    "$\\bar\\alpha_t \\approx 6\\cdot10^{-8}$, so a small error in $\\hat\\varepsilon$ is "
    "multiplied by $1/\\sqrt{\\bar\\alpha_t} \\approx 4000$: DDIM and DPM-Solver++ (which "
    "trust x̂0 fully) would throw points out to ±4. So x̂0 is held inside a box 1.1× the "
    "data's size, which changes nothing once x̂0 is sensible. *clip x̂0 to [−1, 1]* clamps "
    "it tighter, as for images."
)


def _quality_md(q, n: int, how: str) -> str:
    if q.bad:
        return (f"⚠️ {q.bad} of {n} samples are NaN/inf — the model is not usable yet; "
                "train longer or with a lower learning rate.")
    return (f"**SW1 = {q.sw1:.4f}** · floor {q.floor:.4f} ({q.ratio:.1f}× the floor; "
            f"lower is better) · **NN ratio = {q.nn:.2f}** (1 is ideal) · {n:,} samples, "
            f"{how}")


def blur_width(schedule, t: int) -> float:
    """√((1 − ᾱ_t)/ᾱ_t): how far x̂0 is blurred over training points by a step from t to −1."""
    ab = schedule.alpha_bar(t)
    return math.sqrt((1.0 - ab) / ab)


def memorisation_md(state, result) -> str:
    """Copies of training points and what they mean (memorisation vs generalisation)."""
    c = result.copies
    if c is None:
        return ""
    text = (f"**{c.share:.0%} of the samples sit on a training point** (closer than "
            f"{c.radius:.1e}; a fresh draw of the data: {c.reference:.0%}).")
    copies = c.share >= max(0.2, 5 * c.reference)
    if result.denoiser == "network":
        if copies:
            return text + (" This network copies training points, as the ideal denoiser "
                           "would: it has memorised its training set.")
        return text + (" A network that generalises puts its samples *between* the training "
                       "points, like new data (NN ratio ≈ 1); compare the ideal denoiser "
                       "(Denoiser above).")
    blur = blur_width(state.schedule, result.last_t)
    if copies:
        return text + (" The ideal denoiser is the exact optimum of the training loss, and "
                       "that optimum **reproduces the training set**: memorisation. A network "
                       "that generalises misses this optimum on purpose and fills in between "
                       "the points (NN ratio ≈ 1).")
    more = ("more sampling steps, or a larger T (custom schedule)" if result.last_t > 0
            else "a larger T (custom schedule)")
    return text + (
        f" The ideal denoiser memorises, but its samples can only copy points that lie further "
        f"apart than the chain's last step blurs: training points are {c.spacing:.3f} apart "
        f"on average, and the step from t = {result.last_t} to −1 averages x̂0 over about "
        f"√((1−ᾱ_t)/ᾱ_t) = {blur:.3f}, so samples land *between* neighbouring points (NN "
        f"ratio {result.quality.nn:.2f}). With fewer training points (e.g. 200) or {more}, "
        "it copies them.")


@jobs.heavy("sampling")
def sample(state, sampler, steps, eta, n_samples, seed, clip_x0=False, denoiser="network",
           trace=0, request: gr.Request | None = None):
    """Sample N points with the reverse chain; a generator for the Sample button.

    ``denoiser``: ``"network"`` the trained model, ``"ideal"`` the exact ideal denoiser of the
    training points (it memorises them: the text reports how many samples copy one).

    Unticked, ``clip_x0`` keeps the network's x̂0 inside the data's box (±1.1 × the training
    points' largest |coordinate|, ``Toy2DSampling(x0_box=True)``), which makes DDIM and
    DPM-Solver++ work from their defaults on a schedule that ends at ᾱ ≈ 6e-8 (see
    :data:`X0_BOX_MD`); ticked, it clamps x̂0 to [−1, 1] instead, as for images (see
    sampling.sample). η applies to DDIM only (it is not passed to the other samplers). An
    empty Steps box
    means the sampler's default (DDPM: the full chain; DDIM and DPM-Solver++ 2M: 25 steps).
    A run may take the server's sampling budget (:data:`pages.limits.ACTIVE`); one that spends
    it stops with a message and no samples (a half-run chain is not a sample).

    ``trace`` ("Trace paths of N points", 0..:data:`MAX_PATHS`; empty: none) keeps every
    step's position of the first N samples in the same run (in the worker when the server
    has one) and draws their paths x_{T−1} → … → x_{−1} over the samples, start and end
    marked.

    Yields ``(figure | no-change, Markdown)``: progress while running, then the animated
    figure (≤ 60 frames, final samples over the data) and the quality numbers.
    """
    denoiser = check_choice("Denoiser", denoiser, DENOISER_CHOICES)
    state = need_model(state)
    if state is None:
        yield gr.skip(), "Train a model first."
        return
    if sampler not in SAMPLER_NAMES:
        raise common.UserError(f"Sampler must be one of {', '.join(SAMPLER_NAMES)}.")
    T = state.T
    steps = common.number("Sampling steps", steps, 1, T, integer=True,
                          default=SAMPLERS[sampler].default_steps(T))
    eta = common.number("η", eta, 0.0, 1.0, default=0.0)
    n_samples = common.number("Number of samples", n_samples, 2, MAX_SAMPLES, integer=True)
    seed = common.number("Sampling seed", seed, 0, MAX_SEED, integer=True, default=0)
    trace = common.number("Trace paths of N points", trace, 0, MAX_PATHS, integer=True,
                          default=0)
    budget = limits.ACTIVE.sampling_budget()

    settings = sampling.SamplerSettings(sampler=sampler, steps=steps, eta=eta,
                                        spacing="trailing", clip_x0=bool(clip_x0))
    box = not clip_x0 and denoiser == "network"  # the ideal denoiser's x̂0 needs no box
    how = settings.describe(T) + (", x̂0 kept in the data's box" if box else "")
    if denoiser == "ideal":
        how = "ideal denoiser, " + how
    run = workflow.Toy2DSampling(state, settings, n_samples, seed, max_frames=MAX_FRAMES,
                                 denoiser=denoiser, x0_box=box, trace=trace)
    yield gr.skip(), f"Sampling ({how}) …"
    start = last = time.perf_counter()
    chain = jobs.paced(jobs.in_worker(run, workflow.Toy2DSampling.STATE, "steps"))
    try:
        for step in chain:
            now = time.perf_counter()
            spent = (budget.stop_reason(step.index + 1, now - start)
                     or jobs.turn_over(jobs.SAMPLE_QUEUE, chain.turn_s))
            if spent is not None and step.t_prev != -1:
                gr.Warning(f"Sampling stopped at {spent}.")
                yield gr.skip(), (
                    f"{LIMIT_PREFIX} {spent}** (this server's limit) after step "
                    f"{step.index + 1} / {step.num_steps}: no samples to score. Use fewer "
                    "steps (DDIM with 20–50 is close to the full chain) or fewer samples.")
                return
            if now - last >= YIELD_EVERY_S:
                last = now
                yield gr.skip(), f"Sampling ({how}): step {step.index + 1} / {step.num_steps} …"
    finally:
        chain.close()

    result = run.result()
    fig = sample_figure(state, result, how)
    moved = min(n_samples, ANIM_POINTS)  # the animation's fixed subset (figures.subset)
    shown = "" if moved == n_samples else f"; the animation moves {moved:,} of them"
    if result.paths is not None:
        k = result.paths.shape[1]
        shown += (f"; lines: the paths of {k} point{'s' if k > 1 else ''} through all "
                  f"{len(result.path_t) - 1} steps (○ start, ◆ end)")
    md = _quality_md(result.quality, n_samples, how + shown)
    copies = memorisation_md(state, result)
    if copies:
        md += "\n\n" + copies
    yield fig, md


# ---------------------------------------------------------------------------------------------
# Forward diffusion animation
# ---------------------------------------------------------------------------------------------


def forward_animation(dataset, n, noise, seed, source, kind, T, shared, drawing=None
                      ) -> go.Figure:
    """x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε of the data set at ~30 evenly spaced t (one fixed ε);
    ``drawing``: the anchors of the learner's drawing (``dataset = "drawn"``)."""
    spec = data_spec(dataset, n, noise, seed, drawing)
    cfg = schedule_from_ui(source, kind, T, shared)
    return forward_figure(workflow.forward_frames(spec, cfg, frames=FORWARD_FRAMES))
