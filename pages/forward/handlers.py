"""Tab 2's event handlers: validate the controls, drive the forward demo, format its records.

The computing is :mod:`diffusion_core.workflows.forward_demo` (eq. 4 by ``forward.q_sample``,
SNR read from the schedule); these functions only check input (``gr.Error`` / ``gr.Warning``),
keep the per-session state and turn records into pictures and text (:mod:`.views`).

Per-session state (``gr.State``), plain dicts so they deep-copy cheaply:

* image state: ``{"x0": [1, C, H, W] float32 in [−1, 1], "eps": same shape, "seed": int,
  "name": str}``
* schedule state: ``{"config": ScheduleConfig.to_dict(), "alphas_cumprod": float64 numpy [T]}``
  (the schedule itself is rebuilt from the config, once per config, by
  ``forward_demo.noise_schedule``)
* t mirror: the slider's last valid t (int), read by the events that the slider did not fire
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from diffusion_core.schedule.config import ScheduleConfig
from pages import common, limits
from pages.common import MAX_SEED

from . import views
from .views import STRIP_FRAMES, STRIP_MAX, to_image

# Imported by the first event that needs it, not while the UI is built (see pages.common).
demo = common.LazyModule("diffusion_core.workflows.forward_demo")
images = common.LazyModule("diffusion_core.images")

# label → key; photos are scikit-learn's two sample photos (centre-cropped, 256×256); the digit
# and the gradient are generated at 64×64 (see diffusion_core.workflows.forward_demo).
IMAGE_CHOICES = (
    ("China (photo)", "china"),
    ("Flower (photo)", "flower"),
    ("Digit (8×8, smoothed)", "digit"),
    ("Colour gradient", "gradient"),
    ("My upload", "upload"),
)
IMAGE_KEYS = tuple(k for _, k in IMAGE_CHOICES)


def _check_image_state(state):
    if not isinstance(state, dict) or "x0" not in state or "eps" not in state:
        raise common.UserError("No image loaded yet: pick one on the left.")
    return state["x0"], state["eps"]


def _schedule(sched):
    """The session's :class:`NoiseSchedule` (built once per config, then cached)."""
    if not isinstance(sched, dict) or "config" not in sched:
        raise common.UserError("No schedule yet: choose one on the left.")
    return demo.noise_schedule(ScheduleConfig.from_dict(sched["config"]))


def _t_index(t, T: int) -> int:
    return common.number("t", t, 0, T - 1, integer=True)


def _seed(seed) -> int:
    return common.number("Noise seed", seed, 0, MAX_SEED, integer=True)


# ---------------------------------------------------------------------------------------------
# Image and noise
# ---------------------------------------------------------------------------------------------


def builtin_image(key: str):
    """One built-in image as ``[C, H, W]`` in [−1, 1]."""
    try:
        return demo.builtin_image(key)
    except ValueError:
        keys = ", ".join(IMAGE_KEYS[:-1])
        raise common.UserError(f"Unknown image {common.short(key)}; choose one of {keys}.") \
            from None


def _image_state(x0, seed, name: str) -> dict:
    x0 = x0.float().unsqueeze(0).contiguous()
    seed = _seed(seed)
    return {"x0": x0, "eps": demo.draw_eps(x0, seed), "seed": seed, "name": name}


def _colour(channels: int) -> str:
    return "RGB" if channels == 3 else "greyscale"


def load_image(choice, upload_path, seed):
    """Image radio → (image state, note Markdown). "upload" reads ``upload_path``."""
    if choice == "upload":
        if not upload_path:
            return gr.skip(), "Press “Upload your own image…” above to choose a file."
        return _load_file(upload_path, seed)
    x0 = builtin_image(choice)
    c, h, w = x0.shape
    label = dict((k, lb) for lb, k in IMAGE_CHOICES)[choice]
    return _image_state(x0, seed, choice), f"{label}: {w}×{h}, {_colour(c)}."


def _load_file(path, seed):
    lim = limits.ACTIVE
    try:
        size = Path(str(path)).stat().st_size
    except (OSError, ValueError):
        raise common.UserError("The uploaded file is gone; please upload it again.") from None
    if size > lim.max_upload_bytes:
        raise common.UserError(f"The file is {size / 2**20:.1f} MB; this server takes images "
                               f"up to {lim.upload_mb:g} MB.")
    try:
        x0, notes = demo.load_upload(path, max_pixels=lim.max_upload_pixels)
    except FileNotFoundError:
        raise common.UserError("The uploaded file is gone; please upload it again.") from None
    except ValueError as e:
        name = Path(str(path)).name  # don't show the server's temp folder
        msg = str(e).replace(str(path), name)
        raise common.UserError(f"“{name}” cannot be used as an image: {msg}") from None
    for n in notes:
        gr.Info(f"Your image: {n}.")
    c, h, w = x0.shape
    note = f"Your image: {w}×{h}, {_colour(c)}"
    note += (" — " + "; ".join(notes) + ".") if notes else "."
    return _image_state(x0, seed, "upload"), note


def load_upload(upload_path, seed):
    """File upload → (image radio value "upload", image state, note)."""
    if not upload_path:
        raise common.UserError("No file received; please upload again.")
    state, note = _load_file(upload_path, seed)
    return "upload", state, note


def set_noise(state, seed):
    """Draw ε for the current image from ``seed`` → new image state."""
    x0, _ = _check_image_state(state)
    seed = _seed(seed)
    return {**state, "eps": demo.draw_eps(x0, seed), "seed": seed}


def new_noise(seed):
    """The "New noise" button: the next seed (its ``.change`` redraws ε)."""
    try:
        return (int(seed) + 1) % (MAX_SEED + 1)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------------------------


def _shared_config(shared) -> ScheduleConfig:
    try:
        return ScheduleConfig.from_dict(dict(shared))
    except (TypeError, ValueError) as e:
        raise common.UserError(f"The schedule from tab 1 is not usable ({e}).") from None


def schedule_state(cfg: ScheduleConfig) -> dict:
    """The per-session schedule state: config dict + ᾱ_t (float64, a copy of the schedule's)."""
    s = demo.noise_schedule(cfg)
    return {"config": cfg.to_dict(), "alphas_cumprod": s.float64["alphas_cumprod"].numpy().copy()}


def resolve_schedule(use_shared, kind, T, shared, current=None, t_current=0):
    """Schedule controls → (schedule state, t slider, kind dropdown, T box, t mirror).

    With ``use_shared`` the schedule is tab 1's (``shared``); otherwise ``kind`` and ``T``
    override it, keeping tab 1's β_start, β_end, scaling, s and p. When T changes, the t slider
    gets the range 0..T−1 and t is clamped into it.

    ``t_current`` comes from the per-session t mirror (a ``gr.State``), not from the slider:
    the browser may fire the follow-up events with the slider's old value before it applies the
    new maximum, and Gradio refuses an out-of-range slider value before any handler runs. So
    the events triggered by a schedule or image change read t from that mirror too.
    Unchanged parts are left alone (``gr.skip()``).
    """
    base = _shared_config(shared)
    if use_shared:
        cfg = base
    else:
        cfg = common.schedule_config(kind, T, base.beta_start, base.beta_end, base.scale_to_T,
                                     base.cosine_s, base.power)
    old = current.get("config") if isinstance(current, dict) else None
    state = gr.skip() if old == cfg.to_dict() else schedule_state(cfg)
    if old is not None and old.get("T") == cfg.T:
        t_update = t_mirror = gr.skip()
    else:
        try:
            t_new = min(max(int(t_current), 0), cfg.T - 1)
        except (TypeError, ValueError):
            t_new = 0
        t_update, t_mirror = gr.update(maximum=cfg.T - 1, value=t_new), t_new
    lock = not use_shared
    return (
        state,
        t_update,
        gr.update(value=cfg.kind, interactive=lock),
        gr.update(value=cfg.T, interactive=lock),
        t_mirror,
    )


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


def show_t(state, sched, t):
    """The slider's fast path → (signal image, noise image, x_t image, histogram, numbers, t).

    The last value is the validated t, kept in a ``gr.State`` mirror that the events not fired
    by the slider itself read instead of the slider (see :func:`resolve_schedule`).
    """
    x0, eps = _check_image_state(state)
    schedule = _schedule(sched)
    t = _t_index(t, schedule.T)
    parts = demo.forward_parts(schedule, x0, eps, t)
    stats = demo.frame_stats(schedule, x0, parts, bins=views.HIST_BINS,
                             value_range=views.HIST_RANGE)
    return (to_image(parts.signal), to_image(parts.noise), to_image(parts.x_t),
            views.histogram_figure(stats.histogram), views.numbers_markdown(stats), t)


def strip_frames(state: dict, sched: dict, n: int = STRIP_FRAMES):
    """x_t at ``n`` evenly spaced t (same ε), side by side → (uint8 strip, the t values).

    Large images are subsampled (every k-th pixel, so the noise keeps its per-pixel spread)
    to ≤ ``STRIP_MAX`` pixels; small ones are enlarged (nearest neighbour) to it.
    """
    s = demo.strip(_schedule(sched), state["x0"], state["eps"], frames=n, max_side=STRIP_MAX)
    scale = max(1, STRIP_MAX // max(s.frames.shape[-2:]))
    return images.make_grid(s.frames, ncols=len(s.ts), pad=2, scale=scale), list(s.ts)


def refresh_view(state, sched, t):
    """Everything that depends on the image, ε or the schedule → (x0 image, signal, noise,
    x_t, histogram, numbers, strip gallery)."""
    x0, _ = _check_image_state(state)
    T = _schedule(sched).T
    t_clamped = min(max(int(float(t or 0)), 0), T - 1)
    strip, ts = strip_frames(state, sched)
    return (to_image(x0[0]), *show_t(state, sched, t_clamped)[:5],
            gr.update(value=strip, label=views.strip_label(ts)))


def compare_methods(state, sched, t, enabled):
    """Generator → (compare panel visibility, eq. 2 image, eq. 4 image, statistics Markdown).

    Eq. 2 runs the chain t+1 steps (``forward.q_sample_iterative``, ~1 ms per step for a
    256×256 RGB image), with its own noise seeded from the session seed; eq. 4 uses the
    session's ε (the picture shown above).
    """
    if not enabled:
        yield gr.update(visible=False), gr.skip(), gr.skip(), gr.skip()
        return
    x0, eps = _check_image_state(state)
    schedule = _schedule(sched)
    t = _t_index(t, schedule.T)
    yield (gr.update(visible=True), gr.skip(), gr.skip(),
           f"⏳ Running the chain step by step ({t + 1} steps)…")
    c = demo.compare(schedule, x0, eps, t, state["seed"])
    yield (gr.update(visible=True), to_image(c.x_iter), to_image(c.x_closed),
           views.compare_markdown(c.stats, t, c.seconds))
