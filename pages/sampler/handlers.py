"""Tab 4's event handlers: plain module-level functions (the sampler is a generator), so tests
call them directly. The run itself (frames kept, timing, files) is
:mod:`diffusion_core.workflows.image_sampling`; here are the controls' values, validation
messages, pictures and status lines.

=====================  ========================================================================
handler                what it does
=====================  ========================================================================
``model_changed``      the model's summary + card, its recorded sampler settings, and the class
                       and guidance s controls (shown only for a class-conditional model)
``rescan_models``      re-reads ``assets/models/`` (models may appear while the app runs)
``sampler_changed``    another sampler: which controls apply, and that sampler's number of steps
``run_sampler``        generator: streams x_t and x̂0 grids, keeps ≤ 100 frames, writes GIF/PNG;
                       guided toward a class (or one row per class) at scale s when asked
``run_finished``       after the run ends or is stopped: arms the frame slider
``files_so_far``       after the run ends or is stopped: GIF and PNG of the frames made so
                       far (a stopped run), ▶ Replay armed
``replay``             generator: plays the kept frames again (x_t beside x̂0, ~3 s)
``replay_instant``     after a run that finished in under :data:`INSTANT_S`: the same, once
``show_frame``         the frame slider: one kept frame (x_t beside x̂0)
=====================  ========================================================================

Everything a user produces (kept frames, output files) lives in their own ``gr.State`` (an
:class:`~diffusion_core.workflows.image_sampling.SamplingRun`).

Guidance (classifier-free, Ho & Salimans 2022): ε̃ = ε_u + s·(ε_c − ε_u); s = 0 the
unconditional model, s = 1 the conditional one, s > 1 guides harder. The "Class" control's
values are :data:`ANY` (unguided: exactly the run of an unconditional checkpoint; a
conditional network then runs its null class, i.e. s = 0), a class index as text ("3"), or
:data:`ROWS` (one row per class). Its choices follow the model (``model_changed``); a script
that wants a class calls ``/sampler_model`` first in its session, as the page does on load.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

import gradio as gr
import numpy as np

from diffusion_core.sampling.config import (
    GUIDANCE_MAX,
    SAMPLERS,
    SPACINGS,
    VARIANCES,
    SamplerSettings,
)
from diffusion_core.workflows.remote import WorkerLost
from pages import common, jobs, limits, sessions

from .models import _models_root, list_models, load_model, model_card_md, model_summary_md

# Imported by the first event that needs it, not while the UI is built (see pages.common).
image_sampling = common.LazyModule("diffusion_core.workflows.image_sampling")

MAX_IMAGES = 64  # the workflow's frames show up to 64 images: all of them here
DEFAULT_IMAGES = 16
BEAT_S = 0.1  # yield at least this often, so ■ Stop reacts within ~0.1 s (or one step)
MAX_UI_UPDATES = 30  # new pictures at most this many times per run
SLOW_RUN_S = 60.0  # tell the user when a run will take longer than this
FRAME_LABEL = "Frame: scrub the reverse chain after a run"
# Pictures streamed while the chain runs or replays are sent at scale 1 (the browser enlarges
# them, pixelated: .dl-pixel in assets/layout.css) — the same picture at ~1/scale² the bytes;
# encoding enlarged PNGs cost the server ~0.5 s of CPU per run (the soak's profile). The last
# picture and scrubbed frames come enlarged, for the image's own ⬇ download.
LIVE_SCALE = 1
ANY = "any"  # the Class control: unguided
ROWS = "rows"  # … one row per class
ANY_LABEL = "any (unguided, s = 0)"
ROWS_LABEL = "one row per class"
GUIDANCE_LABEL = f"Guidance s (0–{GUIDANCE_MAX:g})"
# The GIF: x_t beside x̂0 under a label band, with a t counter below; its last frame (the
# samples) held this long. Replay: at most REPLAY_FRAMES kept frames, REPLAY_FRAME_S apart
# (about 3 s), played by itself once after a run faster than INSTANT_S (a default digits run
# takes ~0.2 s: over before anyone sees it).
GIF_FRAME_MS = 80
GIF_HOLD_MS = 1500
REPLAY_FRAMES = 40
REPLAY_FRAME_S = 0.08
INSTANT_S = 1.0
REPLAY_LABEL = "▶ Replay"


# ---------------------------------------------------------------------------------------------
# Model and sampler controls
# ---------------------------------------------------------------------------------------------


def class_choices(ck) -> list[tuple[str, str]]:
    """The Class control's ``(label, value)`` choices for checkpoint ``ck``: unguided, each
    class by name (value: its index as text), one row per class; only unguided for an
    unconditional checkpoint."""
    names = ck.class_names
    if not names:
        return [(ANY_LABEL, ANY)]
    return [(ANY_LABEL, ANY), *((name, str(k)) for k, name in enumerate(names)),
            (ROWS_LABEL, ROWS)]


def model_changed(key):
    """Dropdown change → (summary, card, steps, sampler, η, spacing, variance, clip x̂0,
    class, guidance s).

    The sampler controls are set to the checkpoint's settings: the image preset, then what
    the checkpoint recorded (:func:`~diffusion_core.workflows.image_sampling.sampler_settings`).
    The class and guidance controls are shown only for a class-conditional checkpoint (class
    reset to unguided, s to its recorded default); hidden for the others.
    """
    ck = load_model(key)
    settings = image_sampling.sampler_settings(ck)
    T = ck.schedule.T
    return (
        model_summary_md(key, ck),
        model_card_md(key, ck),
        gr.update(value=settings.resolved_steps(T), maximum=T),
        settings.sampler,
        gr.update(value=float(settings.eta), interactive="eta" in settings.info.options),
        settings.spacing,
        gr.update(value=settings.variance,
                  interactive="variance" in settings.info.options),
        bool(settings.clip_x0),
        gr.update(choices=class_choices(ck), value=ANY, visible=ck.num_classes > 0),
        gr.update(value=image_sampling.guidance_default(ck), visible=ck.num_classes > 0),
    )


def rescan_models(current):
    """Re-read the model folder; keep the current choice when it is still there."""
    choices = list_models(_models_root())
    keys = [k for _, k in choices]
    return gr.update(choices=choices, value=current if current in keys else keys[0])


def sampler_changed(sampler, key):
    """DDPM: full chain by default, β/β̃ applies. DDIM: 25 steps by default, η applies.
    DPM-Solver++ 2M: 25 steps by default, neither applies."""
    if sampler not in SAMPLERS:
        raise common.UserError("Sampler must be one of "
                               f"{', '.join(s.label for s in SAMPLERS.values())}.")
    info = SAMPLERS[sampler]
    T = load_model(key).schedule.T
    return (gr.update(value=info.default_steps(T)),
            gr.update(interactive="eta" in info.options),
            gr.update(interactive="variance" in info.options))


# ---------------------------------------------------------------------------------------------
# Pictures, text and files of a run
# ---------------------------------------------------------------------------------------------


def _show(grid: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge a scale-1 frame by an integer factor (nearest neighbour) → ``[H, W, 3]`` uint8.

    Equal to ``images.make_grid(x, scale=scale, pad=scale)``: every pixel, borders included,
    becomes a scale × scale block, so 16×16 samples stay crisp.
    """
    big = image_sampling.enlarge(grid, scale)
    if big.ndim == 2:
        big = big[..., None]
    return np.ascontiguousarray(np.broadcast_to(big, (*big.shape[:2], 3)))


def _cleanup(run) -> None:
    """Remove a run's output folder (Gradio has copied the files it served into its cache)."""
    if getattr(run, "out_dir", None) is not None:
        shutil.rmtree(run.out_dir, ignore_errors=True)


def _is_run(run) -> bool:
    return run is not None and isinstance(run, image_sampling.SamplingRun)


def _validate(sampler, variance, steps, eta, spacing, n_images, seed, ck):
    """The controls checked against checkpoint ``ck``; an empty box means its default.

    An empty Steps box means the checkpoint's own step count (the image preset's: DDIM 25
    for the shipped models) whichever sampler is chosen — never the full 1000-step chain.
    """
    if sampler not in SAMPLERS:
        raise common.UserError("Sampler must be one of "
                               f"{', '.join(s.label for s in SAMPLERS.values())}.")
    if variance not in VARIANCES:
        raise common.UserError("DDPM variance must be β̃ (beta_tilde) or β (beta).")
    if spacing not in SPACINGS:
        raise common.UserError(f"Spacing must be one of {', '.join(SPACINGS)}.")
    T = ck.schedule.T
    steps = common.number("Steps", steps, 1, T, integer=True,
                          default=image_sampling.sampler_settings(ck).resolved_steps(T))
    eta = common.number("η", eta, 0.0, 1.0, default=0.0)
    n_images = common.number("Number of images", n_images, 1, MAX_IMAGES, integer=True,
                             default=DEFAULT_IMAGES)
    seed = common.number("Seed", seed, 0, common.MAX_SEED, integer=True, default=0)
    return sampler, variance, steps, eta, spacing, n_images, seed


def _guidance(ck, class_choice, guidance, n_images: int):
    """The Class and Guidance s controls checked against ``ck`` → ``(labels | None, s | None,
    ncols | None, n_images, words)``. One row per class: ``n_images`` per class (fewer when
    K × n would pass :data:`MAX_IMAGES`), one row each."""
    k = ck.num_classes
    if class_choice is None or class_choice == ANY:
        return None, None, None, n_images, (
            " · unguided (s = 0: the unconditional half of the model)" if k else "")
    if k == 0:
        raise common.UserError(f"Class: this model is unconditional (no classes), so only "
                               f"'{ANY}' applies. Choose a model with classes to guide.")
    valid = [v for _, v in class_choices(ck)]
    if not isinstance(class_choice, str) or class_choice not in valid:
        raise common.UserError(f"Class: {common.short(class_choice)} is not a class of this "
                               f"model; choose {ANY}, 0 … {k - 1} or {ROWS}.")
    s = common.number("Guidance s", guidance, 0.0, GUIDANCE_MAX,
                      default=image_sampling.guidance_default(ck))
    if class_choice == ROWS:
        per = n_images
        if per * k > MAX_IMAGES:
            per = MAX_IMAGES // k
            if per < 1:
                raise common.UserError(f"One row per class needs at most {MAX_IMAGES} classes; "
                                       f"this model has {k}.")
        labels = [c for c in range(k) for _ in range(per)]
        return labels, s, per, per * k, (
            f" · one row per class ({k} × {per}), guidance s = {s:g}")
    c = int(class_choice)
    return [c] * n_images, s, None, n_images, (
        f" · class {ck.class_names[c]}, guidance s = {s:g}")


def _progress_md(run, how: str, step, elapsed: float, per_step: float) -> str:
    left = per_step * (run.num_steps - step.index - 1)
    return (f"**Step {step.index + 1} / {run.num_steps}** · t = {step.t} → {step.t_prev} · "
            f"{per_step * 1000:.0f} ms/step · {elapsed:.1f} s, ≈ {left:.0f} s left · {how}")


def _slow_note(expected_s: float, budget) -> str:
    """A line for a run expected to be slow or to hit the time cap ("" otherwise)."""
    cap = budget.max_seconds
    if cap is not None and expected_s > cap:
        return (f"  \nThis run would take about {expected_s:.0f} s; it will stop at this "
                f"server's {cap:g} s limit. Use DDIM with 20–50 steps, or fewer images.")
    if expected_s > SLOW_RUN_S:
        return (f"  \nThis run will take about {expected_s / 60:.1f} min on this machine; "
                "■ Stop any time, or use DDIM with fewer steps.")
    return ""


def _timing_md(run) -> str:
    return (f"**{run.ms_per_step:.1f} ms per step** (network + update, {run.n_images} "
            f"image{'s' if run.n_images > 1 else ''}) · total **{run.total_s:.2f} s** for "
            f"{run.steps_done} steps, drawing included · {len(run.xt)} frames kept")


@functools.lru_cache(maxsize=8)
def _font(size: int):
    """Pillow's own font at ``size`` px (FreeType, shipped inside Pillow: no system fonts)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def gif_font_px(width: int) -> int:
    """The GIF labels' font size for frames ``width`` px wide; each label band is this + 10."""
    return max(11, min(18, width // 24))


def gif_caption(run, i: int) -> str:
    """The t counter under GIF frame ``i`` (plain ASCII: any font has the glyphs)."""
    t, step = run.ts[i], run.step_of[i]
    if t < 0:
        return f"t = -1   the samples ({run.steps_done} steps)"
    return f"t = {t}   step {step + 1} of {run.num_steps}"


def labelled_gif(run, path: str | Path) -> Path:
    """The reverse chain of ``run`` as a GIF that explains itself: each frame is x_t beside
    x̂0 (:func:`~diffusion_core.workflows.image_sampling.gif_frames`: ≤ 60 evenly spaced kept
    frames, the last one included) under a band naming the two panels, with the frame's t
    and step below; the last frame is held :data:`GIF_HOLD_MS` ms. Works for a stopped run
    too (the frames kept so far)."""
    from PIL import Image, ImageDraw

    from diffusion_core import images
    from diffusion_core.sampling.spacing import evenly_spaced

    if not run.xt:
        raise ValueError("the run has no frames yet")
    panels = image_sampling.gif_frames(run)
    index = evenly_spaced(len(run.xt), image_sampling.GIF_FRAMES)
    assert len(index) == len(panels)
    h, w = panels[0].shape[:2]
    side = run.xt[0].shape[1]  # gif_frames' layout: x_t | 4·scale white | x̂0
    gscale = max(1, min(run.scale, image_sampling.GIF_SIDE // side))
    right = side * gscale + 4 * gscale
    size = gif_font_px(w)
    font, band = _font(size), size + 10
    grey = panels[0].ndim == 2  # grey stays one channel (no slow colour quantisation)
    mode, white, ink = ("L", 255, 40) if grey else ("RGB", (255, 255, 255), (30, 41, 59))
    head = Image.new(mode, (w, h + 2 * band), white)  # the band naming the panels, drawn once
    draw = ImageDraw.Draw(head)
    draw.text((4, 4), "x_t: the chain", fill=ink, font=font)
    draw.text((right + 4, 4), "predicted x0", fill=ink, font=font)
    frames = []
    for i, panel in zip(index, panels, strict=True):
        canvas = head.copy()
        canvas.paste(Image.fromarray(panel), (0, band))
        ImageDraw.Draw(canvas).text((4, h + band + 4), gif_caption(run, i), fill=ink, font=font)
        frames.append(np.asarray(canvas))
    return images.save_gif(frames, path, duration_ms=GIF_FRAME_MS, hold_last_ms=GIF_HOLD_MS)


def write_files(run, directory: str | Path):
    """A finished run's files: ``samples.png`` as the workflow writes it
    (:func:`~diffusion_core.workflows.image_sampling.write_files`) and the reverse chain as
    :func:`labelled_gif` instead of its plain GIF (written once, not twice). Sets
    ``run.out_dir``, ``run.png``, ``run.gif`` and ``run.total_s``; returns ``run``."""
    if not run.done or run.final is None:
        raise ValueError("the run has not finished: no files to write")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    run.out_dir = directory
    run.png = image_sampling.save_png(run.final, directory / image_sampling.PNG_NAME,
                                      scale=image_sampling.file_scale(run), ncols=run.ncols)
    run.gif = labelled_gif(run, directory / image_sampling.GIF_NAME)
    run.total_s = time.perf_counter() - run.started
    return run


def write_partial_files(run, directory: str | Path):
    """A stopped run's files: the GIF of the frames kept so far (:func:`labelled_gif`) and a
    PNG of its last kept frame, x_t beside x̂0 (``partial_chain.png``). Sets ``run.out_dir``,
    ``run.gif`` and ``run.png``; returns ``run``."""
    from diffusion_core import images

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    run.out_dir = directory
    scale = image_sampling.file_scale(run)
    a, b = image_sampling.enlarge(run.xt[-1], scale), image_sampling.enlarge(run.x0[-1], scale)
    if a.ndim == 2:
        a, b = np.repeat(a[..., None], 3, axis=2), np.repeat(b[..., None], 3, axis=2)
    gap = np.full((a.shape[0], 4 * scale, 3), 255, np.uint8)
    run.png = images.save_png(np.concatenate([a, gap, b], axis=1),
                              directory / "partial_chain.png")
    run.gif = labelled_gif(run, directory / image_sampling.GIF_NAME)
    return run


def _file_button(path: Path | None, what: str):
    if path is None:
        return gr.update(value=None, interactive=False, label=f"⬇ {what}")
    kb = path.stat().st_size / 1024
    size = f"{kb / 1024:.1f} MB" if kb >= 1024 else f"{kb:.0f} kB"
    return gr.update(value=str(path), interactive=True, label=f"⬇ {what} ({size})")


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


LIMIT_PREFIX = "⏱ Stopped at"  # a run that spent the server's time budget says this


@jobs.heavy("sampling")
@common.friendly_errors
def run_sampler(key, sampler, variance, steps, eta, spacing, n_images, seed, clip_x0=True,
                previous=None, class_choice=ANY, guidance=None,
                request: gr.Request | None = None):
    """Sample ``n_images`` images with the chosen sampler, streaming the reverse chain.

    ``class_choice`` and ``guidance`` (s; empty: the checkpoint's default) guide a
    class-conditional model (see the module docstring); :data:`ANY` (the default) is the
    unguided run, exactly as before guidance existed. One row per class makes
    ``n_images`` per class, one row each.

    A run may take the server's sampling budget (:data:`pages.limits.ACTIVE`); one that
    spends it stops like ■ Stop (the frames kept so far stay scrubbable) and says so.
    ``request`` (filled in by Gradio) identifies the session: one heavy job per session.

    Yields ``(x_t image, x̂0 image, status Markdown, SamplingRun, frame slider, GIF button,
    PNG button)``. While running: a yield at least every :data:`BEAT_S` s (only the progress
    text in the status line changes, so ■ Stop reacts fast) and new pictures at most about
    :data:`MAX_UI_UPDATES` times. The workflow keeps every step's (x_t, x̂0) when there are
    ≤ 100 steps, else ≤ 100 evenly spaced frames (fewer if they would exceed its byte budget).
    At the end: the final grid (PNG), the animation (GIF) and the timing.
    """
    ck = load_model(key)
    T = ck.schedule.T
    sampler, variance, steps, eta, spacing, n_images, seed = _validate(
        sampler, variance, steps, eta, spacing, n_images, seed, ck)
    labels, s, ncols, n_images, guided = _guidance(ck, class_choice, guidance, n_images)
    budget = limits.ACTIVE.sampling_budget()
    clip_x0 = bool(clip_x0)
    settings = SamplerSettings(sampler=sampler, steps=steps, eta=eta, spacing=spacing,
                               variance=variance, clip_x0=clip_x0)
    _cleanup(previous)

    how = settings.describe(T) + guided
    run = image_sampling.SamplingRun.plan(ck, settings, n_images, seed, ncols=ncols,
                                          labels=labels, guidance=s)
    scale = run.scale
    skip = gr.skip()
    frozen = gr.update(minimum=0, maximum=1, value=0, interactive=False, label=FRAME_LABEL)
    no_file = (_file_button(None, "GIF"), _file_button(None, "PNG"))
    # In a worker process when the server has a pool (Python's lock slows a chain of small
    # torch ops beside busy threads); the frames come back when the chain ends or stops.
    chain = jobs.in_worker(run, image_sampling.SamplingRun.STATE, "pictures", (ck,))
    yield (skip, skip, f"Starting: {how} …", run, frozen, *no_file)

    last_beat = last_ui = time.perf_counter()
    ui_every = BEAT_S
    slow_note = ""
    try:
        paced = jobs.paced(chain)  # long jobs take turns (CPU-timed)
        for step in paced:  # ChainPicture: where the chain is, a picture now and then
            per_step = step.per_step_s
            if step.index == 0:  # now we know the cost: ≤ MAX_UI_UPDATES pictures per run
                ui_every = max(BEAT_S, per_step * steps / MAX_UI_UPDATES)
            if step.t_prev == -1:
                break
            spent = (budget.stop_reason(step.index + 1, step.elapsed_s)
                     or jobs.turn_over(jobs.SAMPLE_QUEUE, paced.turn_s))
            if spent is not None:
                chain.close()  # the frames kept so far come back from a worker
                gr.Warning(f"Sampling stopped at {spent}.")
                yield (_show(run.xt[-1], scale), _show(run.x0[-1], scale),
                       f"{LIMIT_PREFIX} {spent} (this server's limit) after step "
                       f"{step.index + 1} / {run.num_steps}. The slider scrubs the "
                       f"{len(run.xt)} frames kept so far; no files of finished samples, but "
                       f"{SO_FAR}. Use DDIM with 20–50 steps, or fewer images.", run, skip,
                       skip, skip)
                return
            now = time.perf_counter()
            if step.index == 0:
                slow_note = _slow_note(per_step * steps, budget)
            text = _progress_md(run, how, step, step.elapsed_s, per_step) + slow_note
            if step.x_t is not None and now - last_ui >= ui_every:
                last_ui = last_beat = now
                yield (_show(step.x_t, LIVE_SCALE), _show(step.pred_x0, LIVE_SCALE),
                       text, run, skip, skip, skip)
            elif now - last_beat >= BEAT_S:
                last_beat = now
                yield skip, skip, text, run, skip, skip, skip
    except WorkerLost as e:
        raise common.UserError(f"Sampling stopped: {e}. Press ▶ Sample to try again.") from None
    finally:
        chain.close()

    if not run.done:  # cannot happen (steps ≥ 1), but never crash on an empty chain
        raise common.UserError("The sampler produced no steps.")
    write_files(run, sessions.output_dir("sampler"))  # the GIF with labels and a t counter
    text = f"✓ Done: {n_images} image{'s' if n_images > 1 else ''}, {how}, seed {seed}."
    if run.total_s < INSTANT_S:
        text += (f" It took {run.total_s:.1f} s, too fast to watch: it replays once now, and "
                 f"{REPLAY_LABEL} plays the reverse chain again.")
    if run.nonfinite:
        text += (f" ⚠ {run.nonfinite} image(s) contain NaN/inf (shown grey): the model is "
                 "broken.")
    last = len(run.xt) - 1
    yield (_show(run.xt[-1], scale), _show(run.x0[-1], scale), text + "  \n" + _timing_md(run),
           run, gr.update(minimum=0, maximum=last, value=last, interactive=True,
                          label=f"Frame (0 … {last}): scrub the reverse chain"),
           _file_button(run.gif, "GIF"), _file_button(run.png, "PNG"))


def run_finished(run, text, request: gr.Request | None = None):
    """After ▶ Sample ends or is stopped (``.then``): arm the slider on the frames kept so far.

    Returns ``(frame slider, status Markdown, x_t image, x̂0 image)``; after a stop the
    images show the last kept frame (after success they are already the final ones).
    """
    jobs.wait_done(request)  # a stopped run's frames come back from its worker
    skip = gr.skip()
    if not _is_run(run) or not run.xt:
        return gr.update(interactive=False), text, skip, skip
    last = len(run.xt) - 1
    slider = gr.update(minimum=0, maximum=max(last, 1), value=last, interactive=last > 0,
                       label=f"Frame (0 … {last}): scrub the reverse chain")
    if run.done or (isinstance(text, str) and text.startswith(LIMIT_PREFIX)):
        return slider, text, skip, skip
    return (slider,
            f"■ Stopped after step {run.steps_done} / {run.num_steps}. The slider scrubs the "
            f"{len(run.xt)} frames kept so far; {SO_FAR}.",
            _show(run.xt[-1], run.scale), _show(run.x0[-1], run.scale))


SO_FAR = "⬇ GIF and ⬇ PNG hold the frames made so far"


def files_so_far(run, request: gr.Request | None = None):
    """After ▶ Sample ends or is stopped (``.then``): the download buttons and ▶ Replay.

    A stopped run (■ Stop or the server's time cap) gets its files here, from the frames kept
    so far (:func:`write_partial_files`), so ⬇ GIF and ⬇ PNG work after a stop too; a
    finished run's files were written by :func:`run_sampler` (left as they are). ▶ Replay is
    armed whenever there are two frames or more. Returns ``(GIF button, PNG button, Replay
    button)``.
    """
    jobs.wait_done(request)  # a stopped run's frames come back from its worker
    skip = gr.skip()
    if not _is_run(run) or not run.xt:
        return skip, skip, gr.update(interactive=False)
    replay_on = gr.update(interactive=len(run.xt) > 1)
    if run.done:
        return skip, skip, replay_on
    if run.gif is None:
        write_partial_files(run, sessions.output_dir("sampler"))
    return _file_button(run.gif, "GIF"), _file_button(run.png, "PNG"), replay_on


def replay(run):
    """▶ Replay: play the kept frames again, x_t beside x̂0, about
    :data:`REPLAY_FRAMES` × :data:`REPLAY_FRAME_S` s (no sampling: the frames are the run's).

    A generator (■ Stop ends it). Yields ``(x_t image, x̂0 image, frame slider, status)``;
    the slider follows the frame shown and stays on the last one.
    """
    if not _is_run(run) or len(run.xt) < 2:
        raise common.UserError("Press ▶ Sample first; then ▶ Replay plays the reverse chain "
                               "again.")
    from diffusion_core.sampling.spacing import evenly_spaced

    last = len(run.xt) - 1
    for i in evenly_spaced(len(run.xt), REPLAY_FRAMES):
        start = time.perf_counter()
        k = run.scale if i == last else LIVE_SCALE  # (the one it stays on: enlarged)
        yield (_show(run.xt[i], k), _show(run.x0[i], k), gr.update(value=i),
               f"{REPLAY_LABEL} · frame {i} / {last} · {run.captions[i]}")
        time.sleep(max(0.0, REPLAY_FRAME_S - (time.perf_counter() - start)))
    text = f"Replayed {last + 1} frames: noise (frame 0) → the samples (frame {last})."
    if run.done:  # (an instant run's replay replaces its "✓ Done" line: keep the word)
        text = "✓ Done · " + text + "  \n" + _timing_md(run)
    yield gr.skip(), gr.skip(), gr.skip(), text


def replay_instant(run):
    """After a run (``.then``): :func:`replay` once by itself when the run finished in under
    :data:`INSTANT_S` s (too fast to see the chain); nothing otherwise."""
    if _is_run(run) and run.done and run.total_s < INSTANT_S and len(run.xt) > 1:
        yield from replay(run)
    else:
        yield gr.skip(), gr.skip(), gr.skip(), gr.skip()


def show_frame(run, index):
    """Frame slider → ``(x_t image, x̂0 image, status Markdown)`` of kept frame ``index``.

    The status line gives the frame's t and, after a finished run, the timing.
    """
    if not _is_run(run) or not run.xt:
        raise common.UserError("Press ▶ Sample first; then the slider scrubs the reverse chain.")
    last = len(run.xt) - 1
    i = common.number("Frame", index, 0, max(last, 0), integer=True)
    text = f"Frame {i} / {last} · {run.captions[i]}"
    if run.done:
        text += "  \n" + _timing_md(run)
    return _show(run.xt[i], run.scale), _show(run.x0[i], run.scale), text
