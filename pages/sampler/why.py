"""Tab 4's "why" views: what the network is trying to learn, and the likelihood bound.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean image. Every number here uses the checkpoint's own schedule.

Two sections under the sampler (a view only; the computing is
:mod:`diffusion_core.workflows.image_why`):

* **What is the network trying to learn?** One real image (held-out by default), a t slider
  and a seed for ε: x_t beside the network's x̂0 and the *ideal denoiser's* x̂0 (the exact
  minimiser of the training loss over the model's own training images), the top-k training
  images behind it with their weights, and curves over t. Only for checkpoints whose training
  images the app can rebuild (:func:`~diffusion_core.workflows.image_why.training_data`);
  for the others it says why.
* **The likelihood bound** in bits per dimension, on held-out (and training) images, with its
  decomposition: a heavy job (one per visitor, the sampling queue and budget, ■ Stop).

=====================  ========================================================================
handler                what it does
=====================  ========================================================================
``why_model``          model changed / section opened: availability note, slider ranges, view
``why_view``           (model, source, image, t, seed) → tiles, curves figure, numbers
``run_bound``          generator: the bound, batch by batch; cached per (model files, settings)
``bound_finished``     after the run ends or is stopped: says so when it was stopped
=====================  ========================================================================

Shared state. Three small process-level LRU caches, like :mod:`.models`: the ideal denoiser
per checkpoint files (:func:`_ideal_view`), the curves over t per (checkpoint files, image,
seed) (:func:`_curves`), and finished bound results per (checkpoint files, settings)
(:func:`cached_bound`). Each value is a pure, deterministic function of its key (the model
is in eval mode and read-only, the data are rebuilt the same way, every random draw comes
from a generator seeded by the key's seed), and nobody writes to a cached value after it is
stored, so sharing them between sessions needs no locks beyond the cache's own, and nothing
mutable is shared.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pages import common, jobs, limits
from pages.widgets import inputs as ui

from .models import DEMO_KEY, DEMO_SCHEDULE, _load_cached, _stamp, load_model

if TYPE_CHECKING:
    from diffusion_core.checkpoints import Checkpoint
    from diffusion_core.workflows.image_why import (
        BoundResult,
        BoundSummary,
        IdealCurves,
        IdealRecord,
        IdealView,
        TrainingData,
    )

# Imported by the first event that needs them, not while the UI is built (see pages.common).
image_why = common.LazyModule("diffusion_core.workflows.image_why")
torch = common.LazyModule("torch")

SOURCE_CHOICES = [("held-out (never seen in training)", "held_out"),
                  ("training", "train")]
SOURCE_WORDS = {"held_out": "held-out", "train": "training"}
VARIANCE_CHOICES = [("β̃ₜ: the posterior's", "beta_tilde"), ("βₜ: the forward step's", "beta")]
VARIANCE_WORDS = {"beta_tilde": "σₜ² = β̃ₜ", "beta": "σₜ² = βₜ"}
DEFAULT_T = 300
TOP_K = 8
MAX_INDEX = 10**6  # the box's own bound; the handler checks the split's real size
VIEW_CACHE_SIZE = 2  # ideal denoisers (digits: ≈ 2 MB each; 3×16×16 sets: ≈ 37 MB)
CURVES_CACHE_SIZE = 64
BOUND_CACHE_SIZE = 16
TILE_PX = 132  # the four big tiles, on screen
TOP_PX = 66  # the top-k tiles
FIGURE_EVERY_S = 1.0  # a running bound redraws its figure at most this often
BEAT_S = 0.2  # … and its status line at least this often (one batch ≈ 0.15–0.2 s)

HELD_COLOR, TRAIN_COLOR = common.SAMPLE_COLOR, common.DATA_COLOR
NET_COLOR, IDEAL_COLOR = "#D55E00", "#0072B2"
PART_COLORS = {"decoder": "#009E73", "steps": "#56B4E9", "prior": "#CC79A7"}

BOUND_IDLE = ("Press **Compute the likelihood bound**: an unbiased estimate on held-out "
              "(and training) images, ≈ 5–10 s on this server; ■ Stop keeps the estimate "
              "so far.")
FIGURE_NOTE = (
    "<small>Right: the same draws per stratum of t. Bottom: the ε-error "
    "‖ε − ε̂‖²/d, which changes only gently with t — the simple loss averages it with weight "
    "1. Top: the bound's terms Lₜ = wₜ · that error (DDPM eq. 12), which fall by orders of "
    "magnitude because wₜ does: the bound is made almost entirely at small t, the simple "
    "loss spends the network's effort evenly. The lone point at t = T−1 is the cosine "
    "schedule's last step (β clipped to 0.999).</small>")
STOPPED_PREFIX = "■ Stopped"
RUNNING_PREFIX = "⏳"


# ---------------------------------------------------------------------------------------------
# Which checkpoint, which data (cached, read-only)
# ---------------------------------------------------------------------------------------------


def _files_key(ck: Checkpoint) -> tuple[str, tuple] | None:
    """(directory, file stamps) of a loaded checkpoint; None for the in-memory demo."""
    if ck.path is None:
        return None
    return str(ck.path), _stamp(ck.path)


def unavailable_reason(key, ck: Checkpoint) -> str | None:
    """Why the views cannot be shown for this model (plain words), or None when they can."""
    if key == DEMO_KEY:
        return ("the untrained demo U-Net has no training images (it was never trained), so "
                "there is no ideal denoiser to compare with and no data to score.")
    if _files_key(ck) is None:
        return "this model was not loaded from a checkpoint folder."
    try:
        image_why.training_data(ck)
    except image_why.DataUnavailable as e:
        return f"{e}."
    return None


def _data(key) -> tuple[Checkpoint, TrainingData, tuple]:
    """The checkpoint, its training data and its files key, or a :class:`UserError`."""
    ck = load_model(key)
    why = unavailable_reason(key, ck)
    if why is not None:
        raise common.UserError(f"Not available for this model: {why}")
    return ck, image_why.training_data(ck), _files_key(ck)


@functools.lru_cache(maxsize=VIEW_CACHE_SIZE)
def _ideal_view_cached(path: str, stamp: tuple) -> IdealView:
    ck = _load_cached(path, stamp)  # the same read-only object load_model returned
    return image_why.IdealView(ck, image_why.training_data(ck))


def _ideal_view(files: tuple) -> IdealView:
    """The ideal denoiser of a checkpoint's training images beside its network (shared,
    read-only; see the module docstring)."""
    return _ideal_view_cached(*files)


@functools.lru_cache(maxsize=CURVES_CACHE_SIZE)
def _curves(files: tuple, source: str, index: int, seed: int) -> IdealCurves:
    """The view's numbers over t for one (checkpoint files, image, ε seed); immutable."""
    return _ideal_view(files).curves(source, index, seed, top_k=TOP_K)


# ---------------------------------------------------------------------------------------------
# Section 1: the ideal denoiser beside the network
# ---------------------------------------------------------------------------------------------


def _png_uri(x) -> str:
    """``[C, H, W]`` in [−1, 1] → a PNG data URI at native size (the browser enlarges it)."""
    from PIL import Image

    from diffusion_core.images import to_uint8

    a = to_uint8(x)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _tile(x, caption: str, px: int, alt: str, bar: float | None = None) -> str:
    """One picture with a caption (and a weight bar of ``bar`` ∈ [0, 1] when given)."""
    bar_html = ""
    if bar is not None:
        bar_html = (f'<div style="height:5px;background:#e5e7eb;margin:2px 0">'
                    f'<div style="height:5px;width:{100 * max(0.0, min(1.0, bar)):.1f}%;'
                    f'background:{IDEAL_COLOR}"></div></div>')
    return (f'<figure style="margin:0;width:{px}px;text-align:center">'
            f'<img src="{_png_uri(x)}" alt="{html.escape(alt)}" width="{px}" height="{px}" '
            f'style="image-rendering:pixelated;width:{px}px;height:{px}px;'
            f'border:1px solid #cbd5e1;display:block">{bar_html}'
            f'<figcaption style="font-size:0.8rem;line-height:1.25;margin-top:2px">{caption}'
            f'</figcaption></figure>')


def _what(data: TrainingData) -> str:
    return "digit" if data.name in ("digits", "digits8") else "image"


def tiles_html(r: IdealRecord, data: TrainingData) -> str:
    """x0, x_t, the network's x̂0 and the ideal x̂0, then the top-k training images behind
    the ideal x̂0 with their weights (HTML; every number is the record's)."""
    what = _what(data)
    lab = f" (a {html.escape(r.label)})" if r.label is not None else ""
    big = [
        (r.x0, f"<b>x₀</b>: {SOURCE_WORDS[r.source]} {what} #{r.index}{lab}", "x0"),
        (r.x_t, f"<b>xₜ</b> at t = {r.t}", "x_t"),
        (r.net_x0, f"<b>U-Net's x̂₀</b><br>RMS to x₀ {r.rms_net:.3f}", "U-Net x̂0"),
        (r.ideal_x0, f"<b>ideal x̂₀</b> = Σ wᵢ xᵢ<br>RMS to x₀ {r.rms_ideal:.3f}", "ideal x̂0"),
    ]
    row = "".join(_tile(x, cap, TILE_PX, alt) for x, cap, alt in big)
    tops = []
    for rank, (i, w, lab_i) in enumerate(zip(r.top_index, r.top_weight, r.top_labels,
                                             strict=True)):
        name = f" · {html.escape(lab_i)}" if lab_i is not None else ""
        tops.append(_tile(r.top_images[rank], f"w = {w:.3f}<br>#{i}{name}", TOP_PX,
                          f"training {what} {i}, weight {w:.3f}", bar=w))
    head = (f'<div style="font-size:0.9rem;margin:10px 0 4px">The {len(r.top_index)} '
            f"training {what}s with the largest weights wᵢ behind the ideal x̂₀: together "
            f"<b>{100 * r.share:.2f} %</b> of its weight (all {data.train.images.shape[0]:,} "
            "weights sum to 1)</div>")
    flex = 'style="display:flex;gap:10px;flex-wrap:wrap;align-items:flex-start"'
    return f'<div {flex}>{row}</div>{head}<div {flex}>{"".join(tops)}</div>'


def _regime(r: IdealRecord, data: TrainingData) -> str:
    """One sentence: what the ideal denoiser does at this t (memorise, blend, average)."""
    what = _what(data)
    n = len(data.train)
    if r.effective_n < 1.5:
        if r.source == "train" and r.top_index[0] == r.index:
            return (f"**Memorising**: the ideal x̂₀ is the training {what} itself (#{r.index}) "
                    f"— it can only return training {what}s. Pick a held-out {what} to see "
                    "what the network does with one it never saw.")
        return (f"**Memorising**: the ideal x̂₀ snaps to *one* training {what} "
                f"(#{r.top_index[0]}), not to the {what} you picked; the U-Net's x̂₀ stays "
                f"{'closer to' if r.rms_net < r.rms_ideal else 'about as far from'} x₀ "
                f"(RMS {r.rms_net:.3f} vs {r.rms_ideal:.3f}): it generalises.")
    if r.effective_n > n / 4:
        net = ("the U-Net's x̂₀ is a similar blur" if r.rms_net_ideal < 0.2 else
               "the U-Net's x̂₀ is unreliable this close to pure noise (x̂₀ from ε̂ divides by "
               "√ᾱₜ ≈ 0; the sampler only uses ε̂ there)")
        return (f"**Averaging**: xₜ says little about x₀, so the ideal x̂₀ is close to the "
                f"average of all {n:,} training {what}s; {net}.")
    return (f"**Blending** about {r.effective_n:.1f} training {what}s: the noise hides the "
            f"details that would single one out.")


def numbers_md(r: IdealRecord, data: TrainingData, T: int) -> str:
    """The record's numbers and what they mean, in two short lines."""
    near = ("x₀ is itself a training image"
            if r.source == "train" and r.nearest_rms == 0.0 else
            f"nearest training {_what(data)} to x₀: #{r.nearest_index} at RMS "
            f"{r.nearest_rms:.3f}")
    return (f"t = {r.t} of 0…{T - 1} · ᾱₜ = {r.alpha_bar:.5g} · noise in x₀ units "
            f"√((1−ᾱₜ)/ᾱₜ) = {r.noise_in_x0_units:.3g} · the ideal x̂₀ averages ≈ "
            f"**{r.effective_n:.1f}** training {_what(data)}s (1/Σwᵢ²) · {near} · "
            f"U-Net vs ideal RMS {r.rms_net_ideal:.3f}  \n{_regime(r, data)}")


@functools.lru_cache(maxsize=1)
def _curves_layout_json() -> str:
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.09, subplot_titles=(
        "How many training images the ideal x̂₀ averages (1/Σwᵢ²)",
        "Distance of x̂₀ from the true x₀ (RMS per value)"))
    common.style_figure(fig, height=330)
    fig.update_layout(margin=dict(l=55, r=15, t=70, b=45), hovermode="x unified",
                      legend=dict(y=1.16))
    fig.update_xaxes(title_text="t")
    fig.update_yaxes(type="log", dtick=1, row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_annotations(font_size=14)
    return common.compact_layout_json(fig)


def curves_figure(c: IdealCurves, t: int, T: int) -> go.Figure:
    """Effective number of training images and the two x̂0's distances to x0, over t, with
    the slider's t marked.

    Redrawn on every move of the t slider, so it is built from plain dicts without plotly's
    per-property validation (``_validate=False``: ~3× faster; the layout was validated once
    when :func:`_curves_layout_json` built it, the traces are four plain line traces).
    """
    import json

    ts = c.ts.tolist()
    rnd = lambda a: np.round(a, 4).tolist()  # noqa: E731  (smaller JSON)

    def line(y, name, color, axes, **kw):
        return dict(type="scatter", x=ts, y=rnd(y), name=name, mode="lines",
                    line=dict(color=color, **kw.pop("line", {})), xaxis=axes[0],
                    yaxis=axes[1], **kw)

    traces = [
        line(c.effective_n, "1/Σwᵢ² (ideal)", IDEAL_COLOR, ("x", "y"), showlegend=False,
             hovertemplate="%{y:.1f} images<extra></extra>"),
        line(c.rms_net, "U-Net's x̂₀", NET_COLOR, ("x2", "y2")),
        line(c.rms_ideal, "ideal x̂₀", IDEAL_COLOR, ("x2", "y2")),
        line(c.rms_net_ideal, "U-Net vs ideal", "#7f7f7f", ("x2", "y2"),
             line=dict(dash="dot")),
    ]
    layout = json.loads(_curves_layout_json())  # subplots: (x, y) left, (x2, y2) right
    layout["yaxis"]["range"] = [-0.05, math.log10(c.n_train) + 0.1]
    layout["xaxis"]["range"] = layout["xaxis2"]["range"] = [0, T - 1]
    # The network's x̂0 at t = T − 1 divides by √ᾱ ≈ 0 (clipped: RMS up to 2): keep the axis
    # on the other steps so the rest stays readable; that point leaves the top.
    top = max(float(c.rms_ideal.max()), float(c.rms_net[c.ts < T - 1].max(initial=0.0)))
    layout["yaxis2"]["range"] = [0, 1.15 * top]
    layout["shapes"] = [dict(type="line", x0=t, x1=t, xref=ax, y0=0, y1=1,
                             yref=f"{ax.replace('x', 'y')} domain",
                             line=dict(color="#334155", width=1, dash="dash"))
                        for ax in ("x", "x2")]
    return go.Figure(data=traces, layout=layout, _validate=False)


def _view_updates(key, T: int, data: TrainingData | None):
    t_upd = gr.update(maximum=T - 1, label=f"t (0 … {T - 1})")
    if data is None:
        return t_upd, gr.update(label="Image number")
    n_h, n_t = len(data.held_out), len(data.train)
    return t_upd, gr.update(label=f"Image number (held-out 0…{n_h - 1}, training 0…{n_t - 1})")


def _checked_view_inputs(ck: Checkpoint, data: TrainingData, source, index, t, seed):
    if source not in image_why.SOURCES:
        raise common.UserError("Image source must be held_out or train.")
    n = len(data.split(source))
    index = common.number(f"Image number ({SOURCE_WORDS[source]}: {n:,} images)", index, 0,
                          n - 1, integer=True, default=0)
    t = common.number("t", t, 0, ck.schedule.T - 1, integer=True, default=DEFAULT_T)
    seed = common.number("Seed (ε)", seed, 0, common.MAX_SEED, integer=True, default=0)
    return source, index, t, seed


@common.friendly_errors
def why_view(key, source, index, t, seed):
    """(model, image source, image number, t, ε seed) → (tiles HTML, curves figure, numbers
    Markdown). Interactive-fast: one network call and one ideal-denoiser call (the curves over
    t are cached per image and seed)."""
    ck, data, files = _data(key)
    source, index, t, seed = _checked_view_inputs(ck, data, source, index, t, seed)
    view = _ideal_view(files)
    r = view.at(source, index, t, seed, top_k=TOP_K)
    return (tiles_html(r, data), curves_figure(_curves(files, source, index, seed), t,
                                                ck.schedule.T),
            numbers_md(r, data, ck.schedule.T))


def why_model(key, source, index, t, seed):
    """Model changed or the section opened → (availability note, t slider, image box, tiles,
    curves, numbers, bound button, bound status, bound result, bound figure).

    For a model without available training data the note says why and the outputs are
    cleared; otherwise t is kept (clamped to the model's 0…T−1) and the view is drawn.
    """
    ck = load_model(key)
    T = ck.schedule.T
    why = unavailable_reason(key, ck)
    bound_reset = (BOUND_IDLE, "", None)
    if why is not None:
        note = (f"⚠ **Not shown for this model**: {why} These views need the images the model "
                "was trained on; the shipped digits, gradients and shapes models have them.")
        return (note, *_view_updates(key, T, None), "", None, "",
                gr.update(interactive=False), *bound_reset)
    data = image_why.training_data(ck)
    t = min(int(t), T - 1) if isinstance(t, int | float) and math.isfinite(t) and t >= 0 \
        else min(DEFAULT_T, T - 1)
    note = (f"Training images: {data.train_note}. Held-out: {data.held_out_note}. The ideal "
            f"denoiser uses all {len(data.train):,} training images at the model's resolution "
            f"({'×'.join(map(str, data.train.shape))}, values in [−1, 1]).")
    t_upd, index_upd = _view_updates(key, T, data)
    t_upd["value"] = t
    try:
        tiles, fig, numbers = why_view(key, source, index, t, seed)
    except gr.Error:  # e.g. an image number beyond the new model's data: start at 0
        tiles, fig, numbers = why_view(key, source, 0, t, seed)
        index_upd["value"] = 0
    return (note, t_upd, index_upd, tiles, fig, numbers, gr.update(interactive=True),
            *bound_reset)


# ---------------------------------------------------------------------------------------------
# Section 2: the likelihood bound
# ---------------------------------------------------------------------------------------------

_bound_lock = threading.Lock()
_bound_cache: OrderedDict[tuple, BoundResult] = OrderedDict()


def cached_bound(key: tuple) -> BoundResult | None:
    """A finished bound for ``key`` = (checkpoint files, settings), or None (LRU)."""
    with _bound_lock:
        result = _bound_cache.get(key)
        if result is not None:
            _bound_cache.move_to_end(key)
        return result


def store_bound(key: tuple, result: BoundResult) -> BoundResult:
    """Keep a finished bound (immutable; deterministic given its key), evicting the oldest;
    returns the stored object (an existing one for the same key wins, so every session sees
    the same object)."""
    if not result.done:
        raise ValueError("only finished bounds are cached")
    with _bound_lock:
        if key in _bound_cache:
            _bound_cache.move_to_end(key)
            return _bound_cache[key]
        _bound_cache[key] = result
        while len(_bound_cache) > BOUND_CACHE_SIZE:
            _bound_cache.popitem(last=False)
        return result


def _fmt_bits(s: BoundSummary | None, attr: str, digits: int = 3) -> str:
    return "—" if s is None else f"{getattr(s, attr):.{digits}f}"


def bound_md(result: BoundResult, ck: Checkpoint) -> str:
    """The bound's numbers as a table (bits per dimension) and what the gap means."""
    held, train = result.summary("held_out", ck.schedule), result.summary("train", ck.schedule)
    cols = [("held_out", held), ("train", train)] if result.settings.with_train \
        else [("held_out", held)]

    def head(src, s):
        part = result.images_done(src)
        total = result.planned(src)
        n = f"{part:,}" if part == total else f"{part:,} of {total:,}"
        return f"{SOURCE_WORDS[src]} ({n} images)"

    def cell(s, attr, digits=3):
        return _fmt_bits(s, attr, digits)

    def total(s):
        return "—" if s is None else f"**{s.bits_per_dim:.3f} ± {s.stderr_bits:.3f}**"

    rows = [
        ("bound, bits/dim ± s.e.", [total(s) for _, s in cols]),
        ("L₀ decoder (t = 0)", [cell(s, "decoder_bits") for _, s in cols]),
        (f"Σ Lₜ, t = 1…{ck.schedule.T - 1}", [cell(s, "steps_bits") for _, s in cols]),
        ("$L_T$ prior", [cell(s, "prior_bits", 5) for _, s in cols]),
        ("simple ε-loss ‖ε − ε̂‖²/d, t = 1…T−1", [cell(s, "eps_loss", 4) for _, s in cols]),
    ]
    lines = ["| | " + " | ".join(head(src, s) for src, s in cols) + " |",
             "|---|" + "---|" * len(cols)]
    lines += [f"| {name} | " + " | ".join(vals) + " |" for name, vals in rows]
    k = result.settings.timesteps
    notes = [f"Unbiased estimate: t = 0 and t = {ck.schedule.T - 1} for every image plus {k} "
             f"random t per image, one in each of {k} log-spaced strata of 1…{ck.schedule.T - 2} "
             f"({k + 2} network calls per image instead of {ck.schedule.T}); s.e. = standard "
             "deviation of the per-image bounds / √n (data and Monte-Carlo spread together). "
             f"Discrete 8-bit decoder; {VARIANCE_WORDS[result.settings.variance]}; "
             f"seed {result.settings.seed}."]
    loss = ck.training.get("final_loss") if isinstance(ck.training, dict) else None
    if isinstance(loss, int | float) and math.isfinite(loss):
        notes.append(f"The last training loss recorded for this model was {loss:.4f} "
                     "(the same ε-loss, on training batches).")
    if held is not None and train is not None:
        gap = held.bits_per_dim - train.bits_per_dim
        se = math.hypot(held.stderr_bits, train.stderr_bits)
        if abs(gap) > 2 * se:
            what = ("higher likelihood to its training images than to new ones: a sign of "
                    "memorisation (overfitting)" if gap > 0 else
                    "lower likelihood to its training images than to new ones (unusual)")
        else:
            what = ("no clear difference between training and new images at this precision: "
                    "no sign of memorisation")
        notes.append(f"**Held-out − training = {gap:+.3f} ± {se:.3f} bits/dim**: the model "
                     f"gives a {what}.")
    return "\n".join(lines) + "\n\n" + "  \n".join(notes)


@functools.lru_cache(maxsize=1)
def _bound_layout_json() -> str:
    fig = make_subplots(
        rows=2, cols=2, column_widths=[0.26, 0.74], horizontal_spacing=0.1,
        vertical_spacing=0.16, specs=[[{"rowspan": 2}, {}], [None, {}]],
        subplot_titles=("The bound (bits/dim)", "Lₜ per step: the bound's terms (bits/dim)",
                        "‖ε − ε̂‖²/d per step: what the simple loss averages"))
    common.style_figure(fig, height=560)
    fig.update_layout(barmode="stack", hovermode="closest", margin=dict(l=60, r=20, t=90, b=50),
                      legend=dict(y=1.13))
    fig.update_xaxes(type="log", row=1, col=2)
    fig.update_xaxes(type="log", title_text="t (log scale; the stratum's steps)", row=2, col=2)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=2, col=2)
    fig.update_yaxes(title_text="bits per dimension", rangemode="tozero", row=1, col=1)
    fig.update_annotations(font_size=14)
    return common.compact_layout_json(fig)


def bound_figure(result: BoundResult, ck: Checkpoint) -> go.Figure:
    """Left: L_0 + Σ L_t + L_T stacked (bits/dim) per split, the total ± s.e. on top. Right:
    per stratum of t, the bound's terms per step (top) and the ε-error they weight (bottom)."""
    import json

    # subplots: (x, y) the bars, (x2, y2) the terms per step, (x3, y3) the ε-error
    fig = go.Figure(layout=json.loads(_bound_layout_json()))
    sums = [(src, result.summary(src, ck.schedule)) for src in image_why.SOURCES]
    sums = [(src, s) for src, s in sums if s is not None]
    names = [SOURCE_WORDS[src] for src, _ in sums]
    parts = [("decoder", "L₀ decoder", "decoder_bits"),
             ("steps", f"Σ Lₜ, t = 1…{ck.schedule.T - 1}", "steps_bits"),
             ("prior", "L_T prior", "prior_bits")]
    for key, label, attr in parts:
        fig.add_trace(go.Bar(x=names, y=[round(getattr(s, attr), 5) for _, s in sums],
                             name=label, marker_color=PART_COLORS[key],
                             hovertemplate=f"{label}: %{{y:.3f}} bits/dim<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=names, y=[s.bits_per_dim for _, s in sums], mode="markers+text",
        marker=dict(color="#111827", size=7), name="total ± s.e.",
        error_y=dict(type="data", array=[s.stderr_bits for _, s in sums], color="#111827"),
        text=[f"{s.bits_per_dim:.2f}" for _, s in sums], textposition="top center",
        cliponaxis=False, showlegend=False,
        hovertemplate="total %{y:.3f} bits/dim<extra></extra>"))
    for src, s in sums:
        color = HELD_COLOR if src == "held_out" else TRAIN_COLOR
        x = [math.sqrt(st.lo * (st.hi - 1)) if st.hi - st.lo > 1 else st.lo
             for st in s.strata]
        hover = [f"t = {st.lo}…{st.hi - 1}" if st.hi - st.lo > 1 else f"t = {st.lo}"
                 for st in s.strata]
        fig.add_trace(go.Scatter(
            x=x, y=[max(st.per_step_bits, 1e-12) for st in s.strata], mode="lines+markers",
            name=SOURCE_WORDS[src], line=dict(color=color), legendgroup=src,
            text=hover, hovertemplate="%{text}: %{y:.3g} bits/dim per step<extra></extra>",
            xaxis="x2", yaxis="y2"))
        fig.add_trace(go.Scatter(
            x=x, y=[st.eps_mse for st in s.strata], mode="lines+markers",
            name=SOURCE_WORDS[src], line=dict(color=color), legendgroup=src, showlegend=False,
            text=hover, hovertemplate="%{text}: ‖ε − ε̂‖²/d = %{y:.3g}<extra></extra>",
            xaxis="x3", yaxis="y3"))
    return fig


def _check_bound_inputs(variance, seed, with_train):
    if variance not in ("beta_tilde", "beta"):
        raise common.UserError("Reverse variance must be beta_tilde (σ² = β̃) or beta (σ² = β).")
    seed = common.number("Seed", seed, 0, common.MAX_SEED, integer=True, default=0)
    if not isinstance(with_train, bool):
        raise common.UserError(f"'Also on training images' must be true or false (got "
                               f"{common.short(with_train)}).")
    return variance, seed, with_train


def _running_md(progress, elapsed: float) -> str:
    return (f"{RUNNING_PREFIX} Computing on {SOURCE_WORDS[progress.source]} images: "
            f"{progress.images_done:,} / {progress.images_total:,} · {elapsed:.1f} s")


@jobs.heavy("computing a likelihood bound")
@common.friendly_errors
def run_bound(key, variance, seed, with_train=True, request: gr.Request | None = None):
    """The variational bound of the chosen model in bits/dim, with its decomposition.

    Yields ``(status Markdown, result Markdown, figure)``: the running estimate after every
    batch of images (the status at least every :data:`BEAT_S` s, the figure at most every
    :data:`FIGURE_EVERY_S` s), then the result. A finished result is cached per (checkpoint
    files, settings) and served from the cache on the next press. The run takes the sampling
    budget and gives way to waiting users like a sampling run; ■ Stop, the budget or a turn
    keep the estimate on the images done so far (unbiased, with a larger standard error).
    """
    variance, seed, with_train = _check_bound_inputs(variance, seed, with_train)
    ck, data, files = _data(key)
    settings = image_why.BoundSettings(variance=variance, seed=seed, with_train=with_train)
    cache_key = (files, settings)
    hit = cached_bound(cache_key)
    if hit is not None:
        yield (f"✓ From this server's cache (the same model files and settings give the same "
               f"numbers; computed in {hit.seconds:.1f} s).", bound_md(hit, ck),
               bound_figure(hit, ck))
        return
    budget = limits.ACTIVE.sampling_budget()
    skip = gr.skip()
    yield "⏳ Starting …", skip, skip
    chain = image_why.bound_run(ck, data, settings)
    started = time.perf_counter()
    last_fig = last_beat = started
    result = None
    try:
        paced = jobs.paced(chain)
        for progress in paced:
            result = progress.result
            now = time.perf_counter()
            spent = (budget.stop_reason(progress.batches_done, now - started)
                     or jobs.turn_over(jobs.SAMPLE_QUEUE, paced.turn_s))
            if spent is not None and not result.done:
                gr.Warning(f"The bound stopped at {spent}.")
                yield (f"{STOPPED_PREFIX} at {spent} (this server's limit): the numbers are the "
                       "estimate on the images done so far (still unbiased, larger standard "
                       "error). Press again to compute it all.", bound_md(result, ck),
                       bound_figure(result, ck))
                return
            if result.done:
                break
            if now - last_fig >= FIGURE_EVERY_S:
                last_fig = last_beat = now
                yield _running_md(progress, now - started), bound_md(result, ck), \
                    bound_figure(result, ck)
            elif now - last_beat >= BEAT_S:
                last_beat = now
                yield _running_md(progress, now - started), bound_md(result, ck), skip
    finally:
        chain.close()
    if result is None or not result.done:  # cannot happen: the run always yields a last one
        raise common.UserError("The bound produced no result.")
    result = store_bound(cache_key, result)
    yield (f"✓ Done in {result.seconds:.1f} s.", bound_md(result, ck), bound_figure(result, ck))


def bound_finished(status):
    """After the bound run ends or is stopped (``.then``): a stopped run says so."""
    if isinstance(status, str) and status.startswith(RUNNING_PREFIX):
        return (f"{STOPPED_PREFIX}: the numbers are the estimate on the images done so far "
                "(unbiased, larger standard error). Press the button to compute it all.")
    return gr.skip()


# ---------------------------------------------------------------------------------------------
# Layout and events
# ---------------------------------------------------------------------------------------------


def _explanation(part: int) -> str:
    """Part ``part`` (0: the ideal denoiser, 1: the bound) of ``image_why.md``."""
    return common.explanation("image_why").split("<!-- bound -->")[part].strip()


def render(model: gr.Dropdown) -> None:
    """Both sections (inside the tab, below the sampler), wired to the ``model`` dropdown."""
    T0 = DEMO_SCHEDULE.T
    lim = limits.ACTIVE
    with gr.Accordion("What is the network trying to learn? Its x̂₀ beside the ideal "
                      "denoiser's", open=False) as why_acc:
        why_note = gr.Markdown("Open this section to load the model's training images.",
                               elem_classes=["dl-health"])
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=260):
                source = ui.Radio(SOURCE_CHOICES, value="held_out", label="Image")
                index = ui.Number(0, label="Image number", precision=0, minimum=0,
                                  maximum=MAX_INDEX)
                t = ui.Slider(0, T0 - 1, value=DEFAULT_T, step=1, label=f"t (0 … {T0 - 1})")
                seed = ui.Number(0, label="Seed (ε)", precision=0, minimum=0,
                                 maximum=common.MAX_SEED)
            with gr.Column(scale=3):
                tiles = gr.HTML("")
                numbers = gr.Markdown("", latex_delimiters=common.LATEX)
                curves = gr.Plot(show_label=False)
        with gr.Accordion("What am I looking at?", open=False):
            gr.Markdown(_explanation(0), latex_delimiters=common.LATEX)

    with gr.Accordion("How well does it model the data? The likelihood bound in bits per "
                      "dimension", open=False):
        with gr.Row(equal_height=True):
            variance = ui.Dropdown(VARIANCE_CHOICES, value="beta_tilde",
                                   label="Reverse variance σₜ² (fixed)", min_width=200, scale=3)
            bseed = ui.Number(0, label="Seed (t and ε draws)", precision=0, minimum=0,
                              maximum=common.MAX_SEED, min_width=120, scale=2)
            with_train = ui.Checkbox(True, label="Also on training images",
                                     info="the held-out − training gap shows memorisation",
                                     min_width=200, scale=3)
            with gr.Column(scale=3, min_width=200):
                bound_btn = gr.Button("Compute the likelihood bound", variant="primary")
                bound_stop = gr.Button("■ Stop", variant="stop", size="sm")
        bound_status = gr.Markdown(BOUND_IDLE, elem_classes=["dl-health"])
        bound_result = gr.Markdown("", latex_delimiters=common.LATEX)
        bound_plot = gr.Plot(show_label=False)
        gr.Markdown(FIGURE_NOTE, elem_classes=["dl-health"])
        with gr.Accordion("Why the simple loss is the bound without its weights, and why a "
                          "fixed variance makes it loose", open=False):
            gr.Markdown(_explanation(1), latex_delimiters=common.LATEX)

    cheap = dict(concurrency_limit=8, show_progress="hidden")
    view_in = [model, source, index, t, seed]
    view_out = [tiles, curves, numbers]
    refresh_out = [why_note, t, index, *view_out, bound_btn, bound_status, bound_result,
                   bound_plot]
    model.change(why_model, view_in, refresh_out, api_name="sampler_why_model",
                 api_visibility="private", concurrency_id="sampler_why", **cheap)
    why_acc.expand(why_model, view_in, refresh_out, api_name="sampler_why_open",
                   api_visibility="private", concurrency_id="sampler_why", **cheap)
    gr.on([t.input, source.input, index.submit, index.blur, seed.submit, seed.blur],
          why_view, view_in, view_out, api_name="sampler_why", concurrency_id="sampler_why",
          trigger_mode="always_last", **cheap)

    bound_event = bound_btn.click(
        run_bound, [model, variance, bseed, with_train],
        [bound_status, bound_result, bound_plot], api_name="sampler_bound",
        concurrency_limit=lim.sample_slots, concurrency_id=jobs.SAMPLE_QUEUE,
        trigger_mode="once", show_progress="minimal")
    bound_event.then(bound_finished, bound_status, bound_status,
                     api_name="sampler_bound_finished", api_visibility="private",
                     concurrency_id="sampler_why", **cheap)
    bound_stop.click(None, None, None, cancels=[bound_event], api_name="sampler_bound_stop",
                     api_visibility="private", queue=False)


__all__ = ["bound_figure", "bound_finished", "bound_md", "cached_bound", "curves_figure",
           "numbers_md", "render", "run_bound", "store_bound", "tiles_html",
           "unavailable_reason", "why_model", "why_view"]

