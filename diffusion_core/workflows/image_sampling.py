"""One image sampling run from a checkpoint, UI-free: the image sampler tab and the sample CLI.

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``; t = 0 is one
noising step and ᾱ at t = −1 is 1 (the clean image). The chain starts from x_T ~ N(0, I) at the
first visited t and walks ``(t, t_prev)`` pairs down to t_prev = −1, where x_prev is the sample.
The schedule is always the checkpoint's own: a network only knows the noise levels it was
trained on.

==========================  ===================================================================
name                        what it is
==========================  ===================================================================
:func:`sampler_settings`    a checkpoint's sampler settings: preset → its record → overrides
:func:`initial_noise`       x_T and the generator for a seed (every run here starts with it)
:func:`sample_checkpoint`   N samples in one call, no frames kept (images or 2D points)
:func:`guidance_default`    a class-conditional checkpoint's recorded guidance scale s
:func:`check_guidance`      class labels ``[N]`` and s checked against a checkpoint
:func:`guided_checkpoint`   the checkpoint with its model wrapped in ``GuidedModel(y, s)``
:class:`SamplingRun`        one run's record: kept (x_t, x̂0) frames and their t, timing, files
:func:`stream`              generator: runs the chain, keeps frames, yields :class:`Progress`
:func:`write_files`         the final grid (PNG) and the reverse chain (GIF) of a finished run
==========================  ===================================================================

Frames. A frame is a uint8 grid at scale 1 (1 px white borders) of the first
:data:`FRAME_IMAGES` images: ``[H, W]`` for grey images (one channel saves memory), else
``[H, W, 3]``. A run keeps every step's (x_t, x̂0) when the chain has fewer than
:data:`MAX_FRAMES` steps, else ``MAX_FRAMES − 1`` evenly spaced ones (fewer when they would
exceed :data:`FRAME_BYTES`), and then the final sample (t = −1) beside the last step's x̂0.

Guidance. A run of a class-conditional checkpoint may be guided: class labels ``y [N]`` (one
per sample) and a scale s, ε̃ = ε_u + s·(ε_c − ε_u) (s = 0 the unconditional model, s = 1 the
conditional one, s > 1 guides harder; Ho & Salimans 2022,
:mod:`diffusion_core.sampling.guidance`). The checkpoint's model is wrapped in
:class:`~diffusion_core.sampling.guidance.GuidedModel` for the run; the same x_T and noise
draws as the unguided run of that seed. Without labels a run is exactly what it was before
guidance existed (a conditional network then runs its null class: the unconditional model).

Shapes: images ``[N, C, H, W]`` in [−1, 1]; 2D points ``[N, 2]`` in model coordinates.
Randomness: x_T and every noise draw of a run come from one ``torch.Generator`` seeded with the
run's seed, so a seed gives the same samples in the app, the CLI and the tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import images
from ..checkpoints import Checkpoint
from ..models.pixel_mlp_config import PixelMLPConfig
from ..models.unet_config import UNetConfig
from ..sampling.config import GUIDANCE_DEFAULT, GUIDANCE_MAX, SamplerSettings
from ..sampling.defaults import resolve_sampler_settings
from ..sampling.guidance import GuidedModel
from ..sampling.loop import SampleStep, sample, sample_final
from ..sampling.spacing import evenly_spaced

MAX_FRAMES = 100  # kept frames per run (x_t and x̂0 grids), the final sample included
FRAME_BYTES = 16 * 2**20  # and at most this many bytes of frames per run
FRAME_IMAGES = 64  # frames show at most the first this many images of the batch
GIF_FRAMES = 60  # the GIF shows at most this many of the kept frames
GIF_SIDE = 320  # … each panel about this many pixels wide
# Pictures of the frames are enlarged by an integer factor (nearest neighbour, pixel-exact):
# about DISPLAY_SIDE pixels wide on screen and in the GIF, FILE_SIDE in the PNG of the samples.
DISPLAY_SIDE = 300
FILE_SIDE = 640
MIN_SCALE, MAX_SCALE = 2, 8
PNG_NAME = "samples.png"
GIF_NAME = "reverse_chain.gif"


# ---------------------------------------------------------------------------------------------
# Settings and one-call sampling
# ---------------------------------------------------------------------------------------------


def is_image_model(ck: Checkpoint) -> bool:
    """Whether the checkpoint makes images (a U-Net or a pixel MLP) rather than 2D points."""
    return isinstance(ck.model_config, (UNetConfig, PixelMLPConfig))


def sample_shape(ck: Checkpoint) -> tuple[int, ...]:
    """The shape of one sample: ``(C, H, W)`` for a U-Net, ``(2,)`` for a 2D model."""
    cfg = ck.model_config
    return (cfg.channels, cfg.image_size, cfg.image_size) if is_image_model(ck) else (2,)


def sampler_settings(ck: Checkpoint, overrides: Mapping[str, Any] | None = None
                     ) -> SamplerSettings:
    """The checkpoint's sampler settings: the rule of
    :func:`~diffusion_core.sampling.defaults.resolve_sampler_settings` (preset of the model's
    kind → the ``training["sampler_defaults"]`` it recorded → ``overrides``, where ``None``
    means "not given"). ``steps`` may be ``None`` (the sampler's default; see
    :meth:`SamplerSettings.resolved_steps`). Bad overrides raise ``ValueError``."""
    training = ck.training if isinstance(ck.training, Mapping) else {}
    recorded = training.get("sampler_defaults")
    return resolve_sampler_settings(recorded if isinstance(recorded, Mapping) else None,
                                    overrides, image=is_image_model(ck))


def initial_noise(ck: Checkpoint, n: int, seed: int, *, device: str | torch.device = "cpu"
                  ) -> tuple[torch.Tensor, torch.Generator]:
    """``(x_T [n, *sample_shape], generator)``: x_T ~ N(0, I) drawn first from a generator
    seeded with ``seed``; the chain then draws its noise from the same generator."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of samples must be an integer ≥ 1; got {n!r}")
    g = torch.Generator(device=device).manual_seed(int(seed))
    x_T = torch.randn((n, *sample_shape(ck)), generator=g, device=device)
    return x_T, g


def guidance_default(ck: Checkpoint) -> float:
    """The guidance scale s a class-conditional checkpoint recorded
    (``training["guidance_default"]``, written by the train CLI), else
    :data:`~diffusion_core.sampling.config.GUIDANCE_DEFAULT`."""
    training = ck.training if isinstance(ck.training, Mapping) else {}
    recorded = training.get("guidance_default")
    if (isinstance(recorded, (int, float)) and not isinstance(recorded, bool)
            and math.isfinite(recorded) and 0 <= recorded <= GUIDANCE_MAX):
        return float(recorded)
    return GUIDANCE_DEFAULT


def check_guidance(ck: Checkpoint, labels, scale: float | None, n: int | None = None
                   ) -> tuple[torch.Tensor, float]:
    """``(labels int64 [N], s)`` checked against ``ck``; ``ValueError`` in plain words else.

    ``labels``: one class per sample (a sequence or an integer tensor ``[N]``, ``N = n`` when
    ``n`` is given), each in 0..K−1 for a checkpoint with K classes. ``scale``: s, a finite
    number in [0, :data:`~diffusion_core.sampling.config.GUIDANCE_MAX`]; ``None`` means the
    checkpoint's :func:`guidance_default`.
    """
    k = ck.num_classes
    if k == 0:
        raise ValueError("this checkpoint is unconditional (it was trained without class "
                         "labels): classifier-free guidance needs a class-conditional one")
    if isinstance(labels, torch.Tensor):
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"class labels must be integers; got a {labels.dtype} tensor")
        y = labels.detach().to("cpu", torch.long)
    else:
        if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
            raise ValueError("class labels must be a sequence of integers, one per sample")
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
            raise ValueError("class labels must be integers")
        y = torch.as_tensor([int(v) for v in labels], dtype=torch.long)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"class labels must be one integer per sample [N]; got shape "
                         f"{list(y.shape)}")
    if n is not None and len(y) != n:
        raise ValueError(f"{len(y)} class labels for {n} samples: give one per sample")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"class labels must be in 0..{k - 1} (classes: "
                         f"{', '.join(ck.class_names)}); got values in {lo}..{hi}")
    if scale is None:
        s = guidance_default(ck)
    else:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)):
            raise ValueError(f"the guidance scale s must be a number; got {scale!r}")
        s = float(scale)
        if not math.isfinite(s) or not 0 <= s <= GUIDANCE_MAX:
            raise ValueError(f"the guidance scale s must be a finite number in "
                             f"[0, {GUIDANCE_MAX:g}] (0 = unconditional, 1 = conditional, "
                             f"> 1 guides harder); got {scale!r}")
    return y, s


def guided_checkpoint(ck: Checkpoint, labels: torch.Tensor, scale: float | torch.Tensor
                      ) -> Checkpoint:
    """``ck`` whose model is ``GuidedModel(ck.model, labels, scale)``: an ε-predictor
    ``(x_t, t) → ε̃`` toward class ``labels [N]`` (on the model's device) with s = ``scale``
    (a number, or per-sample ``[N]``). Everything else (schedule, config, records) is
    ``ck``'s; the original checkpoint is unchanged."""
    return replace(ck, model=GuidedModel(ck.model, labels, scale))


def sample_checkpoint(ck: Checkpoint, settings: SamplerSettings, n: int, seed: int, *,
                      device: str | torch.device = "cpu", labels=None,
                      guidance: float | None = None) -> torch.Tensor:
    """``n`` samples ``[n, *sample_shape]`` from ``ck`` (its model already on ``device``),
    with ``settings`` and ``seed``; the same samples as a :func:`stream` run of that seed.

    ``labels [n]`` (and ``guidance``, s; None: :func:`guidance_default`) guide the run toward
    those classes (see the module docstring); without labels it is unguided, as always.
    2D samples are in model coordinates (``data.to_data_coords`` maps them back).
    """
    model = ck.model
    if labels is not None:
        y, s = check_guidance(ck, labels, guidance, n)
        model = GuidedModel(ck.model, y.to(device), s)
    elif guidance is not None:
        raise ValueError("a guidance scale needs class labels (the classes to guide toward)")
    x_T, g = initial_noise(ck, n, seed, device=device)
    return sample_final(model, ck.schedule.to(device), x_T, generator=g,
                        **settings.sample_kwargs(ck.schedule.T))


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------


def grid_scale(n: int, image_size: int, target: int = DISPLAY_SIDE, *,
               ncols: int | None = None) -> int:
    """Integer enlargement that makes a grid of ``n`` images (``ncols`` columns, default
    ⌈√n⌉) about ``target`` pixels wide (between :data:`MIN_SCALE` and :data:`MAX_SCALE`)."""
    ncols = min(n, ncols) if ncols else math.ceil(math.sqrt(n))
    side = ncols * (image_size + 2)
    return max(MIN_SCALE, min(MAX_SCALE, target // side))


def enlarge(grid: np.ndarray, scale: int) -> np.ndarray:
    """Every pixel of a frame becomes a ``scale × scale`` block (nearest neighbour)."""
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)


def frame_grid(x: torch.Tensor, ncols: int | None = None) -> np.ndarray:
    """The scale-1 frame of a batch ``[B, C, H, W]`` (its first :data:`FRAME_IMAGES`) in
    ``ncols`` columns (default ⌈√B⌉); non-finite values are drawn grey (NaN) or clipped
    (±inf)."""
    x = x[:FRAME_IMAGES]
    g = images.make_grid(torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), ncols=ncols,
                         scale=1, pad=1)
    return np.ascontiguousarray(g[..., 0]) if x.shape[1] == 1 else g


def frame_budget(n: int, channels: int, image_size: int, ncols: int | None = None) -> int:
    """Kept frames (x_t and x̂0 grids of ``n`` images in ``ncols`` columns, default ⌈√n⌉),
    the final one included, that fit in :data:`FRAME_BYTES`: between 2 and :data:`MAX_FRAMES`."""
    n = min(n, FRAME_IMAGES)
    ncols = min(n, ncols) if ncols else math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    pair = 2 * (nrows * (image_size + 2)) * (ncols * (image_size + 2)) * (
        1 if channels == 1 else 3)
    return max(2, min(MAX_FRAMES, FRAME_BYTES // pair))


def kept_steps(num_steps: int, max_frames: int) -> frozenset[int]:
    """Step indices whose (x_t, x̂0) are kept: evenly spaced, first and last included.

    ``max_frames`` counts the final sample too, so at most ``max_frames − 1`` steps are kept.
    """
    return frozenset(evenly_spaced(num_steps, max(1, max_frames - 1)))


# ---------------------------------------------------------------------------------------------
# A run
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class SamplingRun:
    """One image sampling run: its plan, then (filled by :func:`stream`) its kept frames.

    ``xt[i]`` and ``x0[i]`` are scale-1 frames (see the module docstring); ``ts[i]`` is the
    timestep of frame i and ``step_of[i]`` its step index (the final sample: t = −1 after the
    last step). ``scale`` is the enlargement of pictures made from the frames (screen, GIF).
    ``final`` is the whole batch of samples ``[N, C, H, W]`` on the CPU once ``done``.
    ``ncols``: the pictures' columns (None: ⌈√N⌉; a run with one row per class sets it).
    Guidance: ``labels`` (int64 ``[N]``, one class per sample) and ``guidance`` (s) when the
    run is guided, both None when not (see the module docstring).
    Times: ``net_s`` in the network and the update so far; ``total_s`` from the chain's start
    to the files written.
    """

    settings: SamplerSettings
    n_images: int
    seed: int
    num_steps: int
    channels: int
    image_size: int
    keep: frozenset[int]
    scale: int
    ncols: int | None = None
    labels: torch.Tensor | None = None
    guidance: float | None = None
    xt: list[np.ndarray] = field(default_factory=list)
    x0: list[np.ndarray] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    step_of: list[int] = field(default_factory=list)
    steps_done: int = 0
    done: bool = False
    final: torch.Tensor | None = None
    nonfinite: int = 0  # images of ``final`` with a NaN or inf
    started: float = float("nan")  # time.perf_counter() when the chain started
    net_s: float = 0.0
    ms_per_step: float = float("nan")
    total_s: float = float("nan")
    out_dir: Path | None = None
    gif: Path | None = None
    png: Path | None = None

    # What running the chain changes: the attributes a worker process sends back
    # (``WorkerPool.iterate(run, method="pictures", args=(ck,), returns=SamplingRun.STATE)``).
    STATE = ("xt", "x0", "ts", "step_of", "steps_done", "done", "final", "nonfinite",
             "started", "net_s", "ms_per_step")

    def chain(self, ck: Checkpoint) -> Iterator[Progress]:
        """:func:`stream` of this run."""
        return stream(ck, self)

    def pictures(self, ck: Checkpoint) -> Iterator[ChainPicture]:
        """:func:`stream` of this run as a view needs it (the form a worker process iterates):
        where the chain is after every step, with the x_t and x̂0 frames
        (:func:`frame_grid`, uint8) at :data:`PICTURES` evenly spaced steps only — not four
        float batches a step (786 KB a step for 64 RGB 16×16 images)."""
        at = frozenset(evenly_spaced(self.num_steps, PICTURES))
        for p in stream(ck, self):
            s = p.step
            shown = s.index in at
            yield ChainPicture(
                index=s.index, num_steps=s.num_steps, t=s.t, t_prev=s.t_prev,
                per_step_s=p.per_step_s, elapsed_s=p.elapsed_s,
                x_t=frame_grid(s.x_t, self.ncols) if shown else None,
                pred_x0=frame_grid(s.pred_x0, self.ncols) if shown else None)

    @classmethod
    def plan(cls, ck: Checkpoint, settings: SamplerSettings, n_images: int, seed: int, *,
             scale: int | None = None, max_frames: int | None = None,
             ncols: int | None = None, labels=None, guidance: float | None = None
             ) -> SamplingRun:
        """A run of ``n_images`` samples from the image checkpoint ``ck`` (nothing sampled yet).

        ``scale`` defaults to :func:`grid_scale` of the shown images; ``max_frames`` to
        :func:`frame_budget` (at least 2: one step and the final sample); ``ncols`` (the
        pictures' columns) to ⌈√N⌉. ``labels [n_images]`` guide the run toward those classes
        with s = ``guidance`` (None: the checkpoint's :func:`guidance_default`), checked by
        :func:`check_guidance`; a scale without labels is refused.
        """
        if not is_image_model(ck):
            raise ValueError("image sampling needs an image model (a U-Net checkpoint)")
        if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
            raise ValueError(f"the number of images must be an integer ≥ 1; got {n_images!r}")
        if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, int)
                                  or ncols < 1):
            raise ValueError(f"ncols must be an integer ≥ 1 or None; got {ncols!r}")
        y = s = None
        if labels is not None:
            y, s = check_guidance(ck, labels, guidance, n_images)
        elif guidance is not None:
            raise ValueError("a guidance scale needs class labels (the classes to guide toward)")
        cfg = ck.model_config
        num_steps = settings.resolved_steps(ck.schedule.T)
        shown = min(n_images, FRAME_IMAGES)
        budget = frame_budget(n_images, cfg.channels, cfg.image_size, ncols)
        if max_frames is not None:
            budget = max(2, min(budget, max_frames))
        return cls(settings=settings, n_images=n_images, seed=int(seed), num_steps=num_steps,
                   channels=cfg.channels, image_size=cfg.image_size,
                   keep=kept_steps(num_steps, budget),
                   scale=(grid_scale(shown, cfg.image_size, ncols=ncols) if scale is None
                          else scale),
                   ncols=ncols, labels=y, guidance=s)

    @property
    def guided(self) -> bool:
        """Whether the run is guided (class labels and a scale)."""
        return self.labels is not None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.xt) + sum(a.nbytes for a in self.x0)

    @property
    def captions(self) -> list[str]:
        """One line per kept frame: its t and step (the last: the final sample)."""
        return [f"t = {t} (step {i + 1} of {self.num_steps})" if t >= 0 else
                "t = −1: the final sample (beside it x̂0 of the last step)"
                for t, i in zip(self.ts, self.step_of, strict=True)]

    def model(self, ck: Checkpoint, device: str | torch.device = "cpu"):
        """The ε-predictor the chain calls: ``ck.model``, or guided toward ``labels``."""
        if self.labels is None:
            return ck.model
        return GuidedModel(ck.model, self.labels.to(device), self.guidance)

    def _keep(self, x_t: torch.Tensor, pred_x0: torch.Tensor, t: int, index: int) -> None:
        self.xt.append(frame_grid(x_t, self.ncols))
        self.x0.append(frame_grid(pred_x0, self.ncols))
        self.ts.append(t)
        self.step_of.append(index)

    def _finish(self, step: SampleStep) -> None:
        final = step.x_prev
        self._keep(final, step.pred_x0, -1, step.index)
        self.final = final.detach().cpu()
        self.nonfinite = int((~torch.isfinite(self.final)).flatten(1).any(dim=1).sum())
        self.ms_per_step = 1000 * self.net_s / self.steps_done
        self.done = True


@dataclass(frozen=True)
class Progress:
    """What :func:`stream` yields after every reverse step.

    ``step`` is the sampler's own record (``x_t``, ``x_prev``, ``pred_x0``, ``t``, ``t_prev``,
    ``index``); ``per_step_s`` the mean seconds per step so far (network + update) and
    ``elapsed_s`` the seconds since the chain started.
    """

    step: SampleStep
    per_step_s: float
    elapsed_s: float


PICTURES = 60  # SamplingRun.pictures: steps that carry the x_t and x̂0 frames (≤ this many)


@dataclass(frozen=True)
class ChainPicture:
    """What :meth:`SamplingRun.pictures` yields after every reverse step: step ``index`` of
    ``num_steps`` (0-based) went from ``t`` to ``t_prev`` (−1: the samples); ``per_step_s`` and
    ``elapsed_s`` as in :class:`Progress`; ``x_t`` and ``pred_x0`` the scale-1 frames
    (:func:`frame_grid`) of the step's input and its x̂0, or None on steps without a picture."""

    index: int
    num_steps: int
    t: int
    t_prev: int
    per_step_s: float
    elapsed_s: float
    x_t: np.ndarray | None
    pred_x0: np.ndarray | None


def stream(ck: Checkpoint, run: SamplingRun, *, device: str | torch.device = "cpu"
           ) -> Iterator[Progress]:
    """Run the reverse chain of ``run`` (planned for ``ck``, its model already on ``device``).

    Keeps the planned frames in ``run`` and yields a :class:`Progress` after every step. On
    the last step (``t_prev == −1``) the run is finished before the yield: the final frame is
    kept, ``run.final`` set and ``run.done`` true. Closing the generator stops the chain (the
    frames kept so far stay in ``run``).
    """
    x_T, g = initial_noise(ck, run.n_images, run.seed, device=device)
    chain = sample(run.model(ck, device), ck.schedule.to(device), x_T, generator=g,
                   **run.settings.sample_kwargs(ck.schedule.T))
    run.started = time.perf_counter()
    try:
        while True:
            t0 = time.perf_counter()
            step = next(chain, None)
            if step is None:
                return
            run.net_s += time.perf_counter() - t0
            run.steps_done = step.index + 1
            if step.index in run.keep:
                run._keep(step.x_t, step.pred_x0, step.t, step.index)
            if step.t_prev == -1:
                run._finish(step)
            yield Progress(step, run.net_s / run.steps_done, time.perf_counter() - run.started)
    finally:
        chain.close()


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def gif_frames(run: SamplingRun) -> list[np.ndarray]:
    """x_t beside x̂0 for ≤ :data:`GIF_FRAMES` evenly spaced kept frames (the final one
    included), enlarged by ``run.scale`` (at most to :data:`GIF_SIDE` pixels per panel).

    Grey images stay one channel (PIL writes them without a slow colour quantisation).
    """
    side = run.xt[0].shape[1]
    scale = max(1, min(run.scale, GIF_SIDE // side))
    frames = []
    for i in evenly_spaced(len(run.xt), GIF_FRAMES):
        a, b = enlarge(run.xt[i], scale), enlarge(run.x0[i], scale)
        gap = np.full((a.shape[0], 4 * scale, *a.shape[2:]), 255, np.uint8)
        frames.append(np.concatenate([a, gap, b], axis=1))
    return frames


def save_gif(run: SamplingRun, path: str | Path) -> Path:
    """The reverse chain of ``run`` (:func:`gif_frames`) as a looping GIF."""
    if not run.xt:
        raise ValueError("the run has no frames yet")
    return images.save_gif(gif_frames(run), path)


def save_png(x: torch.Tensor, path: str | Path, *, scale: int, pad: int | None = None,
             ncols: int | None = None) -> Path:
    """A grid of all of ``x`` ``[N, C, H, W]`` as a PNG in ``ncols`` columns (default ⌈√N⌉):
    each pixel ``scale × scale``, tiles ``pad`` (default ``scale``) pixels apart; NaN drawn
    grey."""
    grid = images.make_grid(torch.nan_to_num(x, nan=0.0), ncols=ncols, scale=scale,
                            pad=scale if pad is None else pad)
    return images.save_png(grid, path)


def file_scale(run: SamplingRun) -> int:
    """The PNG's enlargement: about :data:`FILE_SIDE` pixels wide, never below ``run.scale``."""
    return max(run.scale, grid_scale(run.n_images, run.image_size, FILE_SIDE, ncols=run.ncols))


def write_files(run: SamplingRun, directory: str | Path) -> SamplingRun:
    """Write a finished run's ``samples.png`` and ``reverse_chain.gif`` into ``directory``.

    Sets ``run.out_dir``, ``run.png``, ``run.gif`` and ``run.total_s``; returns ``run``.
    """
    if not run.done or run.final is None:
        raise ValueError("the run has not finished: no files to write")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    run.out_dir = directory
    run.png = save_png(run.final, directory / PNG_NAME, scale=file_scale(run), ncols=run.ncols)
    run.gif = save_gif(run, directory / GIF_NAME)
    run.total_s = time.perf_counter() - run.started
    return run
