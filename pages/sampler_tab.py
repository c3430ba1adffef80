"""Tab 4 — sample images from a pretrained checkpoint and watch the reverse chain.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean image. The chain starts from x ~ N(0, I) at the first visited t and
ends at t = −1 (the sample).

The schedule is the checkpoint's own: a network only knows the noise levels ᾱ_t it was trained
on, so tab 1's schedule (``shared_schedule``) does not apply here and is ignored.

Handlers are plain module-level functions (the sampler is a generator) so tests call them
directly:

=====================  ========================================================================
handler                what it does
=====================  ========================================================================
``list_models``        the checkpoints under ``assets/models/`` (or the untrained demo U-Net)
``model_changed``      the model's summary + card and its recorded sampler settings
``rescan_models``      re-reads ``assets/models/`` (models may appear while the app runs)
``sampler_changed``    DDPM ↔ DDIM: which controls apply, and a sensible number of steps
``run_sampler``        generator: streams x_t and x̂0 grids, keeps ≤ 100 frames, writes GIF/PNG
``run_finished``       after the run ends or is stopped: arms the frame slider
``show_frame``         the frame slider: one kept frame (x_t beside x̂0)
=====================  ========================================================================

Shared state. Loaded checkpoints live in one small process-level LRU (:func:`_load_cached`),
the only object shared between sessions. That is safe because loading is pure (same files ⇒
same weights; the key includes the files' mtimes so a re-trained model is re-read), the model
is in eval mode with ``requires_grad`` off and is only called inside ``torch.inference_mode``
by :func:`diffusion_core.sampling.sample`, and nothing ever writes to it — so concurrent
sessions read the same weights without locks, and a 1–5 MB model is not copied into every
session's ``gr.State``. Everything a user produces (kept frames, output files) lives in their
own ``gr.State`` (a :class:`SamplerRun`).
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np

from diffusion_core import checkpoints, presets
from diffusion_core.models.unet_config import UNetConfig
from diffusion_core.sampling.config import SPACINGS
from pages import common

if TYPE_CHECKING:
    from diffusion_core.checkpoints import Checkpoint

# Imported by the first event that needs them, not while the UI is built (see pages.common).
torch = common.LazyModule("torch")
images = common.LazyModule("diffusion_core.images")
models = common.LazyModule("diffusion_core.models")
samplers = common.LazyModule("diffusion_core.sampling")
core_schedules = common.LazyModule("diffusion_core.schedule")

# ---------------------------------------------------------------------------------------------
# Paths, limits and defaults
# ---------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
ASSETS_MODELS = ROOT / "assets" / "models"
BENCH_PLOT = ROOT / "bench" / "results" / "quality_vs_steps.png"
CARD = "MODEL_CARD.md"

DEMO_KEY = ":demo:"  # ':' never appears in our checkpoint directory names
DEMO_LABEL = "untrained demo U-Net (random weights — shows the mechanics only)"
DEMO_CONFIG = UNetConfig(channels=1, image_size=16, dim=8, dim_mults=(1, 2), groups=4,
                         attn_heads=1, attn_dim_head=8, use_linear_attention=False,
                         use_mid_attention=False)
DEMO_SCHEDULE = presets.DIGITS.schedule  # cosine, T = 1000: what the shipped models use
DEFAULT_SAMPLER = presets.DIGITS.sampler  # DDIM, 25 trailing steps, η = 0, clip x̂0

MAX_IMAGES = 64
DEFAULT_IMAGES = 16
MAX_SEED = 2**31 - 1
MODEL_CACHE_SIZE = 4

MAX_FRAMES = 100  # kept frames per run (x_t and x̂0 grids), the final sample included
FRAME_BYTES = 16 * 2**20  # and at most this many bytes of frames per session
GIF_FRAMES = 60  # the GIF shows at most this many of the kept frames
GIF_SIDE = 320  # … each panel about this many pixels wide
# Grids are enlarged (nearest neighbour, integer factor) so the browser shows them at their
# natural size, pixel-exact: gr.Image never enlarges, and a grid under ~300 px stays clear of
# the image's label overlay in its 380 px box. The PNG download is larger (for slides).
DISPLAY_SIDE = 300
FILE_SIDE = 640
MIN_SCALE, MAX_SCALE = 2, 8
BEAT_S = 0.1  # yield at least this often, so ■ Stop reacts within ~0.1 s (or one step)
MAX_UI_UPDATES = 30  # new pictures at most this many times per run
SLOW_RUN_S = 60.0  # tell the user when a run will take longer than this
IMG_HEIGHT = 380
STATE_TTL_S = 3600  # a session's frames and files are freed an hour after its last run

SAMPLER_CHOICES = [("DDIM", "ddim"), ("DDPM", "ddpm")]
VARIANCE_CHOICES = [("β̃", "beta_tilde"), ("β", "beta")]

LATEX = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
]


# ---------------------------------------------------------------------------------------------
# Models: listing, loading (cached, read-only), describing
# ---------------------------------------------------------------------------------------------


def _describe_config(config: dict) -> str:
    m, d = config["model"], config["dataset"]
    c, s = m.get("channels", "?"), m.get("image_size", "?")
    return f"{d.get('name', '?')} · {c}×{s}×{s}"


def list_models(root: str | Path = ASSETS_MODELS) -> list[tuple[str, str]]:
    """Dropdown choices ``(label, key)`` for every image checkpoint directory under ``root``.

    The key is the directory name. A directory counts when ``read_config`` accepts it (it has
    ``model.safetensors`` and a valid ``config.json``) and it holds a U-Net (2D models belong
    to tab 3). With none, the only choice is the untrained demo U-Net (key :data:`DEMO_KEY`).
    """
    root = Path(root)
    choices: list[tuple[str, str]] = []
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                config = checkpoints.read_config(d)
            except (ValueError, OSError):
                continue  # being written, or not a checkpoint
            if config["model"].get("kind") != "unet":
                continue
            choices.append((f"{d.name} ({_describe_config(config)})", d.name))
    return choices or [(DEMO_LABEL, DEMO_KEY)]


def _models_root() -> Path:
    """Where checkpoints are looked up, read at call time (tests point it at a tmp dir)."""
    return Path(ASSETS_MODELS)


def _stamp(directory: Path) -> tuple:
    """Changes whenever the checkpoint's files change (part of the cache key)."""
    out = []
    for name in ("model.safetensors", "config.json"):
        st = (directory / name).stat()
        out.append((name, st.st_mtime_ns, st.st_size))
    return tuple(out)


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def _load_cached(path: str, stamp: tuple) -> Checkpoint:
    """Load once per (directory, file stamps); see the module docstring for why sharing is safe.

    Callers must treat the result as read-only (never train, move or modify the model).
    """
    del stamp  # only part of the cache key
    ck = checkpoints.load_checkpoint(path)
    ck.model.requires_grad_(False)
    return ck


@functools.lru_cache(maxsize=1)
def _demo_checkpoint() -> Checkpoint:
    """A tiny U-Net with fixed random weights (seed 0) and the image preset's schedule."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = models.build_model(DEMO_CONFIG)
    model.eval().requires_grad_(False)
    return checkpoints.Checkpoint(model=model, model_config=DEMO_CONFIG,
                                  schedule=core_schedules.NoiseSchedule(DEMO_SCHEDULE),
                                  dataset={"name": "none (untrained)"},
                                  training={"sampler_defaults": DEFAULT_SAMPLER.kwargs()})


def load_model(key) -> Checkpoint:
    """The checkpoint for a dropdown key; only keys :func:`list_models` offers are accepted,
    so a client can never make the server load an arbitrary path."""
    if key == DEMO_KEY:
        return _demo_checkpoint()
    root = _models_root()
    if not isinstance(key, str) or key not in {k for _, k in list_models(root)}:
        raise gr.Error(f"Unknown model {key!r}. Reload the page to rescan the model folder "
                       "and pick one from the list.")
    directory = root / key
    try:
        return _load_cached(str(directory), _stamp(directory))
    except (ValueError, OSError) as e:
        raise gr.Error(f"Could not load the model {key!r}: {e}") from None


def _sampler_defaults(ck: Checkpoint) -> dict:
    kw = DEFAULT_SAMPLER.kwargs()
    recorded = ck.training.get("sampler_defaults") if isinstance(ck.training, dict) else None
    if isinstance(recorded, dict):
        kw.update({k: v for k, v in recorded.items() if k in kw})
    T = ck.schedule.T
    if kw["sampler"] not in ("ddpm", "ddim"):
        kw["sampler"] = "ddim"
    steps = kw.get("steps")
    kw["steps"] = T if steps is None else max(1, min(int(steps), T))
    if kw["sampler"] == "ddim" and kw["steps"] == T:
        kw["steps"] = min(DEFAULT_SAMPLER.steps, T)
    if kw["spacing"] not in SPACINGS:
        kw["spacing"] = "trailing"
    return kw


def model_summary_md(key, ck: Checkpoint) -> str:
    """One or two lines: what the model makes, its size, and the schedule it needs."""
    cfg, sch = ck.model_config, ck.schedule_config
    shape = f"{cfg.channels}×{cfg.image_size}×{cfg.image_size}"
    params = models.count_parameters(ck.model) / 1e6
    head = ("⚠ **Untrained demo**: random weights, so the samples stay noise-like (it shows "
            "the mechanics only) · " if key == DEMO_KEY
            else f"**{ck.dataset.get('name', key)}** · ")
    return (f"{head}{shape} · U-Net, {params:.2f} M parameters · trained with "
            f"**{sch.kind}, T = {sch.T}** (t = 0 … {sch.T - 1}).  \n{SCHEDULE_NOTE_MD}")


def model_card_md(key, ck: Checkpoint) -> str:
    """``MODEL_CARD.md`` if the checkpoint has one, else a summary of its config."""
    if key != DEMO_KEY and ck.path is not None and (ck.path / CARD).is_file():
        try:
            return (ck.path / CARD).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    cfg, sch = ck.model_config, ck.schedule_config
    rows = [
        ("data set", ck.dataset.get("name", "?")),
        ("images", f"{cfg.channels} channel(s), {cfg.image_size}×{cfg.image_size}, "
                   "values in [−1, 1]"),
        ("network", f"U-Net, dim {cfg.dim}, levels × {list(cfg.dim_mults)}, "
                    f"{cfg.level_blocks} {cfg.block} block(s) per level and path, "
                    f"{models.count_parameters(ck.model):,} parameters"),
        ("schedule", f"{sch.kind}, T = {sch.T}"),
    ]
    tr = ck.training if isinstance(ck.training, dict) else {}
    for name, label in (("steps", "training steps"), ("wall_time_s", "training time (s)"),
                        ("final_loss", "final loss")):
        if isinstance(tr.get(name), (int, float)):
            rows.append((label, f"{tr[name]:,.4g}"))
    if key == DEMO_KEY:
        rows.append(("weights", "random (seed 0), never trained"))
    lines = "\n".join(f"- **{a}**: {b}" for a, b in rows)
    return "*No model card; from the checkpoint's config:*\n\n" + lines


def model_changed(key):
    """Dropdown change → (summary, card, steps, sampler, η, spacing, variance, clip x̂0).

    The sampler controls are set to the settings the checkpoint recorded (or the image preset).
    """
    ck = load_model(key)
    kw = _sampler_defaults(ck)
    T = ck.schedule.T
    return (
        model_summary_md(key, ck),
        model_card_md(key, ck),
        gr.update(value=kw["steps"], maximum=T),
        kw["sampler"],
        gr.update(value=float(kw["eta"]), interactive=kw["sampler"] == "ddim"),
        kw["spacing"],
        gr.update(value=kw["variance"], interactive=kw["sampler"] == "ddpm"),
        bool(kw["clip_x0"]),
    )


def rescan_models(current):
    """Re-read the model folder; keep the current choice when it is still there."""
    choices = list_models(_models_root())
    keys = [k for _, k in choices]
    return gr.update(choices=choices, value=current if current in keys else keys[0])


def sampler_changed(sampler, key):
    """DDPM: full chain by default, β/β̃ applies. DDIM: 25 steps by default, η applies."""
    if sampler not in ("ddpm", "ddim"):
        raise gr.Error("Sampler must be DDPM or DDIM.")
    T = load_model(key).schedule.T
    steps = T if sampler == "ddpm" else min(DEFAULT_SAMPLER.steps, T)
    return (gr.update(value=steps), gr.update(interactive=sampler == "ddim"),
            gr.update(interactive=sampler == "ddpm"))


# ---------------------------------------------------------------------------------------------
# A run: frames kept in the user's gr.State
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class SamplerRun:
    """One sampling run's kept frames and files (lives in the user's ``gr.State``).

    ``xt[i]`` and ``x0[i]`` are uint8 grids at scale 1 (``[H, W]`` for grey images, else
    ``[H, W, 3]``), enlarged by ``scale`` only when shown; ``captions[i]`` describes frame i.
    The last frame is the final sample (t = −1).
    """

    how: str
    scale: int
    num_steps: int
    n_images: int
    xt: list[np.ndarray] = field(default_factory=list)
    x0: list[np.ndarray] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    steps_done: int = 0
    done: bool = False
    out_dir: Path | None = None
    gif: Path | None = None
    png: Path | None = None
    ms_per_step: float = float("nan")
    total_s: float = float("nan")

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.xt) + sum(a.nbytes for a in self.x0)


def _cleanup(run) -> None:
    """Remove a run's output folder (Gradio has copied the files it served into its cache)."""
    if isinstance(run, SamplerRun) and run.out_dir is not None:
        shutil.rmtree(run.out_dir, ignore_errors=True)


def _out_base() -> Path:
    base = Path(os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir())
    base = base / "diffusion-lab-sampler"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _grid1(x: torch.Tensor) -> np.ndarray:
    """Scale-1 grid (1 px white borders); one channel for grey images to save memory."""
    g = images.make_grid(torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), scale=1, pad=1)
    return np.ascontiguousarray(g[..., 0]) if x.shape[1] == 1 else g


def _show(grid: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge a scale-1 grid by an integer factor (nearest neighbour) → ``[H, W, 3]`` uint8.

    Equal to ``images.make_grid(x, scale=scale, pad=scale)``: every pixel, borders included,
    becomes a scale × scale block, so 16×16 samples stay crisp.
    """
    big = _enlarge(grid, scale)
    if big.ndim == 2:
        big = big[..., None]
    return np.ascontiguousarray(np.broadcast_to(big, (*big.shape[:2], 3)))


def _enlarge(grid: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)


def _display_scale(n: int, image_size: int, target: int = DISPLAY_SIDE) -> int:
    """Integer enlargement that makes a grid of n images about ``target`` pixels wide."""
    ncols = math.ceil(math.sqrt(n))
    side = ncols * (image_size + 2)
    return max(MIN_SCALE, min(MAX_SCALE, target // side))


def _kept_steps(num_steps: int, max_frames: int) -> set[int]:
    """Step indices whose (x_t, x̂0) are kept: evenly spaced, first and last included.

    ``max_frames`` counts the final sample too, so at most ``max_frames − 1`` steps are kept.
    """
    k = max(1, min(num_steps, max_frames - 1))
    return {int(i) for i in np.round(np.linspace(0, num_steps - 1, k))}


def _frame_budget(n: int, channels: int, image_size: int) -> int:
    ncols = math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    pair = 2 * (nrows * (image_size + 2)) * (ncols * (image_size + 2)) * (
        1 if channels == 1 else 3)
    return max(2, min(MAX_FRAMES, FRAME_BYTES // pair))


def _gif_frames(run: SamplerRun) -> list[np.ndarray]:
    """x_t beside x̂0 for ≤ GIF_FRAMES evenly spaced kept frames (the final one included).

    Grey images stay one channel (PIL writes them without a slow colour quantisation).
    """
    side = run.xt[0].shape[1]
    scale = max(1, min(run.scale, GIF_SIDE // side))
    idx = sorted({int(i) for i in np.round(np.linspace(0, len(run.xt) - 1,
                                                        min(GIF_FRAMES, len(run.xt))))})
    frames = []
    for i in idx:
        a, b = _enlarge(run.xt[i], scale), _enlarge(run.x0[i], scale)
        gap = np.full((a.shape[0], 4 * scale, *a.shape[2:]), 255, np.uint8)
        frames.append(np.concatenate([a, gap, b], axis=1))
    return frames


def _validate(sampler, variance, steps, eta, spacing, n_images, seed, T: int):
    if sampler not in ("ddpm", "ddim"):
        raise gr.Error("Sampler must be DDPM or DDIM.")
    if variance not in ("beta_tilde", "beta"):
        raise gr.Error("DDPM variance must be β̃ (beta_tilde) or β (beta).")
    if spacing not in SPACINGS:
        raise gr.Error(f"Spacing must be one of {', '.join(SPACINGS)}.")
    steps = common.number("Steps", T if steps in (None, "") else steps, 1, T, integer=True)
    eta = common.number("η", 0.0 if eta in (None, "") else eta, 0.0, 1.0)
    n_images = common.number("Number of images", n_images, 1, MAX_IMAGES, integer=True)
    seed = common.number("Seed", seed, 0, MAX_SEED, integer=True)
    return sampler, variance, steps, eta, spacing, n_images, seed


def _how(sampler, variance, steps, eta, spacing, clip_x0, T) -> str:
    if sampler == "ddpm":
        var = "β̃" if variance == "beta_tilde" else "β"
        how = f"DDPM, {steps} steps (σ² = {var}"
        how += ")" if steps == T else f", respaced, {spacing})"
    else:
        how = f"DDIM, {steps} steps, η = {eta:g}, {spacing}"
    return how + (", x̂0 clipped" if clip_x0 else "")


def _progress_md(run: SamplerRun, step, elapsed: float, per_step: float) -> str:
    left = per_step * (run.num_steps - step.index - 1)
    return (f"**Step {step.index + 1} / {run.num_steps}** · t = {step.t} → {step.t_prev} · "
            f"{per_step * 1000:.0f} ms/step · {elapsed:.1f} s, ≈ {left:.0f} s left · "
            f"{run.how}")


def _timing_md(run: SamplerRun) -> str:
    return (f"**{run.ms_per_step:.1f} ms per step** (network + update, {run.n_images} "
            f"image{'s' if run.n_images > 1 else ''}) · total **{run.total_s:.2f} s** for "
            f"{run.steps_done} steps, drawing included · {len(run.xt)} frames kept")


def _file_button(path: Path | None, what: str):
    if path is None:
        return gr.update(value=None, interactive=False, label=f"⬇ {what}")
    kb = path.stat().st_size / 1024
    size = f"{kb / 1024:.1f} MB" if kb >= 1024 else f"{kb:.0f} kB"
    return gr.update(value=str(path), interactive=True, label=f"⬇ {what} ({size})")


@common.friendly_errors
def run_sampler(key, sampler, variance, steps, eta, spacing, n_images, seed, clip_x0=True,
                previous=None):
    """Sample ``n_images`` images with the chosen sampler, streaming the reverse chain.

    Yields ``(x_t image, x̂0 image, status Markdown, SamplerRun, frame slider, GIF button,
    PNG button)``. While running: a yield at least every :data:`BEAT_S` s (only the progress
    text in the status line changes, so ■ Stop reacts fast) and new pictures at most about
    :data:`MAX_UI_UPDATES` times. Every step's (x_t, x̂0) is kept when there are ≤ 100 steps,
    else ≤ 100 evenly spaced frames (fewer if they would exceed :data:`FRAME_BYTES`). At the
    end: the final grid (PNG), the animation (GIF) and the timing.
    """
    ck = load_model(key)
    T = ck.schedule.T
    sampler, variance, steps, eta, spacing, n_images, seed = _validate(
        sampler, variance, steps, eta, spacing, n_images, seed, T)
    clip_x0 = bool(clip_x0)
    cfg = ck.model_config
    _cleanup(previous)

    scale = _display_scale(n_images, cfg.image_size)
    run = SamplerRun(how=_how(sampler, variance, steps, eta, spacing, clip_x0, T), scale=scale,
                     num_steps=steps, n_images=n_images)
    keep = _kept_steps(steps, _frame_budget(n_images, cfg.channels, cfg.image_size))
    skip = gr.skip()
    frozen = gr.update(minimum=0, maximum=1, value=0, interactive=False,
                       label="Frame: scrub the reverse chain after a run")
    no_file = (_file_button(None, "GIF"), _file_button(None, "PNG"))

    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn((n_images, cfg.channels, cfg.image_size, cfg.image_size), generator=g)
    chain = samplers.sample(ck.model, ck.schedule, x_T, sampler=sampler, steps=steps, eta=eta,
                            spacing=spacing, variance=variance, clip_x0=clip_x0, generator=g)
    yield (skip, skip, f"Starting: {run.how} …", run, frozen, *no_file)

    start = last_beat = last_ui = time.perf_counter()
    ui_every = BEAT_S
    net_s = 0.0
    step = None
    try:
        while True:
            t0 = time.perf_counter()
            step = next(chain, None)
            if step is None:
                break
            net_s += time.perf_counter() - t0
            run.steps_done = step.index + 1
            if step.index in keep:
                run.xt.append(_grid1(step.x_t))
                run.x0.append(_grid1(step.pred_x0))
                run.captions.append(f"t = {step.t} (step {step.index + 1} of {steps})")
            per_step = net_s / run.steps_done
            if step.index == 0:  # now we know the cost: ≤ MAX_UI_UPDATES pictures per run
                ui_every = max(BEAT_S, per_step * steps / MAX_UI_UPDATES)
            now = time.perf_counter()
            if step.t_prev == -1:
                break
            text = _progress_md(run, step, now - start, per_step)
            if step.index == 0 and per_step * steps > SLOW_RUN_S:
                text += (f"\n\nThis run will take about {per_step * steps / 60:.1f} min on "
                         "this machine; ■ Stop any time, or use DDIM with fewer steps.")
            if now - last_ui >= ui_every:
                last_ui = last_beat = now
                yield (_show(_grid1(step.x_t), scale), _show(_grid1(step.pred_x0), scale),
                       text, run, skip, skip, skip)
            elif now - last_beat >= BEAT_S:
                last_beat = now
                yield skip, skip, text, run, skip, skip, skip
    finally:
        chain.close()

    if step is None:  # cannot happen (steps ≥ 1), but never crash on an empty chain
        raise gr.Error("The sampler produced no steps.")
    final = step.x_prev
    run.xt.append(_grid1(final))
    run.x0.append(_grid1(step.pred_x0))
    run.captions.append("t = −1: the final sample (beside it x̂0 of the last step)")
    run.out_dir = Path(tempfile.mkdtemp(prefix="run-", dir=_out_base()))
    file_scale = max(scale, _display_scale(n_images, cfg.image_size, FILE_SIDE))
    final_file = images.make_grid(torch.nan_to_num(final, nan=0.0), scale=file_scale,
                                  pad=file_scale)
    run.png = images.save_png(final_file, run.out_dir / "samples.png")
    run.gif = images.save_gif(_gif_frames(run), run.out_dir / "reverse_chain.gif")
    run.total_s = time.perf_counter() - start
    run.ms_per_step = 1000 * net_s / run.steps_done
    run.done = True
    bad = int((~torch.isfinite(final)).flatten(1).any(dim=1).sum())
    text = f"✓ Done: {n_images} image{'s' if n_images > 1 else ''}, {run.how}, seed {seed}."
    if bad:
        text += f" ⚠ {bad} image(s) contain NaN/inf (shown grey): the model is broken."
    last = len(run.xt) - 1
    yield (_show(run.xt[-1], scale), _show(run.x0[-1], scale), text + "  \n" + _timing_md(run), run,
           gr.update(minimum=0, maximum=last, value=last, interactive=True,
                     label=f"Frame (0 … {last}): scrub the reverse chain"),
           _file_button(run.gif, "GIF"), _file_button(run.png, "PNG"))


def run_finished(run, text):
    """After ▶ Sample ends or is stopped (``.then``): arm the slider on the frames kept so far.

    Returns ``(frame slider, status Markdown, x_t image, x̂0 image)``; after a stop the
    images show the last kept frame (after success they are already the final ones).
    """
    skip = gr.skip()
    if not isinstance(run, SamplerRun) or not run.xt:
        return gr.update(interactive=False), text, skip, skip
    last = len(run.xt) - 1
    slider = gr.update(minimum=0, maximum=max(last, 1), value=last, interactive=last > 0,
                       label=f"Frame (0 … {last}): scrub the reverse chain")
    if run.done:
        return slider, text, skip, skip
    return (slider,
            f"■ Stopped after step {run.steps_done} / {run.num_steps}. The slider scrubs the "
            f"{len(run.xt)} frames kept so far; no files were written.",
            _show(run.xt[-1], run.scale), _show(run.x0[-1], run.scale))


def show_frame(run, index):
    """Frame slider → ``(x_t image, x̂0 image, status Markdown)`` of kept frame ``index``.

    The status line gives the frame's t and, after a finished run, the timing.
    """
    if not isinstance(run, SamplerRun) or not run.xt:
        raise gr.Error("Press ▶ Sample first; then the slider scrubs the reverse chain.")
    last = len(run.xt) - 1
    i = common.number("Frame", index, 0, max(last, 0), integer=True)
    text = f"Frame {i} / {last} · {run.captions[i]}"
    if run.done:
        text += "  \n" + _timing_md(run)
    return _show(run.xt[i], run.scale), _show(run.x0[i], run.scale), text


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

SCHEDULE_NOTE_MD = (
    "<small>Sampling uses that schedule: a model only works with the noise levels it was "
    "trained on, so tab 1's schedule is not used here.</small>"
)

EXPLANATION_MD = r"""
**What you see.** Left: $x_t$, the batch of images on its way from pure noise
$x \sim \mathcal N(0, I)$ at the first visited step to the sample. Right: $\hat x_0$, the
network's current guess of the clean images, from its noise prediction
$\hat\varepsilon = \varepsilon_\theta(x_t, t)$ (DDPM eq. 4 solved for $x_0$; DDIM eq. 12's
"predicted $x_0$"):

$$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}}.$$

Early on $\hat x_0$ is a blurry average; it sharpens as t falls. *Clip $\hat x_0$* clamps it to
the data range $[-1, 1]$ in every step (images only).

**DDPM** (Ho et al. 2020, Algorithm 2). Each step draws $z\sim\mathcal N(0, I)$ and sets
$x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z$ with the mean of eq. 11

$$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}
\,\hat\varepsilon\Big)$$

and $\sigma_t^2 = \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t$ or
$\sigma_t^2 = \beta_t$; no noise is added in the last step. With clipping the code uses the
posterior mean of eq. 7, $\tilde\mu_t(x_t, \hat x_0)$ (equal to eq. 11 for an unclipped
$\hat x_0$), with the clipped $\hat x_0$. With
fewer steps than T it jumps between visited steps $t \to t'$ with
$\beta' = 1 - \bar\alpha_t/\bar\alpha_{t'}$ (respaced, as in improved-diffusion).

**DDIM** (Song et al. 2020, eq. 12) visits only the chosen steps $t \to t'$:

$$x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\varepsilon
+ \sigma z,\qquad \sigma = \eta\sqrt{\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}
\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_{t'}}}\ \text{(eq. 16)}.$$

**η** sets how much fresh noise each step adds: η = 0 is deterministic (the same $x_T$ always
gives the same image, and big jumps work: tens of steps instead of T), η = 1 on the full
chain is DDPM's $\tilde\beta$.

**Spacing** (which t are visited, k = T // steps): *leading* 0, k, 2k, … (starts below T−1);
*trailing* round(T − i·T/steps) − 1 (always starts at T−1, pure noise); *linspace* evenly from
T−1 to 0.

**Why the model's own schedule?** The network was trained on $x_t = \sqrt{\bar\alpha_t}x_0 +
\sqrt{1-\bar\alpha_t}\varepsilon$ with its schedule's ᾱₜ. Sampled with another schedule, the
noise level it is told (t) no longer matches the noise in $x_t$, and it denoises wrongly.

Steps are numbered t = 0 … T−1; the chain ends at t′ = −1, where $\bar\alpha_{-1} = 1$
(the clean image).
"""


# ---------------------------------------------------------------------------------------------
# Layout and events
# ---------------------------------------------------------------------------------------------


def render(shared_schedule: gr.State) -> None:
    """Build the tab (inside the caller's ``gr.Tab``).

    ``shared_schedule`` is deliberately unused: a checkpoint only works with its own schedule.
    """
    del shared_schedule
    choices = list_models(_models_root())
    key0 = choices[0][1]
    # Placeholders until the page loads: first_view (below) loads the model (torch) and sets
    # the card and the sampler controls from it, exactly as choosing it in the list does.
    kw0 = DEFAULT_SAMPLER.kwargs()
    T0 = DEMO_SCHEDULE.T
    run_state = gr.State(None, time_to_live=STATE_TTL_S, delete_callback=_cleanup)

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=330):
            model = gr.Dropdown(choices, value=key0, label="Pretrained model")
            info = gr.Markdown("", elem_classes=["dl-health"])
            with gr.Row(equal_height=True):
                sampler = gr.Radio(SAMPLER_CHOICES, value=kw0["sampler"], label="Sampler",
                                   scale=3, min_width=190)
                clip_x0 = gr.Checkbox(bool(kw0["clip_x0"]), label="clip x̂0", scale=2,
                                      min_width=100)
            with gr.Row():
                steps = gr.Number(kw0["steps"], label="Steps", precision=0, minimum=1,
                                  maximum=T0, min_width=80)
                eta = gr.Number(float(kw0["eta"]), label="η (DDIM)", minimum=0, maximum=1,
                                step=0.1, min_width=80, interactive=kw0["sampler"] == "ddim")
                variance = gr.Dropdown(VARIANCE_CHOICES, value=kw0["variance"],
                                       label="σ² DDPM", min_width=80,
                                       interactive=kw0["sampler"] == "ddpm")
            with gr.Row():
                spacing = gr.Dropdown(list(SPACINGS), value=kw0["spacing"],
                                      label="Spacing", min_width=110, scale=5)
                n_images = gr.Number(DEFAULT_IMAGES, label="Images", precision=0,
                                     minimum=1, maximum=MAX_IMAGES, min_width=70, scale=4)
                seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED,
                                 min_width=70, scale=4)
            with gr.Row():
                run_btn = gr.Button("▶ Sample", variant="primary", min_width=80)
                stop_btn = gr.Button("■ Stop", variant="stop", min_width=80)

        with gr.Column(scale=5):
            with gr.Row(equal_height=True):
                kw = dict(format="png", height=IMG_HEIGHT, interactive=False,
                          buttons=["download", "fullscreen"], min_width=200,
                          elem_classes=["dl-pixel"])
                img_xt = gr.Image(None, label="xₜ — the chain now (last: the samples)", **kw)
                img_x0 = gr.Image(None, label="x̂₀ — predicted clean images",
                                  **kw)
            with gr.Row(equal_height=True):
                frame = gr.Slider(0, 1, value=0, step=1, interactive=False, scale=4,
                                  label="Frame: scrub the reverse chain after a run")
                gif_btn = gr.DownloadButton("⬇ GIF", interactive=False, size="sm", scale=1,
                                            min_width=110)
                png_btn = gr.DownloadButton("⬇ PNG", interactive=False, size="sm", scale=1,
                                            min_width=110)
            status = gr.Markdown(f"Press ▶ Sample to watch noise turn into images (up to "
                                 f"{MAX_IMAGES} at once).", elem_classes=["dl-health"])
            with gr.Accordion("Model card", open=False):
                card = gr.Markdown("", latex_delimiters=LATEX)
            if BENCH_PLOT.is_file():
                with gr.Accordion("How many steps do I need?", open=False):
                    gr.Image(str(BENCH_PLOT), format="png", interactive=False,
                             show_label=False, buttons=["fullscreen"])
            with gr.Accordion("How this works: DDPM eq. 11, DDIM eq. 12, x̂0 and η",
                              open=False):
                gr.Markdown(EXPLANATION_MD, latex_delimiters=LATEX)

    # --- events -------------------------------------------------------------------------------
    cheap = dict(concurrency_limit=8, show_progress="hidden")
    model_outputs = [info, card, steps, sampler, eta, spacing, variance, clip_x0]
    model.change(model_changed, model, model_outputs, api_name="sampler_model",
                 concurrency_id="sampler_model", **cheap)
    common.on_load(functools.partial(model_changed, key0), model_outputs,
                   concurrency_id="sampler_model", **cheap)
    # On every page load: models trained since the app started appear in the list.
    gr.on(None, functools.partial(rescan_models, key0), None, model,
          api_name="sampler_rescan", concurrency_id="sampler_model", **cheap)
    sampler.input(sampler_changed, [sampler, model], [steps, eta, variance],
                  api_name="sampler_kind", concurrency_id="sampler_model", **cheap)

    run_event = run_btn.click(
        run_sampler,
        [model, sampler, variance, steps, eta, spacing, n_images, seed, clip_x0, run_state],
        [img_xt, img_x0, status, run_state, frame, gif_btn, png_btn],
        api_name="sampler_run", concurrency_limit=2, concurrency_id="sampler_heavy",
        trigger_mode="once", show_progress="minimal",
    )
    # .then fires after success and after ■ Stop (not after a gr.Error).
    run_event.then(run_finished, [run_state, status], [frame, status, img_xt, img_x0],
                   api_name="sampler_run_finished", concurrency_id="sampler_frame", **cheap)
    stop_btn.click(None, None, None, cancels=[run_event], api_name="sampler_stop",
                   queue=False)
    frame.input(show_frame, [run_state, frame], [img_xt, img_x0, status],
                api_name="sampler_frame", concurrency_id="sampler_frame",
                trigger_mode="always_last", **cheap)
