"""Tab 2 · Forward noising: watch q(x_t | x0) destroy an image as t grows.

x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (DDPM eq. 4) with one fixed ε per session, so moving the t slider
walks along one trajectory. Optionally compares with running the chain step by step (eq. 2).

Per-session state (``gr.State``), plain dicts so they deep-copy cheaply:

* image state: ``{"x0": [1, C, H, W] float32 in [−1, 1], "eps": same shape, "seed": int,
  "name": str}``
* schedule state: ``{"config": ScheduleConfig.to_dict(), "alphas_cumprod", "sqrt_alphas_cumprod",
  "sqrt_one_minus_alphas_cumprod": float64 numpy [T]}``
* t mirror: the slider's last valid t (int), read by the events that the slider did not fire

Handlers are plain module-level functions (tests call them directly): :func:`load_image`,
:func:`load_upload`, :func:`set_noise`, :func:`new_noise`, :func:`resolve_schedule`,
:func:`show_t` (the fast slider path), :func:`refresh_view`, :func:`compare_methods` (generator).
"""

from __future__ import annotations

import json
import math
import time
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from diffusion_core.schedule.config import BUILTIN_KINDS, ScheduleConfig
from pages import common

# Imported by the first event that needs them, not while the UI is built (see pages.common).
torch = common.LazyModule("torch")
data = common.LazyModule("diffusion_core.data")
forward = common.LazyModule("diffusion_core.forward")
images = common.LazyModule("diffusion_core.images")
core_schedules = common.LazyModule("diffusion_core.schedule")

LATEX = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
]
# label → key; photos are scikit-learn's two sample photos (centre-cropped, 256×256).
IMAGE_CHOICES = (
    ("China (photo)", "china"),
    ("Flower (photo)", "flower"),
    ("Digit (8×8, smoothed)", "digit"),
    ("Colour gradient", "gradient"),
    ("My upload", "upload"),
)
IMAGE_KEYS = tuple(k for _, k in IMAGE_CHOICES)
PHOTO_SIZE = 256
SMALL_SIZE = 64  # digit and gradient are generated at 64×64 …
DISPLAY_MIN = 256  # … and enlarged (nearest neighbour) to at least this for display
STRIP_FRAMES = 8
STRIP_MAX = 128  # strip frames are subsampled (every k-th pixel, no blur) to ≤ this
DIGIT_INDEX = 0
GRADIENT_SEED = 3
MAX_SEED = 2**31 - 1
HIST_RANGE = 4.0
HIST_BINS = 80
IMG_HEIGHT = 215

EXPLANATION_MD = r"""
**Closed form (DDPM eq. 4).** Any step can be reached in one go:
$$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon, \qquad
\varepsilon \sim \mathcal N(0, I), \qquad \bar\alpha_t = \prod_{s=0}^{t}(1-\beta_s).$$
The pictures show the two parts at their true scale (grey is 0, images live in $[-1, 1]$;
values outside are clipped for display only) and their sum $x_t$. One $\varepsilon$ is drawn
per session and kept while you move $t$, so the slider walks along one noising trajectory;
**New noise** (or another seed) draws a new one.

**Numbers.** $\mathrm{SNR}_t = \bar\alpha_t / (1-\bar\alpha_t)$, in dB $10\log_{10}\mathrm{SNR}_t$.
$\mathrm{PSNR} = 10\log_{10}\big(2^2 / \mathrm{MSE}(x_t, x_0)\big)$ with peak-to-peak 2 because
pixels span $[-1, 1]$; it uses the unclipped $x_t$. The histogram shows $x_t$'s pixel values
(in $[-4, 4]$) against the $\mathcal N(0, 1)$ density that $x_t$ approaches as $\bar\alpha_t \to 0$.

**Step by step (DDPM eq. 2).** The chain itself adds a little fresh noise at every step:
$$x_s = \sqrt{1-\beta_s}\,x_{s-1} + \sqrt{\beta_s}\,\varepsilon_s,\quad s = 0,\dots,t,
\quad x_{-1} = x_0 .$$
Unrolled, $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sum_{s=0}^{t}\sqrt{\beta_s}
\prod_{r=s+1}^{t}\sqrt{1-\beta_r}\;\varepsilon_s$: a sum of independent Gaussians, whose
variances add up to $\sum_s \beta_s\prod_{r>s}(1-\beta_r) = 1-\bar\alpha_t$ (the sum telescopes).
So both routes give the **same distribution** $\mathcal N(\sqrt{\bar\alpha_t}\,x_0,
(1-\bar\alpha_t) I)$, but different draws: the two pictures differ pixel by pixel while their
statistics agree. Eq. 4 is what makes training cheap: no need to run $t$ steps per example.
"""


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _display(x: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` in [−1, 1] → uint8 ``[H', W', 3]`` or ``[H', W']`` (grey), clipped, and
    enlarged by an integer factor (nearest neighbour) when smaller than ``DISPLAY_MIN``."""
    a = x.numpy()
    a = np.rint((np.clip(a, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    k = DISPLAY_MIN // max(a.shape[:2])
    if k > 1:
        a = a.repeat(k, axis=0).repeat(k, axis=1)
    return a


def _check_image_state(state) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(state, dict) or "x0" not in state or "eps" not in state:
        raise gr.Error("No image loaded yet: pick one on the left.")
    return state["x0"], state["eps"]


def _check_sched_state(sched) -> dict:
    if not isinstance(sched, dict) or "sqrt_alphas_cumprod" not in sched:
        raise gr.Error("No schedule yet: choose one on the left.")
    return sched


def _t_index(t, sched: dict) -> int:
    T = len(sched["alphas_cumprod"])
    return common.number("t", t, 0, T - 1, integer=True)


def _seed(seed) -> int:
    return common.number("Noise seed", seed, 0, MAX_SEED, integer=True)


def _draw_eps(x0: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))


@lru_cache(maxsize=2)
def _hist_layout_json() -> str:
    """The histogram's styled layout as JSON, built once: validating the full ``plotly_white``
    template costs ~10 ms per figure, so only the parts 2D plots use are kept."""
    fig = go.Figure()
    common.style_figure(fig, height=250, x_title="pixel value of x_t", y_title="density")
    fig.update_layout(margin=dict(l=55, r=10, t=30, b=45), bargap=0.05,
                      legend=dict(y=1.0, font=dict(size=13)), hovermode="x")
    fig.update_xaxes(range=[-HIST_RANGE, HIST_RANGE])
    return common.compact_layout_json(fig)


def _gauss_curve() -> tuple[np.ndarray, np.ndarray]:
    z = np.linspace(-HIST_RANGE, HIST_RANGE, 161)
    return z, np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


def histogram_figure(x_t: torch.Tensor) -> go.Figure:
    """Density histogram of x_t's values in [−4, 4] (``HIST_BINS`` bins) and the N(0, 1) pdf."""
    width = 2 * HIST_RANGE / HIST_BINS
    counts = torch.histc(x_t, bins=HIST_BINS, min=-HIST_RANGE, max=HIST_RANGE).numpy()
    density = counts / (x_t.numel() * width)
    centers = -HIST_RANGE + width * (np.arange(HIST_BINS) + 0.5)
    z, pdf = _gauss_curve()
    traces = [
        dict(type="bar", x=centers, y=density, width=width, name="x_t pixels",
             marker=dict(color=common.DATA_COLOR, opacity=0.75),
             hovertemplate="value %{x:.2f}: density %{y:.3f}<extra></extra>"),
        dict(type="scatter", mode="lines", x=z, y=pdf, name="N(0, 1)",
             line=dict(color=common.SAMPLE_COLOR, width=3),
             hovertemplate="N(0,1) density %{y:.3f}<extra></extra>"),
    ]
    return go.Figure(data=traces, layout=json.loads(_hist_layout_json()))


def frame_numbers(sched: dict, t: int, x_t: torch.Tensor, x0: torch.Tensor) -> dict:
    """ᾱ_t, SNR (and dB), PSNR of x_t against x0 (peak-to-peak 2, unclipped x_t)."""
    ab = float(sched["alphas_cumprod"][t])
    snr = ab / (1.0 - ab)
    mse = float(torch.mean((x_t - x0) ** 2))
    return {
        "t": t,
        "T": len(sched["alphas_cumprod"]),
        "alpha_bar": ab,
        "signal": math.sqrt(ab),
        "noise": math.sqrt(1.0 - ab),
        "snr": snr,
        "snr_db": 10.0 * math.log10(snr),
        "psnr_db": 10.0 * math.log10(4.0 / mse) if mse > 0 else math.inf,
    }


def numbers_markdown(n: dict) -> str:
    return (
        f"| at t = {n['t']} (of 0…{n['T'] - 1}) | |\n|:--|--:|\n"
        f"| ᾱ<sub>t</sub> | {n['alpha_bar']:.4g} |\n"
        f"| signal √ᾱ<sub>t</sub> | {n['signal']:.4f} |\n"
        f"| noise √(1−ᾱ<sub>t</sub>) | {n['noise']:.4f} |\n"
        f"| SNR = ᾱ/(1−ᾱ) | {n['snr']:.4g} ({n['snr_db']:+.1f} dB) |\n"
        f"| PSNR of x<sub>t</sub> vs x<sub>0</sub> | {n['psnr_db']:.1f} dB |\n"
    )


def _parts(state: dict, sched: dict, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(√ᾱ_t·x0, √(1−ᾱ_t)·ε, x_t) for image 0, each ``[C, H, W]`` (DDPM eq. 4)."""
    x0, eps = state["x0"][0], state["eps"][0]
    signal = float(sched["sqrt_alphas_cumprod"][t]) * x0
    noise = float(sched["sqrt_one_minus_alphas_cumprod"][t]) * eps
    return signal, noise, signal + noise


# ---------------------------------------------------------------------------------------------
# Handlers: image and noise
# ---------------------------------------------------------------------------------------------


def builtin_image(key: str) -> torch.Tensor:
    """One built-in image as ``[C, H, W]`` in [−1, 1]."""
    if key in ("china", "flower"):
        return data.sample_photos(PHOTO_SIZE)[key]
    if key == "digit":
        return data.digit_image(DIGIT_INDEX, size=SMALL_SIZE)
    if key == "gradient":
        return data.make_gradients(1, size=SMALL_SIZE, seed=GRADIENT_SEED)[0]
    raise gr.Error(f"Unknown image {key!r}; choose one of {', '.join(IMAGE_KEYS[:-1])}.")


def _image_state(x0: torch.Tensor, seed, name: str) -> dict:
    x0 = x0.float().unsqueeze(0).contiguous()
    seed = _seed(seed)
    return {"x0": x0, "eps": _draw_eps(x0, seed), "seed": seed, "name": name}


def load_image(choice, upload_path, seed):
    """Image radio → (image state, note Markdown). "upload" reads ``upload_path``."""
    if choice == "upload":
        if not upload_path:
            gr.Warning("Drop an image file into the upload box first.")
            return gr.skip(), "Drop an image file into the upload box below."
        return _load_file(upload_path, seed)
    x0 = builtin_image(choice)
    c, h, w = x0.shape
    label = dict((k, lb) for lb, k in IMAGE_CHOICES)[choice]
    return _image_state(x0, seed, choice), f"{label}: {w}×{h}, {_colour(c)}."


def _colour(channels: int) -> str:
    return "RGB" if channels == 3 else "greyscale"


def _load_file(path, seed):
    try:
        x0, notes = data.load_image_file(path, max_side=PHOTO_SIZE)
    except FileNotFoundError:
        raise gr.Error("The uploaded file is gone; please upload it again.") from None
    except ValueError as e:
        name = Path(str(path)).name  # don't show the server's temp folder
        msg = str(e).replace(str(path), name)
        raise gr.Error(f"“{name}” cannot be used as an image: {msg}") from None
    for n in notes:
        gr.Info(f"Your image: {n}.")
    c, h, w = x0.shape
    note = f"Your image: {w}×{h}, {_colour(c)}"
    note += (" — " + "; ".join(notes) + ".") if notes else "."
    return _image_state(x0, seed, "upload"), note


def load_upload(upload_path, seed):
    """File upload → (image radio value "upload", image state, note)."""
    if not upload_path:
        raise gr.Error("No file received; please upload again.")
    state, note = _load_file(upload_path, seed)
    return "upload", state, note


def set_noise(state, seed):
    """Draw ε for the current image from ``seed`` → new image state."""
    x0, _ = _check_image_state(state)
    seed = _seed(seed)
    return {**state, "eps": _draw_eps(x0, seed), "seed": seed}


def new_noise(seed):
    """The "New noise" button: the next seed (its ``.change`` redraws ε)."""
    try:
        return (int(seed) + 1) % (MAX_SEED + 1)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------------------------------------
# Handlers: schedule
# ---------------------------------------------------------------------------------------------


def _shared_config(shared) -> ScheduleConfig:
    try:
        return ScheduleConfig.from_dict(dict(shared))
    except (TypeError, ValueError) as e:
        raise gr.Error(f"The schedule from tab 1 is not usable ({e}).") from None


def schedule_state(cfg: ScheduleConfig) -> dict:
    """The per-session schedule state: config dict + float64 coefficient arrays."""
    s = core_schedules.NoiseSchedule(cfg)
    return {
        "config": cfg.to_dict(),
        "alphas_cumprod": s.float64["alphas_cumprod"].numpy(),
        "sqrt_alphas_cumprod": s.float64["sqrt_alphas_cumprod"].numpy(),
        "sqrt_one_minus_alphas_cumprod": s.float64["sqrt_one_minus_alphas_cumprod"].numpy(),
    }


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
# Handlers: views
# ---------------------------------------------------------------------------------------------


def show_t(state, sched, t):
    """The slider's fast path → (signal image, noise image, x_t image, histogram, numbers, t).

    The last value is the validated t, kept in a ``gr.State`` mirror that the events not fired
    by the slider itself read instead of the slider (see :func:`resolve_schedule`).
    """
    x0, _ = _check_image_state(state)
    sched = _check_sched_state(sched)
    t = _t_index(t, sched)
    signal, noise, x_t = _parts(state, sched, t)
    nums = frame_numbers(sched, t, x_t, x0[0])
    return (_display(signal), _display(noise), _display(x_t), histogram_figure(x_t),
            numbers_markdown(nums), t)


def strip_frames(state: dict, sched: dict, n: int = STRIP_FRAMES) -> tuple[np.ndarray, list[int]]:
    """x_t at ``n`` evenly spaced t (same ε), side by side → (uint8 strip, the t values).

    Large images are subsampled (every k-th pixel, so the noise keeps its per-pixel spread)
    to ≤ ``STRIP_MAX`` pixels; small ones are enlarged (nearest neighbour) to it.
    """
    x0, eps = state["x0"], state["eps"]
    T = len(sched["alphas_cumprod"])
    ts = np.unique(np.rint(np.linspace(0, T - 1, n)).astype(np.int64))
    k = math.ceil(max(x0.shape[-2:]) / STRIP_MAX)
    x0, eps = x0[0, :, ::k, ::k], eps[0, :, ::k, ::k]
    a = torch.from_numpy(sched["sqrt_alphas_cumprod"][ts]).float().view(-1, 1, 1, 1)
    b = torch.from_numpy(sched["sqrt_one_minus_alphas_cumprod"][ts]).float().view(-1, 1, 1, 1)
    frames = a * x0 + b * eps  # DDPM eq. 4 for every t at once: [n, C, h, w]
    scale = max(1, STRIP_MAX // max(frames.shape[-2:]))
    return images.make_grid(frames, ncols=len(ts), pad=2, scale=scale), [int(t) for t in ts]


def strip_label(ts: list[int]) -> str:
    return "xₜ at t = " + ", ".join(map(str, ts)) + " (same ε)"


def refresh_view(state, sched, t):
    """Everything that depends on the image, ε or the schedule → (x0 image, signal, noise,
    x_t, histogram, numbers, strip gallery)."""
    x0, _ = _check_image_state(state)
    sched = _check_sched_state(sched)
    t_clamped = min(max(int(float(t or 0)), 0), len(sched["alphas_cumprod"]) - 1)
    strip, ts = strip_frames(state, sched)
    return (_display(x0[0]), *show_t(state, sched, t_clamped)[:5],
            gr.update(value=strip, label=strip_label(ts)))


def compare_stats(x_iter: torch.Tensor, x_closed: torch.Tensor, x0: torch.Tensor,
                  alpha_bar: float) -> dict:
    """Pixel statistics of both routes vs theory N(√ᾱ x0, (1−ᾱ) I).

    ``resid_*`` is x_t − √ᾱ x0 (the noise actually added): mean ≈ 0, std ≈ √(1−ᾱ).
    """
    sig = math.sqrt(alpha_bar) * x0
    out = {"theory": {"mean": float(sig.mean()), "resid_mean": 0.0,
                      "resid_std": math.sqrt(1.0 - alpha_bar)}}
    for name, x in (("iterative", x_iter), ("closed", x_closed)):
        r = x - sig
        out[name] = {"mean": float(x.mean()), "resid_mean": float(r.mean()),
                     "resid_std": float(r.std())}
    r1, r2 = (x_iter - sig).flatten(), (x_closed - sig).flatten()
    out["noise_correlation"] = float(torch.corrcoef(torch.stack([r1, r2]))[0, 1])
    out["rms_difference"] = float(torch.sqrt(torch.mean((x_iter - x_closed) ** 2)))
    return out


def _compare_markdown(st: dict, t: int, seconds: float) -> str:
    rows = [("eq. 2, step by step", st["iterative"]), ("eq. 4, closed form", st["closed"]),
            ("theory", st["theory"])]
    lines = ["| | mean of x<sub>t</sub> | mean of x<sub>t</sub> − √ᾱ x<sub>0</sub> "
             "| std of x<sub>t</sub> − √ᾱ x<sub>0</sub> |", "|:--|--:|--:|--:|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['mean']:+.4f} | {r['resid_mean']:+.4f} | "
                     f"{r['resid_std']:.4f} |")
    lines.append("")
    lines.append(
        f"Theory: mean √ᾱ·mean(x<sub>0</sub>), noise std √(1−ᾱ). Same distribution, different "
        f"draws: correlation of the two noise parts {st['noise_correlation']:+.3f}, RMS "
        f"difference between the pictures {st['rms_difference']:.3f} (≈ √(2(1−ᾱ)) = "
        f"{math.sqrt(2) * st['theory']['resid_std']:.3f})."
        f"\n\nThe step-by-step chain ran {t + 1} steps in {seconds:.2f} s (about 1 ms per step "
        f"for a 256×256 RGB image, up to 4 s at T = 4000), so it runs only while this box is "
        f"ticked, and when you release the t slider."
    )
    return "\n".join(lines)


def compare_methods(state, sched, t, enabled):
    """Generator → (compare panel visibility, eq. 2 image, eq. 4 image, statistics Markdown).

    Eq. 2 runs the chain t+1 steps (``forward.q_sample_iterative``, ~1 ms per step for a
    256×256 RGB image), with its own noise seeded from the session seed; eq. 4 uses the
    session's ε (the picture shown above).
    """
    if not enabled:
        yield gr.update(visible=False), gr.skip(), gr.skip(), gr.skip()
        return
    x0, _ = _check_image_state(state)
    sched = _check_sched_state(sched)
    t = _t_index(t, sched)
    yield (gr.update(visible=True), gr.skip(), gr.skip(),
           f"⏳ Running the chain step by step ({t + 1} steps)…")
    schedule = core_schedules.NoiseSchedule(ScheduleConfig.from_dict(sched["config"]))
    g = torch.Generator().manual_seed((int(state["seed"]) + 1_000_003) % (MAX_SEED + 1))
    start = time.perf_counter()
    x_iter = forward.q_sample_iterative(schedule, x0, t, generator=g)[0]  # DDPM eq. 2
    seconds = time.perf_counter() - start
    _, _, x_closed = _parts(state, sched, t)  # DDPM eq. 4, the session's ε
    st = compare_stats(x_iter, x_closed, x0[0], float(sched["alphas_cumprod"][t]))
    yield (gr.update(visible=True), _display(x_iter), _display(x_closed),
           _compare_markdown(st, t, seconds))


# ---------------------------------------------------------------------------------------------
# UI
# ---------------------------------------------------------------------------------------------


def _initial_schedule(shared_schedule: gr.State) -> ScheduleConfig:
    try:
        return ScheduleConfig.from_dict(dict(shared_schedule.value))
    except (TypeError, ValueError):
        return ScheduleConfig(kind="cosine")


def render(shared_schedule: gr.State) -> None:
    """Build the tab inside the caller's ``gr.Tab``; reads ``shared_schedule`` (tab 1's)."""
    cfg = _initial_schedule(shared_schedule)
    t0 = round(0.25 * (cfg.T - 1))
    # The image and schedule states are filled when a browser opens the page (first_view
    # below); their change events then draw the view, as for any later change.
    image_state = gr.State(None)
    sched_state = gr.State(None)
    t_state = gr.State(t0)  # mirror of the slider, written by show_t and resolve_schedule
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=290):
            choice = gr.Dropdown(list(IMAGE_CHOICES), value="china", label="Image x₀")
            upload = gr.UploadButton("Upload your own image…", file_count="single",
                                     type="filepath", size="sm")
            note = gr.Markdown("")
            use_shared = gr.Checkbox(True, label="Use tab 1's primary schedule")
            with gr.Row():
                kind = gr.Dropdown(list(BUILTIN_KINDS), value=cfg.kind, label="schedule",
                                   interactive=False, min_width=110)
                T = gr.Number(cfg.T, label="T", precision=0, minimum=common.T_MIN,
                              maximum=common.T_MAX, interactive=False, min_width=80)
            t = gr.Slider(0, cfg.T - 1, value=t0, step=1, label="t (0 … T−1)")
            with gr.Row():
                seed = gr.Number(0, label="noise seed", precision=0, minimum=0,
                                 maximum=MAX_SEED, min_width=90)
                new_btn = gr.Button("New noise ε", size="sm", min_width=90, scale=0)
            compare_on = gr.Checkbox(
                False, label="Compare eq. 2 (step by step) with eq. 4 (closed form)")
        with gr.Column(scale=3):
            gr.Markdown("Signal part + noise part = xₜ (DDPM eq. 4), both parts at their true "
                        "scale; grey is 0.", elem_classes=["dl-caption"])
            with gr.Row(equal_height=True):
                kw = dict(format="png", height=IMG_HEIGHT, interactive=False,
                          buttons=["download", "fullscreen"], min_width=140)
                img_x0 = gr.Image(None, label="x₀", **kw)
                img_sig = gr.Image(None, label="√ᾱₜ · x₀", **kw)
                img_noise = gr.Image(None, label="√(1−ᾱₜ) · ε", **kw)
                img_xt = gr.Image(None, label="xₜ", **kw)
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=300):
                    hist = gr.Plot(None, show_label=False)
                with gr.Column(scale=2, min_width=240):
                    numbers = gr.Markdown("")
            strip = gr.Image(None, label=f"xₜ at {STRIP_FRAMES} evenly spaced t", format="png",
                             height=150, interactive=False, buttons=["download", "fullscreen"])
            with gr.Column(visible=False) as compare_box:
                with gr.Row(equal_height=True):
                    img_iter = gr.Image(None, label="eq. 2: chain step by step (fresh noise "
                                        "every step)", **kw)
                    img_closed = gr.Image(None, label="eq. 4: closed form (the ε above)", **kw)
                compare_md = gr.Markdown()
            with gr.Accordion("What am I looking at? (equations)", open=False):
                gr.Markdown(EXPLANATION_MD + "\n\n" + common.INDEX_CONVENTION_MD,
                            latex_delimiters=LATEX)

    setup = dict(concurrency_limit=4, concurrency_id="forward_setup", show_progress="hidden")

    def first_view():
        state, text = load_image(IMAGE_CHOICES[0][1], None, 0)
        return state, schedule_state(cfg), text

    common.on_load(first_view, [image_state, sched_state, note], **setup)
    choice.input(load_image, [choice, upload, seed], [image_state, note],
                 api_name="forward_image", **setup)
    upload.upload(load_upload, [upload, seed], [choice, image_state, note],
                  api_name="forward_upload", **setup)
    seed.change(set_noise, [image_state, seed], image_state, api_name="forward_seed",
                trigger_mode="always_last", **setup)
    new_btn.click(new_noise, seed, seed, api_name="forward_new_noise", **setup)
    gr.on(
        triggers=[use_shared.change, kind.input, T.submit, T.blur, shared_schedule.change],
        fn=resolve_schedule,
        inputs=[use_shared, kind, T, shared_schedule, sched_state, t_state],
        outputs=[sched_state, t, kind, T, t_state],
        api_name="forward_schedule", **setup,
    )
    # Moving t only recomputes x_t (fast path: one expression, no schedule rebuild) …
    t.change(show_t, [image_state, sched_state, t],
             [img_sig, img_noise, img_xt, hist, numbers, t_state],
             api_name="forward_frame", concurrency_limit=8, concurrency_id="forward_frame",
             trigger_mode="always_last", show_progress="hidden")
    # … while a new image, ε or schedule redraws the whole view. These events read t from the
    # server-side mirror t_state, never from the slider (see resolve_schedule).
    gr.on(
        triggers=[image_state.change, sched_state.change],
        fn=refresh_view,
        inputs=[image_state, sched_state, t_state],
        outputs=[img_x0, img_sig, img_noise, img_xt, hist, numbers, strip],
        api_name="forward_view", concurrency_limit=8, concurrency_id="forward_view",
        trigger_mode="always_last", show_progress="hidden",
    )
    compare_kw = dict(fn=compare_methods, outputs=[compare_box, img_iter, img_closed, compare_md],
                      concurrency_limit=2, concurrency_id="forward_compare",
                      trigger_mode="always_last", show_progress="minimal")
    gr.on(triggers=[compare_on.change, image_state.change, sched_state.change],
          inputs=[image_state, sched_state, t_state, compare_on], api_name="forward_compare",
          **compare_kw)
    t.release(inputs=[image_state, sched_state, t, compare_on],
              api_name="forward_compare_release", **compare_kw)
