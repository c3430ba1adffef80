"""Tab 4's sampler lab: live steps-vs-quality curves for a checkpoint, and DDIM inversion of two
real digits with a spherical interpolation between their latents.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean image. The schedule is always the checkpoint's own.

A view only: the sweep, the judges and the interpolation are
:mod:`diffusion_core.workflows.sampler_lab`; the checkpoint comes from
:func:`pages.sampler.models.load_model` (cached, read-only). Handlers (generators, so ■ Stop
works; tests call them directly):

=======================  =======================================================================
handler                  what it does
=======================  =======================================================================
``quality_sweep``        the chosen samplers at several step counts from the same x_T, scored by
                         the model's judge (digits: Fréchet distance and confidence) → curves
``interpolate_digits``   invert two held-out digits (DDIM, leading spacing), slerp between their
                         latents, sample the path → a strip image and the reconstruction errors
``lab_finished``         after a run ends or is ■ Stopped: says so, clears the badges
=======================  =======================================================================
"""

from __future__ import annotations

import time

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from diffusion_core.sampling.config import SPACINGS, SamplerSettings
from pages import common, jobs, limits
from pages.widgets import inputs as ui
from pages.widgets import sweep as sweeps
from pages.widgets.sweep import RUNNING, YIELD_EVERY_S

from .models import load_model

# Imported by the first event that needs them, not while the UI is built (see pages.common).
torch = common.LazyModule("torch")
lab = common.LazyModule("diffusion_core.workflows.sampler_lab")
image_sampling = common.LazyModule("diffusion_core.workflows.image_sampling")
images = common.LazyModule("diffusion_core.images")
digits_data = common.LazyModule("diffusion_core.data.digits")

__all__ = ["interpolate_digits", "lab_finished", "quality_sweep", "render"]

# (label, key) → the settings each key means (spacing and clipping come from the controls).
SWEEP_SAMPLERS = {
    "ddim_eta0": ("DDIM η = 0", dict(sampler="ddim", eta=0.0)),
    "ddim_eta1": ("DDIM η = 1", dict(sampler="ddim", eta=1.0)),
    "ddpm": ("DDPM (σ² = β̃)", dict(sampler="ddpm")),
    "dpmpp_2m": ("DPM-Solver++ 2M", dict(sampler="dpmpp_2m")),
}
SWEEP_CHOICES = [(label, key) for key, (label, _) in SWEEP_SAMPLERS.items()]
DEFAULT_SAMPLERS = ["ddim_eta0", "ddpm", "dpmpp_2m"]
STEP_CHOICES = (2, 5, 10, 20, 50, 100, 200)
DEFAULT_STEPS = [5, 10, 20, 50]
MIN_IMAGES, MAX_IMAGES, DEFAULT_IMAGES = 16, 256, 100
DIGIT_CLASSES = [str(c) for c in range(10)]
MAX_EXAMPLE = 40  # every class has ≥ 41 held-out digits in the default split
DEFAULT_INV_STEPS = 50
MIN_FRAMES, MAX_FRAMES, DEFAULT_FRAMES = 3, 16, 8
DIGIT_SETS = ("digits", "digits8")
PLOT_HEIGHT = 440
STRIP_PX = 80  # each image of the strip is about this many pixels wide
LIMIT_PREFIX = "⏱ Stopped at"


# ---------------------------------------------------------------------------------------------
# Steps vs quality
# ---------------------------------------------------------------------------------------------


def _checked_list(values, what: str, choices) -> list:
    if values is None:
        values = []
    if not isinstance(values, list) or not all(v in choices for v in values):
        raise common.UserError(f"{what}: choose among {', '.join(map(str, choices))}.")
    if not values:
        raise common.UserError(f"{what}: tick at least one.")
    return values


def sweep_figure(sweep, labels: list[str], slots: list[int]) -> go.Figure:
    """One panel per metric of the sweep's judge (:func:`pages.widgets.sweep.sweep_figure`)."""
    return sweeps.sweep_figure(sweep, labels, slots, log_y=False, height=PLOT_HEIGHT)


lab_finished = sweeps.run_finished  # says "■ Stopped during: …" after a ■ Stop

ENOUGH_WITHIN = 0.10  # "enough steps": within 10 % of the best score any sampler reached


def steps_answer_md(sweep, labels: list[str]) -> str:
    """"How many steps do I need?" in plain words, from the sweep's numbers (its judge's first
    metric): the best score any sampler reached, then for each sampler the fewest steps that
    come within :data:`ENOUGH_WITHIN` of it (or its own best and whether it was still
    improving), and the sampler that got there first. "" before any run finished."""
    m = sweep.judge.metrics[0]
    higher = "higher" in m.hint
    curves = []
    for c, label in enumerate(labels):
        x, y = sweep.curve(c, m.key)
        keep = np.isfinite(y)
        if keep.any():
            curves.append((label, x[keep].astype(int), y[keep]))
    if not curves:
        return ""
    best = max(v for *_, y in curves for v in y) if higher else \
        min(v for *_, y in curves for v in y)
    tol = ENOUGH_WITHIN * abs(best)
    lines, reached = [], []
    for label, x, y in curves:
        good = (best - y <= tol) if higher else (y - best <= tol)
        if good.any():
            k = int(np.argmax(good))
            least = ", the fewest tried" if k == 0 and len(x) > 1 else ""
            lines.append(f"- **{label}**: **{x[k]} steps**{least} ({y[k]:.3g}).")
            reached.append((x[k], label))
            continue
        b = int(np.argmax(y) if higher else np.argmin(y))
        more = (f"; still improving at {x[-1]}: tick a larger count"
                if b == len(x) - 1 and len(x) > 1 else "")
        lines.append(f"- **{label}**: does not get there at these counts (its best: "
                     f"{y[b]:.3g} at {x[b]} steps{more}).")
    ref = (f"; real data score {m.reference:.3g} at this N" if m.reference is not None
           and np.isfinite(m.reference) else "")
    head = (f"**How many steps do I need?** To come within {ENOUGH_WITHIN:.0%} of the best "
            f"{m.label.split(' (')[0]} any sampler reached here ({best:.3g}; {m.hint}{ref}):")
    tail = ""
    if reached and len(curves) > 1:
        n = min(r[0] for r in reached)
        first = " and ".join(f"**{lb}**" for k, lb in reached if k == n)
        tail = f"\n\nFewest steps: {first}, {n}."
    return head + "\n" + "\n".join(lines) + tail


@jobs.heavy("sampling")
def quality_sweep(key, samplers, counts, spacing, clip_x0, n_images, seed,
                  request: gr.Request | None = None):
    """Steps vs quality for checkpoint ``key``: each chosen sampler at each step count, all from
    the same x_T (seed), ``n_images`` images per run, scored by the model's judge
    (:func:`~diffusion_core.workflows.sampler_lab.image_judge`); a generator for the button.

    Within the server's sampling budget; the counts run from small to large, so a sweep that
    spends the budget keeps the cheap end of every curve. Yields ``(figure | no-change,
    status Markdown)``.
    """
    ck = load_model(key)
    samplers = _checked_list(samplers, "Samplers", list(SWEEP_SAMPLERS))
    counts = sorted({int(c) for c in _checked_list(counts, "Step counts", STEP_CHOICES)})
    if spacing not in SPACINGS:
        raise common.UserError(f"Spacing must be one of {', '.join(SPACINGS)}.")
    if not isinstance(clip_x0, bool):
        raise common.UserError("'clip x̂0' must be true or false.")
    n = common.number("Images per run", n_images, MIN_IMAGES, MAX_IMAGES, integer=True,
                      default=DEFAULT_IMAGES)
    seed = common.number("Seed", seed, 0, common.MAX_SEED, integer=True, default=0)
    if not image_sampling.is_image_model(ck):
        raise common.UserError("This lab needs an image model.")
    shape = image_sampling.sample_shape(ck)
    dataset = str(ck.dataset.get("name", "?")) if isinstance(ck.dataset, dict) else "?"
    if dataset not in lab.IMAGE_JUDGES:
        yield gr.skip(), (f"No quality judge for this model (data set *{dataset}*): the live "
                          "curves work for the digits, gradients and shapes models. Choose "
                          "one of those above.")
        return
    T = ck.schedule.T
    usable = [c for c in counts if c <= T]
    if not usable:
        raise common.UserError(f"Every step count is above this model's T = {T}.")
    yield gr.skip(), (f"{RUNNING} Preparing the {dataset} judge (the digit classifier is "
                      "fitted once per server, ≈ 5 s) …")
    judge = lab.image_judge(dataset, shape, n)
    configs = [SamplerSettings(**SWEEP_SAMPLERS[k][1], steps=usable[0], spacing=spacing,
                               clip_x0=clip_x0) for k in samplers]
    labels = [SWEEP_SAMPLERS[k][0] for k in samplers]
    slots = [list(SWEEP_SAMPLERS).index(k) for k in samplers]
    run = lab.QualitySweep(ck.model, ck.schedule, configs, usable, judge, n, seed, shape=shape)
    yield gr.skip(), (f"{RUNNING} {len(run.plan)} runs, {run.nfe_total:,} network calls of "
                      f"{n} images …")
    start = time.perf_counter()
    spent = yield from sweeps.stream_sweep(run, lambda: sweep_figure(run, labels, slots), labels,
                                           show_elapsed=True)
    dropped = sorted(set(counts) - set(usable))
    md = (f"**Steps vs quality** of *{dataset}*: {n} images per run, all from the same x_T "
          f"(seed {seed}), {spacing} spacing{', x̂0 clipped' if clip_x0 else ''}; x = network "
          f"evaluations (one per step for each sampler). {len(run.points)} of {len(run.plan)} "
          f"runs in {time.perf_counter() - start:.1f} s. Dashed: real data scored the same way "
          f"at the same N ({judge.name}; compare runs at equal N: these scores drift with N).")
    if dropped:
        md += f" Left out (above T = {T}): {', '.join(map(str, dropped))}."
    answer = steps_answer_md(run, labels)  # the question, answered first in plain words
    if answer:
        md = answer + "\n\n<small>" + md + "</small>"
    if spent is not None:
        gr.Warning(f"The sweep stopped at {spent}.")
        md = (f"{LIMIT_PREFIX} {spent}** (this server's limit): the curves show the runs that "
              "finished. Fewer images or step counts fit.\n\n" + md)
    yield sweep_figure(run, labels, slots), md


# ---------------------------------------------------------------------------------------------
# Inversion and interpolation of two digits
# ---------------------------------------------------------------------------------------------


def _heldout_digit(size: int, digit, example) -> tuple[object, int]:
    """The ``example``-th held-out digit of class ``digit`` at side ``size``: (image [1, H, W],
    its index in the held-out set)."""
    if digit not in DIGIT_CLASSES:
        raise common.UserError(f"Digit must be one of {', '.join(DIGIT_CLASSES)}.")
    held = digits_data.load_digits_images(size, "test")
    where = np.flatnonzero(np.asarray(held.labels) == int(digit))
    if example >= len(where):
        raise common.UserError(f"There are {len(where)} held-out {digit}s: choose an example "
                               f"from 0 to {len(where) - 1}.")
    i = int(where[example])
    return held.images[i], i


def strip_image(result, scale: int) -> np.ndarray:
    """Two rows of ``k + 2`` tiles: the slerp path of latents x_T (top, between blanks) over
    the real first digit, the k sampled path images and the real second digit (bottom).
    uint8 ``[H, W, 3]``."""
    x0, path, samples = result.x0, result.path.float(), result.samples.float()
    blank = torch.ones_like(x0[:1])
    top = torch.cat([blank, path, blank])
    bottom = torch.cat([x0[:1], torch.nan_to_num(samples, nan=0.0), x0[1:]])
    return images.make_grid(torch.cat([top, bottom]), ncols=len(top), scale=scale,
                            pad=max(1, scale // 2))


@jobs.heavy("sampling")
def interpolate_digits(key, digit_a, digit_b, example, steps, frames, spacing,
                       request: gr.Request | None = None):
    """Invert two held-out digits with DDIM (η = 0), slerp between their latents in ``frames``
    points, sample each (DDIM η = 0, the same steps and spacing); a generator for the button.

    Only for a digits model (the digits are real held-out ones at the model's resolution).
    ``spacing`` defaults to leading: the cosine schedule's ᾱ_{T−1} ≈ 2e-9 makes trailing
    spacing (which ends at T − 1) blow the round trip up. Yields ``(strip image | no-change,
    status Markdown)``.
    """
    ck = load_model(key)
    if spacing not in SPACINGS:
        raise common.UserError(f"Spacing must be one of {', '.join(SPACINGS)}.")
    example = common.number("Example #", example, 0, MAX_EXAMPLE, integer=True, default=0)
    T = ck.schedule.T
    steps = common.number("Steps", steps, 1, T, integer=True, default=DEFAULT_INV_STEPS)
    frames = common.number("Frames", frames, MIN_FRAMES, MAX_FRAMES, integer=True,
                           default=DEFAULT_FRAMES)
    for d in (digit_a, digit_b):
        if d not in DIGIT_CLASSES:
            raise common.UserError(f"Digit must be one of {', '.join(DIGIT_CLASSES)}.")
    dataset = str(ck.dataset.get("name", "?")) if isinstance(ck.dataset, dict) else "?"
    shape = image_sampling.sample_shape(ck) if image_sampling.is_image_model(ck) else ()
    if dataset not in DIGIT_SETS or len(shape) != 3 or shape[0] != 1:
        yield gr.skip(), (f"This inverts real digits: choose the *digits* model above (this "
                          f"one makes *{dataset}*).")
        return
    size = shape[1]
    x_a, ia = _heldout_digit(size, digit_a, example)
    x_b, ib = _heldout_digit(size, digit_b, example)
    run = lab.LatentInterpolation(ck.model, ck.schedule, x_a, x_b, frames=frames, steps=steps,
                                  spacing=spacing)
    budget = limits.ACTIVE.sampling_budget()
    yield gr.skip(), f"{RUNNING} Inverting a {digit_a} and a {digit_b} ({steps} steps) …"
    start = last = time.perf_counter()
    calls = 0
    spent = None
    chain = jobs.paced(run)
    try:
        for phase, i, num in chain:
            calls += 1
            if (phase, i) != ("sample", num - 1):
                spent = sweeps.stop_reason(budget, start, calls, chain)
                if spent is not None:
                    break
            now = time.perf_counter()
            if now - last >= YIELD_EVERY_S:
                last = now
                what = "inverting" if phase == "invert" else f"sampling {frames} latents"
                yield gr.skip(), f"{RUNNING} {what}: step {i + 1} / {num} …"
    finally:
        chain.close()
    if spent is not None:
        gr.Warning(f"Stopped at {spent}.")
        yield gr.skip(), (f"{LIMIT_PREFIX} {spent}** (this server's limit). Use fewer steps "
                          "or frames.")
        return
    res = run.result()
    scale = max(2, STRIP_PX // size)
    ra, rb = res.recon_rms
    where = f" (x_T at t = {res.t_top})"
    md = (f"**{digit_a} → {digit_b}**, held-out digits #{ia} and #{ib}: DDIM inversion with "
          f"{steps} {spacing} steps{where}, then {frames} latents on the great circle between "
          f"them (slerp), each sampled back with DDIM η = 0 and the same steps "
          f"({res.nfe:,} network calls, {time.perf_counter() - start:.1f} s). **Reconstruction "
          f"error** (RMS, pixels in [−1, 1]): first {ra:.3f}, last {rb:.3f}.  \nTop: the "
          "latents x_T (clipped to [−1, 1] for display); bottom: the real first digit, the "
          "sampled path (its first and last images are the reconstructions), the real second "
          "digit.")
    if spacing != "leading" and max(ra, rb) > 0.5:
        md += ("\n\n⚠️ The round trip blew up: this spacing ends at t = T − 1, where ᾱ ≈ "
               f"{ck.schedule.alpha_bar(T - 1):.0e} multiplies every error of ε̂ by "
               "σ/α ≈ 10⁴. Use leading spacing.")
    yield strip_image(res, scale), md


# ---------------------------------------------------------------------------------------------
# Layout and wiring
# ---------------------------------------------------------------------------------------------


def render(model: gr.Dropdown) -> None:
    """Build the lab (inside the caller's accordion or tab of tab 4) and wire its events.

    ``model`` is tab 4's model dropdown; its value is a key for
    :func:`pages.sampler.models.load_model`.
    """
    lim = limits.ACTIVE
    heavy = dict(concurrency_limit=lim.sample_slots, concurrency_id=jobs.SAMPLE_QUEUE,
                 trigger_mode="once", show_progress="minimal")
    cheap = dict(concurrency_limit=8, concurrency_id="sampler_lab_cheap",
                 show_progress="hidden")

    gr.Markdown(
        "### Steps vs quality, live\nThe chosen samplers at several step counts, **all from "
        "the same starting noise**, each run's images scored by the model's judge (digits: "
        "a classifier fitted only on held-out digits). The x-axis counts network "
        "evaluations: one per step for each sampler here. Replaces the static chart of the "
        "shipped models.", latex_delimiters=common.LATEX)
    with gr.Row(equal_height=True):
        samplers = ui.CheckboxGroup(SWEEP_CHOICES, value=DEFAULT_SAMPLERS, label="Samplers",
                                    scale=3)
        counts = ui.CheckboxGroup(list(STEP_CHOICES), value=DEFAULT_STEPS,
                                  label="Step counts", scale=3)
    with gr.Row(equal_height=True):
        spacing = ui.Dropdown(list(SPACINGS), value="trailing", label="Spacing", min_width=100)
        clip_x0 = ui.Checkbox(True, label="clip x̂0", min_width=90)
        n_images = ui.Number(DEFAULT_IMAGES, label="Images per run", precision=0,
                             minimum=MIN_IMAGES, maximum=MAX_IMAGES, min_width=90)
        seed = ui.Number(0, label="Seed", precision=0, minimum=0, maximum=common.MAX_SEED,
                         min_width=80)
        sweep_btn = gr.Button("▶ Measure", variant="primary", min_width=100)
        sweep_stop = gr.Button("■ Stop", variant="stop", min_width=80)
    # The answer in words (steps_answer_md) above the curves it comes from.
    sweep_md = gr.Markdown(f"Runs within this server's {lim.sample_seconds:g} s sampling "
                           "limit (the step counts go from small to large; about 20 s for "
                           "the defaults on the digits model).", elem_classes=["dl-health"])
    sweep_fig = gr.Plot(show_label=False)

    gr.Markdown(
        "### DDIM inversion: two real digits\nDDIM with η = 0 is deterministic, so it can be "
        "run *upwards*: a real digit → its latent $x_T$. Invert two held-out digits, walk "
        "between their latents on a great circle (slerp), and sample each point back. The "
        "spacing is *leading* by default: the cosine schedule ends at "
        "$\\bar\\alpha_{T-1} \\approx 2\\cdot10^{-9}$, where every error of "
        "$\\hat\\varepsilon$ is multiplied by $\\sigma/\\alpha \\approx 10^4$, and trailing "
        "spacing ends exactly there (the round trip blows up); leading stops short of T − 1.",
        latex_delimiters=common.LATEX)
    with gr.Row(equal_height=True):
        digit_a = ui.Dropdown(DIGIT_CLASSES, value="3", label="First digit", min_width=80)
        digit_b = ui.Dropdown(DIGIT_CLASSES, value="8", label="Second digit", min_width=80)
        example = ui.Number(0, label="Example #", precision=0, minimum=0, maximum=MAX_EXAMPLE,
                            min_width=80)
        inv_steps = ui.Number(DEFAULT_INV_STEPS, label="Steps", precision=0, minimum=1,
                              maximum=4000, min_width=80)
        frames = ui.Number(DEFAULT_FRAMES, label="Frames", precision=0, minimum=MIN_FRAMES,
                           maximum=MAX_FRAMES, min_width=80)
        inv_spacing = ui.Dropdown(list(SPACINGS), value="leading", label="Spacing",
                                  min_width=100)
        inv_btn = gr.Button("▶ Invert and interpolate", variant="primary", min_width=150)
        inv_stop = gr.Button("■ Stop", variant="stop", min_width=80)
    strip = gr.Image(None, format="png", interactive=False, show_label=False,
                     label="top: latents x_T along the slerp · bottom: real, sampled path, real",
                     buttons=["download", "fullscreen"], elem_classes=["dl-pixel"])
    inv_md = gr.Markdown("", elem_classes=["dl-health"])
    with gr.Accordion("How this works: same noise, NFE, ODE vs SDE, inversion, slerp",
                      open=False):
        gr.Markdown(common.explanation("sampler_lab"), latex_delimiters=common.LATEX)

    # --- events -------------------------------------------------------------------------------
    sw_event = sweep_btn.click(quality_sweep,
                               [model, samplers, counts, spacing, clip_x0, n_images, seed],
                               [sweep_fig, sweep_md], api_name="sampler_lab_sweep", **heavy)
    sw_event.then(lab_finished, sweep_md, [sweep_fig, sweep_md],
                  api_name="sampler_lab_sweep_finished", api_visibility="private", **cheap)
    sweep_stop.click(None, None, None, cancels=[sw_event], api_name="sampler_lab_sweep_stop",
                     api_visibility="private", queue=False)
    inv_event = inv_btn.click(interpolate_digits,
                              [model, digit_a, digit_b, example, inv_steps, frames,
                               inv_spacing],
                              [strip, inv_md], api_name="sampler_lab_invert", **heavy)
    inv_event.then(lab_finished, inv_md, [strip, inv_md], api_name="sampler_lab_invert_finished",
                   api_visibility="private", **cheap)
    inv_stop.click(None, None, None, cancels=[inv_event], api_name="sampler_lab_invert_stop",
                   api_visibility="private", queue=False)
