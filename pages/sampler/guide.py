"""Tab 4's guidance section: a class (digit) × scale grid from the same noise, and accuracy and
spread against the guidance scale s, for class-conditional checkpoints.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean image. The schedule is always the checkpoint's own.

Classifier-free guidance (Ho & Salimans 2022), one convention everywhere:
ε̃ = ε_u + s·(ε_c − ε_u); s = 0 the unconditional model, s = 1 the conditional one, s > 1
guides harder (diffusers' ``guidance_scale``).

A view only: the grid and the curve are :mod:`diffusion_core.workflows.image_guidance`; the
checkpoint comes from :func:`pages.sampler.models.load_model` (cached, read-only). Both run
with the checkpoint's sampler made deterministic (DDIM η = 0,
:func:`~diffusion_core.workflows.image_guidance.deterministic_settings`), so the cells of a
row differ only by s. Handlers (generators, so ■ Stop works; tests call them directly):

=================  ===========================================================================
handler            what it does
=================  ===========================================================================
``guide_model``    model changed / section opened: which classes, or which models have classes
``guide_grid``     the class × scale grid, one batched chain → a labelled picture
``guide_measure``  per scale: accuracy, P(requested) and spread of the same x_T → a growing
                   two-panel figure and a table
``guide_finished`` after a run ends or is ■ Stopped: says so
=================  ===========================================================================
"""

from __future__ import annotations

import math
import time

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from diffusion_core.sampling.config import GUIDANCE_DEFAULT
from pages import common, jobs, limits
from pages.widgets import inputs as ui
from pages.widgets import sweep as sweeps
from pages.widgets.sweep import RUNNING, YIELD_EVERY_S

from .models import conditional_models, load_model

# Imported by the first event that needs them, not while the UI is built (see pages.common).
guidance = common.LazyModule("diffusion_core.workflows.image_guidance")
image_sampling = common.LazyModule("diffusion_core.workflows.image_sampling")

__all__ = ["grid_picture", "guide_finished", "guide_grid", "guide_measure", "guide_model",
           "render", "curve_figure", "curve_table_md"]

ALL = "all"  # the class control: every class, one row each
ALL_LABEL = "all classes (one row each)"
SCALE_CHOICES = [("0 (unconditional)", 0.0), ("1 (conditional)", 1.0), ("2", 2.0),
                 ("3", 3.0), ("5", 5.0), ("7", 7.0), ("10", 10.0)]
SCALE_VALUES = [v for _, v in SCALE_CHOICES]
DEFAULT_SCALES = [0.0, 1.0, 2.0, 5.0]
MAX_SCALES = 6
MAX_PER_CELL = 4
CURVE_SAMPLES = 100  # the curve scores about this many samples per scale (all classes)
PLOT_HEIGHT = 360
LIMIT_PREFIX = "⏱ Stopped at"
COLORS = ("#0072B2", "#D55E00", "#009E73")  # Okabe–Ito
# The labelled picture: text this many pixels high (at least), dark grey on white.
LABEL_PX = 14
TEXT = (40, 40, 40)


# ---------------------------------------------------------------------------------------------
# Inputs and the model
# ---------------------------------------------------------------------------------------------


def class_choices(ck) -> list[tuple[str, str]]:
    """The class control's ``(label, value)`` choices: all classes, then each by name (value:
    its index as text)."""
    return [(ALL_LABEL, ALL), *((name, str(k)) for k, name in enumerate(ck.class_names))]


def _no_classes_md(key, ck) -> str:
    """What the section says for a model without classes: which models have them."""
    what = (str(ck.dataset.get("name", key)) if isinstance(ck.dataset, dict) else str(key))
    have = conditional_models()
    where = (f"choose **{', '.join(have)}** in *Pretrained model* above" if have
             else "no model here has classes yet: train one with `python -m "
                  "diffusion_core.train --dataset digits8 --conditional`")
    return (f"*{what}* is **unconditional** (trained without class labels), so there is "
            f"nothing to guide toward. Guidance needs a class-conditional model: {where}.")


def _model_md(ck) -> str:
    judge = guidance.guidance_judge(ck)
    s0 = image_sampling.guidance_default(ck)
    return (f"**{ck.num_classes} classes** ({', '.join(ck.class_names)}); the model's "
            f"default scale s = {s0:g}. Measured: {judge.note}")


def guide_model(key):
    """Model changed or section opened → ``(note Markdown, class dropdown)``."""
    ck = load_model(key)
    if not image_sampling.is_image_model(ck) or ck.num_classes == 0:
        return _no_classes_md(key, ck), gr.update(choices=[(ALL_LABEL, ALL)], value=ALL)
    return _model_md(ck), gr.update(choices=class_choices(ck), value=ALL)


def _checked_scales(scales) -> list[float]:
    if scales is None:
        scales = []
    if not isinstance(scales, list) or not all(
            not isinstance(v, bool) and isinstance(v, int | float) and v in SCALE_VALUES
            for v in scales):
        raise common.UserError("Scales s: tick some of "
                               f"{', '.join(f'{v:g}' for v in SCALE_VALUES)}.")
    if not scales:
        raise common.UserError("Scales s: tick at least one (e.g. 0, 1, 2 and 5).")
    if len(scales) > MAX_SCALES:
        raise common.UserError(f"Scales s: tick at most {MAX_SCALES} (got {len(scales)}).")
    return sorted(float(v) for v in scales)


def _checked_class(ck, class_choice) -> list[int] | None:
    """The rows' classes (None: all) for a conditional ``ck``."""
    k = ck.num_classes
    if class_choice == ALL:
        return None
    if not isinstance(class_choice, str) or class_choice not in {str(c) for c in range(k)}:
        raise common.UserError(f"Class: {common.short(class_choice)} is not a class of this "
                               f"model; choose {ALL} or 0 … {k - 1}.")
    return [int(class_choice)]


def _conditional_or_note(key, class_choice):
    """``(ck, None)`` for a conditional image model, else ``(None, note)`` to show."""
    if not isinstance(class_choice, str):
        raise common.UserError(f"Class: choose {ALL} or one class (got "
                               f"{common.short(class_choice)}).")
    ck = load_model(key)
    if not image_sampling.is_image_model(ck) or ck.num_classes == 0:
        return None, _no_classes_md(key, ck)
    return ck, None


def _where(ck) -> str:
    return str(ck.dataset.get("name", "?")) if isinstance(ck.dataset, dict) else "?"


def _run_steps(run, status):
    """Drive ``run`` (an iterable of steps) under the server's budget and turns, yielding
    ``(gr.skip(), status text)`` at least every :data:`YIELD_EVERY_S`; returns why it stopped
    early, or None. ``status(item)`` words the progress."""
    budget = limits.ACTIVE.sampling_budget()
    start = last = time.perf_counter()
    done = 0
    spent = None
    chain = jobs.paced(run)
    try:
        for item in chain:
            done += 1
            spent = sweeps.stop_reason(budget, start, done, chain)
            if spent is not None:
                break
            now = time.perf_counter()
            if now - last >= YIELD_EVERY_S:
                last = now
                yield gr.skip(), status(item)
    finally:
        chain.close()
    return spent


# ---------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError):  # an old Pillow or one without FreeType: the bitmap font
        return ImageFont.load_default()


def grid_picture(grid) -> np.ndarray:
    """The grid's picture with its rows labelled by class (left) and its columns by s (top):
    uint8 ``[H, W, 3]`` (the samples stay pixel-exact; only white margins are added)."""
    from PIL import Image, ImageDraw

    lay = grid.layout
    px = max(LABEL_PX, 2 * lay.pixel + 4)
    font = _font(px)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row_text = list(grid.class_names)
    col_text = [f"s = {s:g}" for s in grid.scales]

    def width(text: str) -> int:
        box = probe.textbbox((0, 0), text, font=font)
        return box[2] - box[0]

    left = max(width(t) for t in row_text) + 2 * lay.gap
    top = px + 2 * lay.gap
    # Column labels may be wider than a column: the picture grows to fit them.
    extra = max(0, max(width(t) for t in col_text) - (lay.cell_width + lay.gap)) * len(col_text)
    h, w = lay.height + top, lay.width + left + extra
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    canvas.paste(Image.fromarray(grid.picture), (left, top))
    draw = ImageDraw.Draw(canvas)
    for y, text in zip(lay.row_centers, row_text, strict=True):
        draw.text((left - lay.gap, top + y), text, fill=TEXT, font=font, anchor="rm")
    for x, text in zip(lay.col_centers, col_text, strict=True):
        draw.text((left + x, top - lay.gap // 2), text, fill=TEXT, font=font, anchor="ms")
    return np.asarray(canvas)


def _grid_md(grid, ck, seconds: float) -> str:
    rows = ("one digit" if len(grid.classes) == 1 else f"{len(grid.classes)} classes")
    how = grid.settings.describe(ck.schedule.T)
    md = (f"**{rows} × {len(grid.scales)} scales**, {grid.per_cell} image"
          f"{'s' if grid.per_cell > 1 else ''} per cell ({grid.n_images} images, one batched "
          f"chain, {how}, seed {grid.seed}): **{seconds:.2f} s**. Image j of every cell starts "
          "from the same noise x_T, so along a row only s changes, and down a column only the "
          "class: at s = 0 the label is ignored (the unconditional model), so that column "
          "shows the same image in every row.")
    if grid.nonfinite:
        md += f" ⚠ {grid.nonfinite} image(s) contain NaN/inf (shown grey)."
    return md


@jobs.heavy("sampling")
@common.friendly_errors
def guide_grid(key, class_choice, scales, per_cell, seed, request: gr.Request | None = None):
    """The class × scale grid of checkpoint ``key``: rows = ``class_choice`` (one class, or
    :data:`ALL`), columns = the ticked ``scales``, ``per_cell`` images per cell from the same
    x_T in every cell; a generator for the button. Yields ``(picture | no-change, status
    Markdown)``; an unconditional model gets a note instead."""
    scales = _checked_scales(scales)
    per_cell = common.number("Samples per cell", per_cell, 1, MAX_PER_CELL, integer=True,
                             default=1)
    seed = common.number("Seed", seed, 0, common.MAX_SEED, integer=True, default=0)
    ck, note = _conditional_or_note(key, class_choice)
    if note is not None:
        yield gr.skip(), note
        return
    classes = _checked_class(ck, class_choice)
    run = guidance.GridRun(ck, classes=classes, scales=scales, per_cell=per_cell, seed=seed,
                           settings=guidance.deterministic_settings(ck))
    yield gr.skip(), (f"{RUNNING} sampling {run.n_images} images in one chain "
                      f"({run.num_steps} steps) …")
    start = time.perf_counter()
    spent = yield from _run_steps(run, lambda step: (
        f"{RUNNING} step {step.index + 1} / {step.num_steps} ({run.n_images} images) …"))
    if run.grid is None:  # the budget or the turn ran out before the last step
        gr.Warning(f"Stopped at {spent}.")
        yield gr.skip(), (f"{LIMIT_PREFIX} {spent}** (this server's limit). Fewer scales or "
                          "samples per cell fit.")
        return
    yield grid_picture(run.grid), _grid_md(run.grid, ck, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# Accuracy and spread against s
# ---------------------------------------------------------------------------------------------


def curve_figure(points, judge, k: int) -> go.Figure:
    """Two panels against s: accuracy and P(requested) (chance 1/k dashed), and spread (the
    data's variety, 1, dashed). ``points``: finished
    :class:`~diffusion_core.workflows.image_guidance.ScalePoint` s."""
    from plotly.subplots import make_subplots

    pts = sorted(points, key=lambda p: p.scale)
    s = [p.scale for p in pts]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "fidelity: read as the requested class" if judge.has_accuracy
        else "fidelity: no classifier for this data set",
        "diversity: spread (1 = as varied as the data)"))

    def line(y, name, color, col, dash="solid", symbol="circle"):
        fig.add_trace(go.Scatter(
            x=s, y=[None if v is None or not math.isfinite(v) else round(v, 4) for v in y],
            mode="lines+markers", name=name, line=dict(color=color, width=2.5, dash=dash),
            marker=dict(size=9, symbol=symbol),
            hovertemplate=f"s = %{{x:g}}<br>{name} %{{y:.3f}}<extra></extra>"), row=1, col=col)

    if judge.has_accuracy:
        line([p.accuracy for p in pts], "accuracy", COLORS[0], 1)
        line([p.requested_probability for p in pts], "P(requested)", COLORS[2], 1, dash="dot",
             symbol="diamond")
        fig.add_hline(y=1 / k, line=dict(color="#555", dash="dash", width=1.2),
                      annotation_text=f"chance 1/{k}", annotation_position="top right",
                      annotation_font_size=11, row=1, col=1)
        fig.update_yaxes(range=[0, 1.05], title_text="share / probability", row=1, col=1)
    if judge.has_spread:
        line([p.spread for p in pts], "spread", COLORS[1], 2, symbol="square")
        fig.add_hline(y=1.0, line=dict(color="#555", dash="dash", width=1.2),
                      annotation_text="real data", annotation_position="top right",
                      annotation_font_size=11, row=1, col=2)
        fig.update_yaxes(rangemode="tozero", title_text="spread", row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(title_text="guidance scale s", rangemode="tozero", row=1, col=col)
    common.style_figure(fig, height=PLOT_HEIGHT)
    fig.update_layout(hovermode="closest", margin=dict(l=60, r=20, t=40, b=45),
                      legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"))
    fig.update_annotations(font_size=13)
    return fig


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def curve_table_md(points, judge) -> str:
    """The figures of the curve as a Markdown table, one row per scale."""
    rows = ["| s | read as requested | P(requested) | spread | samples | time |",
            "|---|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: p.scale):
        spread = f"{p.spread:.3f}" if math.isfinite(p.spread) else "—"
        prob = "—" if p.requested_probability is None else f"{p.requested_probability:.3f}"
        rows.append(f"| {p.scale:g} | {_pct(p.accuracy)} | {prob} | {spread} | {p.n} | "
                    f"{p.seconds:.1f} s |")
    return "\n".join(rows)


@jobs.heavy("sampling")
@common.friendly_errors
def guide_measure(key, class_choice, scales, seed, request: gr.Request | None = None):
    """Accuracy and spread against s for checkpoint ``key``: about :data:`CURVE_SAMPLES`
    samples of ``class_choice`` (all classes, equally, or one) per ticked scale, the same x_T
    at every scale; a generator for the button. Yields ``(figure | no-change, Markdown)``,
    the figure growing one scale at a time."""
    scales = _checked_scales(scales)
    seed = common.number("Seed", seed, 0, common.MAX_SEED, integer=True, default=0)
    ck, note = _conditional_or_note(key, class_choice)
    if note is not None:
        yield gr.skip(), note
        return
    classes = _checked_class(ck, class_choice)
    k = ck.num_classes
    n_classes = k if classes is None else len(classes)
    per_class = max(2, CURVE_SAMPLES // n_classes)
    judge = guidance.guidance_judge(ck)
    if judge.has_accuracy:
        yield gr.skip(), (f"{RUNNING} Preparing the judge (the digit classifier is fitted "
                          "once per server, ≈ 5 s) …")
        judge.score(*_probe(ck))  # fit and cache it now, not between two scales
    curve = guidance.scale_curve(ck, scales=scales, n_per_class=per_class, seed=seed,
                                 classes=classes, settings=guidance.deterministic_settings(ck),
                                 judge=judge)
    points = []
    intro = (f"**{_where(ck)}**: {per_class} samples per class × {n_classes} "
             f"class{'es' if n_classes > 1 else ''} per scale, the same x_T at every scale "
             f"(seed {seed}). {judge.note}")
    start = time.perf_counter()

    def status(p):
        return (f"{RUNNING} s = {p.scale:g} ({p.index + 1} / {p.num_scales}): step "
                f"{p.steps_done} / {p.steps_total} …")

    budget = limits.ACTIVE.sampling_budget()
    last = start
    spent = None
    chain = jobs.paced(curve)
    steps = 0
    try:
        for p in chain:
            if p.step is not None:
                steps += 1
                spent = sweeps.stop_reason(budget, start, steps, chain)
                if spent is not None:
                    break
            now = time.perf_counter()
            if p.point is not None:
                points.append(p.point)
                last = now
                more = "" if p.index + 1 == p.num_scales else "\n\n" + status(p)
                yield curve_figure(points, judge, k), (curve_table_md(points, judge) + more)
            elif now - last >= YIELD_EVERY_S:
                last = now
                yield gr.skip(), status(p)
    finally:
        chain.close()
    md = intro + "\n\n" + curve_table_md(points, judge)
    if spent is not None:
        gr.Warning(f"The curve stopped at {spent}.")
        md = (f"{LIMIT_PREFIX} {spent}** (this server's limit): the scales that finished. "
              "Fewer scales fit.\n\n" + md)
    else:
        md += f"\n\n{len(points)} scales in {time.perf_counter() - start:.1f} s."
    yield (curve_figure(points, judge, k) if points else gr.skip()), md


def _probe(ck):
    """Two tiny samples and their classes: enough to make a judge fit what it caches."""
    import torch

    c, size = ck.model_config.channels, ck.model_config.image_size
    return torch.zeros(2, c, size, size), torch.tensor([0, min(1, ck.num_classes - 1)])


guide_finished = sweeps.run_finished  # says "■ Stopped during: …" after a ■ Stop


# ---------------------------------------------------------------------------------------------
# Layout and wiring
# ---------------------------------------------------------------------------------------------


def render(model: gr.Dropdown, accordion: gr.Accordion | None = None) -> None:
    """Build the section (inside the caller's ``accordion``) and wire its events. The note and
    the class choices follow ``model`` (tab 4's model dropdown; its value is a key for
    :func:`pages.sampler.models.load_model`) when it changes and when ``accordion`` opens."""
    lim = limits.ACTIVE
    heavy = dict(concurrency_limit=lim.sample_slots, concurrency_id=jobs.SAMPLE_QUEUE,
                 trigger_mode="once", show_progress="minimal")
    cheap = dict(concurrency_limit=8, concurrency_id="sampler_guide", show_progress="hidden")

    gr.Markdown(
        "### Classifier-free guidance: class × scale\n"
        "$\\tilde\\varepsilon = \\varepsilon_u + s\\,(\\varepsilon_c - \\varepsilon_u)$: "
        "**s = 0** is the unconditional model, **s = 1** the conditional one, **s > 1** "
        f"guides harder (default s = {GUIDANCE_DEFAULT:g}). Each row is a class, each column "
        "a scale, and every cell starts from **the same noise**: along a row only s changes. "
        "▶ Measure scores fresh samples at each s: how often a classifier reads the requested "
        "class (fidelity) and how varied each class is (diversity).",
        latex_delimiters=common.LATEX)
    note = gr.Markdown("Choose a class-conditional model above (e.g. *digits_cond*).",
                       elem_classes=["dl-health"])
    with gr.Row(equal_height=True):
        class_choice = ui.Dropdown([(ALL_LABEL, ALL)], value=ALL, label="Class",
                                   min_width=140, scale=2)
        scales = ui.CheckboxGroup(SCALE_CHOICES, value=DEFAULT_SCALES,
                                  label=f"Scales s (at most {MAX_SCALES})", scale=5)
        per_cell = ui.Number(1, label="Samples per cell", precision=0, minimum=1,
                             maximum=MAX_PER_CELL, min_width=90, scale=1)
        seed = ui.Number(0, label="Seed", precision=0, minimum=0, maximum=common.MAX_SEED,
                         min_width=80, scale=1)
    with gr.Row():
        grid_btn = gr.Button("▶ Grid", variant="primary", min_width=100)
        measure_btn = gr.Button("▶ Measure", variant="primary", min_width=100)
        stop_btn = gr.Button("■ Stop", variant="stop", min_width=80)
    picture = gr.Image(None, format="png", interactive=False, show_label=False,
                       label="rows: class · columns: guidance scale s",
                       buttons=["download", "fullscreen"], elem_classes=["dl-pixel"])
    grid_md = gr.Markdown("", elem_classes=["dl-health"])
    figure = gr.Plot(show_label=False)
    table = gr.Markdown(f"▶ Measure: about {CURVE_SAMPLES} samples per scale, within this "
                        f"server's {lim.sample_seconds:g} s sampling limit.",
                        elem_classes=["dl-health"])
    with gr.Accordion("How this works: the guidance formula, fidelity against diversity, "
                      "label dropout", open=False):
        gr.Markdown(common.explanation("sampler_guidance"), latex_delimiters=common.LATEX)

    # --- events -------------------------------------------------------------------------------
    model.change(guide_model, model, [note, class_choice], api_name="sampler_guide_model",
                 api_visibility="private", **cheap)
    if accordion is not None:  # opening the section brings its note and classes up to date
        accordion.expand(guide_model, model, [note, class_choice],
                         api_name="sampler_guide_open", api_visibility="private", **cheap)
    grid_event = grid_btn.click(guide_grid, [model, class_choice, scales, per_cell, seed],
                                [picture, grid_md], api_name="sampler_guide_grid", **heavy)
    grid_event.then(guide_finished, grid_md, [picture, grid_md],
                    api_name="sampler_guide_grid_finished", api_visibility="private", **cheap)
    measure_event = measure_btn.click(guide_measure, [model, class_choice, scales, seed],
                                      [figure, table], api_name="sampler_guide_measure", **heavy)
    measure_event.then(guide_finished, table, [figure, table],
                       api_name="sampler_guide_measure_finished", api_visibility="private",
                       **cheap)
    stop_btn.click(None, None, None, cancels=[grid_event, measure_event],
                   api_name="sampler_guide_stop", api_visibility="private", queue=False)
