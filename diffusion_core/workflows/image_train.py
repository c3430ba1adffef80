"""Train an image model live (the app's image-training tab), UI-free.

Index convention: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``; t = 0 is one
noising step and ᾱ at t = −1 is 1 (the clean image). Images are float32 ``[N, C, H, W]`` in
[−1, 1].

One learner's model: a data set (a registry set or their own images), a network (the
colour-gradient tutorial's pixel MLP or our U-Net at two sizes), a schedule and a recipe
(:mod:`diffusion_core.presets`),
trained by the same :class:`~diffusion_core.training.Trainer` as the CLI. While it trains the
tab shows a *panel* every few seconds (what the colour-gradient tutorial logs as it trains):

(a) a fixed batch of training images noised to a spread of t (DDPM eq. 4),
(b) the network's reconstruction of each, x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t (eq. 4 solved for
    x0, with ε̂ from the EMA weights: the model that is sampled),
(c) samples from the EMA weights by a short DDIM run (Song et al. 2020, eq. 12), from the same
    x_T every time, so the learner watches the same noise turn into digits.

==========================  ===================================================================
name                        what it is
==========================  ===================================================================
:func:`load_images`         a registry set (cached) or the user's image files / zip → ImageSet
:func:`model_config`        the network of a model kind for images of a given shape
:func:`train_config`        the recipe's optimiser settings (steps may be overridden)
:class:`ImageTrainSession`  one learner's data, schedule, network and trainer; ``train``
                            streams :class:`~diffusion_core.training.TrainProgress`, ``panel``
                            gives a :class:`TrainPanel`, ``to_checkpoint`` writes the usual
                            safetensors + JSON checkpoint (with a short model card)
:func:`start_or_continue`   the restart rule: same data, network and schedule continue the
                            model; anything else starts a new one
:func:`fit_batch`           the recipe's batch, halved until a training step lets ■ Stop
                            react within about a second
==========================  ===================================================================

Nothing here imports gradio or plotly; the loop is a plain generator of ``TrainProgress`` with
no UI objects inside, so a caller may run it in a worker process.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from .. import checkpoints, presets
from ..data.files import load_image_files, load_image_zip
from ..data.imageset import ImageSet
from ..data.registry import IMAGE_DATASETS, load_image_dataset
from ..forward import pred_x0_from_eps, q_sample
from ..models.build import build_model, count_parameters
from ..models.pixel_mlp_config import PixelMLPConfig
from ..models.unet_config import UNetConfig
from ..sampling.config import SamplerSettings
from ..sampling.loop import sample
from ..schedule.config import ScheduleConfig
from ..schedule.noise_schedule import NoiseSchedule
from ..training.config import TrainConfig
from ..training.trainer import Trainer, TrainProgress
from .remote import RemoteRun, WorkerLost, WorkerPool, travels

__all__ = [
    "DATASETS", "MODEL_KINDS", "PANEL_IMAGES", "RECIPES", "UPLOAD", "ImageTrainSession",
    "TrainPanel", "fit_batch", "load_images", "model_config", "start_or_continue",
    "train_config",
]

UPLOAD = "upload"  # the data-set name of the user's own images
DATASETS: tuple[str, ...] = ("digits8", "digits", "gradients", "shapes", UPLOAD)
UPLOAD_SIZES: tuple[int, ...] = (16, 32)
MODEL_KINDS: tuple[str, ...] = ("pixel_mlp", "unet_small", "unet_medium")
RECIPES: tuple[str, ...] = ("quick", "default")  # presets.RECIPES, the app's one first
MAX_UPLOAD_IMAGES = 2000  # the user's images per data set

PIXEL_MLP_HIDDEN = 512  # the tutorial's width (bench/image_time_to_quality.py's baseline)

PANEL_IMAGES = 8  # images per panel row
PANEL_SAMPLER = SamplerSettings(sampler="ddim", steps=10, eta=0.0, spacing="trailing",
                                clip_x0=True)
PANEL_SEED = 0

MAX_STEP_S = 1.0  # one training step must fit inside ■ Stop's reaction time (estimated)
MIN_BATCH = 16  # fit_batch halves a recipe's batch down to this for big images
# Counted flops (torch's counter) per second of a training step on one core: measured at the
# quick recipe's batch 128, one thread, on the shared 2-vCPU machine at load ≈ 6 (min of 4
# steps), estimate / measured = 0.65–1.2 over the three networks at 1×8×8 … 3×32×32 (the U-Nets
# at 16×16: ≈ 0.7 s a step; at 3×32×32: ≈ 2.2–2.5 s, so their batch is cut to 32 there).
STEP_FLOPS_PER_S = 5e10


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _registry_set(name: str) -> ImageSet:
    """A registry set as the train CLI loads it (``--dataset name``): read-only, shared."""
    return load_image_dataset(name)


def load_images(dataset: str, *, files: Sequence[str | Path] = (), size: int = 16,
                channels: int = 1) -> tuple[ImageSet, dict, str]:
    """``(images, description, message)`` for ``dataset``: a name in :data:`DATASETS`.

    A registry set is exactly what ``python -m diffusion_core.train --dataset NAME`` trains on
    (cached per process; callers must not modify it). :data:`UPLOAD` reads the user's
    ``files``: one ``.zip`` of images (:func:`~diffusion_core.data.files.load_image_zip`), or
    several image files (:func:`~diffusion_core.data.files.load_image_files`), each
    centre-cropped and resized to ``size`` × ``size`` (16 or 32) with ``channels`` (1 grey,
    3 RGB). The description is what ``config.json`` records under ``"dataset"`` (for an upload
    with a digest of the images, so the same upload continues the same model); the message
    says in plain words what was loaded and skipped. ``ValueError`` in plain words for an
    unknown set, no files, a zip mixed with other files, or no images among them.
    """
    if dataset in IMAGE_DATASETS:
        data = _registry_set(dataset)
        c, h, w = data.shape
        return data, {"name": dataset, "kind": "image", "n": len(data),
                      "shape": list(data.shape)}, f"{len(data):,} images, {c}×{h}×{w}"
    if dataset != UPLOAD:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    if size not in UPLOAD_SIZES:
        raise ValueError(f"image size must be one of {', '.join(map(str, UPLOAD_SIZES))}; "
                         f"got {size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour); got {channels!r}")
    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("no images uploaded: add several image files or one .zip of images")
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    if zips and len(paths) > 1:
        raise ValueError("upload either one .zip of images or several image files, not both")
    if zips:
        data = load_image_zip(zips[0], size=size, channels=channels,
                              max_images=MAX_UPLOAD_IMAGES)
    else:
        data = load_image_files(paths, size=size, channels=channels,
                                max_images=MAX_UPLOAD_IMAGES)
    digest = hashlib.sha1(data.images.numpy().tobytes()).hexdigest()[:12]
    return (ImageSet(data.images, None, UPLOAD),
            {"name": UPLOAD, "kind": "image", "n": len(data), "shape": list(data.shape),
             "source": "the learner's own images", "digest": digest}, data.message)


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------


def _preset(dataset: str, recipe: str) -> presets.Preset:
    """The preset of ``recipe`` for ``dataset`` (user images: the digits-sized one)."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}; got {recipe!r}")
    return presets.preset_for(dataset, image=True, recipe=recipe)


def model_config(kind: str, channels: int, size: int, T: int, *, dataset: str | None = None,
                 recipe: str = "quick") -> PixelMLPConfig | UNetConfig:
    """The network of model ``kind`` (:data:`MODEL_KINDS`) for ``channels`` × ``size`` ×
    ``size`` images and a schedule of ``T`` steps.

    ``"pixel_mlp"``: the colour-gradient tutorial's MLP (flattened pixels and t/T →
    Linear–ReLU–Linear, :data:`PIXEL_MLP_HIDDEN` wide) — or, where ``recipe``'s preset for
    ``dataset`` is itself a pixel MLP (the quick colour-gradients recipe: 1,024 wide with a
    sinusoidal t), that one, so the tab trains exactly what the train CLI does.
    ``"unet_small"``: the quick recipe's U-Net for 8×8 digits (``presets.QUICK_DIGITS8``: two
    levels, 0.47 M parameters at 1 channel), so the tab's default (8×8 digits, U-Net small,
    quick) trains exactly ``python -m diffusion_core.train --dataset digits8 --preset quick``.
    ``"unet_medium"``: the shipped models' U-Net (``presets.DIGITS``: three levels, 1.09 M
    parameters). The two sizes are the same for every data set; the recipe sets only the
    optimiser.
    """
    if kind == "pixel_mlp":
        mlp = PixelMLPConfig(channels=channels, image_size=size, hidden=PIXEL_MLP_HIDDEN,
                             time_embedding="scalar", num_timesteps=T)
        own = _preset(dataset, recipe).model if dataset is not None else None
        if isinstance(own, PixelMLPConfig):
            mlp = replace(mlp, hidden=own.hidden, time_embedding=own.time_embedding)
        return mlp
    if kind in ("unet_small", "unet_medium"):
        base = presets.QUICK_DIGITS8 if kind == "unet_small" else presets.DIGITS
        return replace(base.model, channels=channels, image_size=size)
    raise ValueError(f"model must be one of {', '.join(MODEL_KINDS)}; got {kind!r}")


def train_config(dataset: str, recipe: str = "quick", *, steps: int | None = None
                 ) -> TrainConfig:
    """The optimiser settings of ``recipe`` for ``dataset`` (user images: the digits recipe),
    with ``steps`` when given, reporting after every step (the tab's progress and ■ Stop)."""
    cfg = replace(_preset(dataset, recipe).train, report_every=1)
    return cfg if steps is None else replace(cfg, steps=steps)


def sampler_defaults(dataset: str, recipe: str = "quick") -> SamplerSettings:
    """The sampler settings a checkpoint of this recipe records (tab 4's defaults)."""
    return _preset(dataset, recipe).sampler


def step_seconds(model_cfg: PixelMLPConfig | UNetConfig, batch_size: int) -> float:
    """Estimated seconds of one training step on one core (forward + backward ≈ 3 × the
    forward's multiply-adds, counted on a probe batch of one)."""
    return 3.0 * batch_size * _forward_flops(model_cfg) / STEP_FLOPS_PER_S


@functools.lru_cache(maxsize=32)
def _forward_flops(model_cfg: PixelMLPConfig | UNetConfig) -> float:
    """Multiply-adds × 2 of one image's forward pass, counted with torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.random.fork_rng(devices=[]):
        net = build_model(model_cfg)
    x = torch.zeros(1, model_cfg.channels, model_cfg.image_size, model_cfg.image_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, torch.zeros(1, dtype=torch.long))
    return float(counter.get_total_flops())


def fit_batch(model_cfg: PixelMLPConfig | UNetConfig, batch_size: int) -> int:
    """The recipe's ``batch_size``, halved until a training step fits :data:`MAX_STEP_S`
    (estimated by :func:`step_seconds`), at least :data:`MIN_BATCH`; ``ValueError`` in plain
    words when even that is too slow (so ■ Stop always reacts within about a second)."""
    batch = batch_size
    while step_seconds(model_cfg, batch) > MAX_STEP_S and batch > MIN_BATCH:
        batch = max(MIN_BATCH, batch // 2)
    seconds = step_seconds(model_cfg, batch)
    if seconds > MAX_STEP_S:
        s = model_cfg.image_size
        raise ValueError(
            f"This network on {model_cfg.channels}×{s}×{s} images is too big for this CPU: "
            f"one step of {batch} images would take about {seconds:.1f} s. Choose a smaller "
            "model or smaller images.")
    return batch


# ---------------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrainPanel:
    """What the network makes of a fixed batch now (see the module docstring).

    ``t [n]`` is the timestep of each column of rows (a) and (b), increasing left to right;
    ``x0``, ``x_t`` (eq. 4 with the fixed ``eps``), ``pred_eps`` (ε̂ of the EMA weights),
    ``pred_x0`` (x̂0 from ε̂, unclipped) and ``samples`` (row c, DDIM from the fixed x_T) are
    ``[n, C, H, W]`` float32 on the CPU. ``step`` is the trainer's step count; ``seconds``
    what the panel took.
    """

    step: int
    t: tuple[int, ...]
    alpha_bar: tuple[float, ...]
    x0: torch.Tensor
    eps: torch.Tensor
    x_t: torch.Tensor
    pred_eps: torch.Tensor
    pred_x0: torch.Tensor
    samples: torch.Tensor
    sampler: SamplerSettings
    seconds: float


@travels
def _panel(trainer: Trainer, n: int, seed: int, settings: SamplerSettings) -> TrainPanel:
    """:meth:`ImageTrainSession.panel`'s computation, wherever ``trainer`` lives (a worker
    process mid-run): the batch from ``trainer.data [N, C, H, W]``, its schedule and EMA
    weights. Reads the trainer, changes nothing."""
    start = time.perf_counter()
    schedule, data, T = trainer.schedule, trainer.data, trainer.schedule.T
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=g)[:n]
    x0 = data[idx]
    if len(x0) < n:  # a tiny upload: repeat its images
        x0 = x0.repeat((n + len(x0) - 1) // len(x0), 1, 1, 1)[:n]
    eps = torch.randn(x0.shape, generator=g)
    ts = panel_timesteps(T, n)
    t = torch.tensor(ts, dtype=torch.long)
    x_t = q_sample(schedule, x0, t, eps)  # eq. (4)
    x_T = torch.randn(x0.shape, generator=g)
    model = trainer.sampling_model()
    with torch.inference_mode():
        pred_eps = model(x_t, t)
        pred_x0 = pred_x0_from_eps(schedule, x_t, t, pred_eps)  # eq. (4) for x0
        x = x_T
        for s in sample(model, schedule, x_T, generator=g,
                        **settings.sample_kwargs(T)):  # DDIM eq. (12), streamed
            x = s.x_prev
    ab = schedule.float64["alphas_cumprod"][t]
    return TrainPanel(step=trainer.step, t=ts, alpha_bar=tuple(float(a) for a in ab), x0=x0,
                      eps=eps, x_t=x_t, pred_eps=pred_eps.clone(), pred_x0=pred_x0.clone(),
                      samples=x.clone(), sampler=settings, seconds=time.perf_counter() - start)


def panel_timesteps(T: int, n: int) -> tuple[int, ...]:
    """``n`` timesteps spread over 0..T−1, increasing: the centres of n equal bins."""
    return tuple(min(T - 1, int((i + 0.5) * T / n)) for i in range(n))


@dataclass(eq=False)
class ImageTrainSession:
    """One learner's image model and what is needed to look at it.

    ``data`` is the training set (``[N, C, H, W]`` in [−1, 1]), ``dataset`` its description for
    ``config.json``; ``losses`` every step's batch loss since the model was created;
    ``train_seconds`` the wall time of the training runs; ``runs`` the ▶ Train presses
    (:func:`start_or_continue`); ``uid`` names this model (a new model gets a new one).
    """

    data: ImageSet
    dataset: dict
    model_kind: str
    recipe: str
    model_config: PixelMLPConfig | UNetConfig
    schedule_config: ScheduleConfig
    schedule: NoiseSchedule
    trainer: Trainer
    sampler: SamplerSettings
    losses: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    runs: int = 0
    uid: str = field(default_factory=lambda: secrets.token_hex(4))

    @classmethod
    def create(cls, data: ImageSet, dataset: dict, model_kind: str,
               schedule_config: ScheduleConfig, train_cfg: TrainConfig, *,
               recipe: str = "quick") -> ImageTrainSession:
        """A fresh network for ``data``; ``ValueError`` for settings that do not fit.

        The initial weights depend only on ``train_cfg.seed`` (the global torch RNG is left as
        it was).
        """
        if len(data) < 1:
            raise ValueError("the data set has no images")
        c, h, w = data.shape
        if h != w:
            raise ValueError(f"images must be square; got {h}×{w}")
        model_cfg = model_config(model_kind, c, h, schedule_config.T,
                                 dataset=dataset.get("name", UPLOAD), recipe=recipe)
        schedule = NoiseSchedule(schedule_config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train_cfg.seed)
            network = build_model(model_cfg)
        trainer = Trainer(network, schedule, data.images, train_cfg)
        return cls(data=data, dataset=dict(dataset), model_kind=model_kind, recipe=recipe,
                   model_config=model_cfg, schedule_config=schedule_config, schedule=schedule,
                   trainer=trainer,
                   sampler=sampler_defaults(dataset.get("name", UPLOAD), recipe))

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def step(self) -> int:
        """Training steps done in total (every press)."""
        return self.trainer.step

    @property
    def model(self) -> torch.nn.Module:
        """The ε-predictor to look at and sample from: the EMA copy when EMA is on."""
        return self.trainer.sampling_model()

    @property
    def parameters(self) -> int:
        return count_parameters(self.trainer.model)

    def recent_loss(self, n: int = 50) -> float:
        """Mean of the last ``n`` step losses (NaN before the first step)."""
        recent = self.losses[-n:]
        return sum(recent) / len(recent) if recent else float("nan")

    def train(self, steps: int | None = None, *, pool: WorkerPool | None = None
              ) -> Iterator[TrainProgress]:
        """Train ``steps`` more steps (default: the trainer's ``config.steps``), yielding the
        trainer's reports after recording their losses and time. Closing the generator (■ Stop)
        stops at once; the model keeps what it learned. ``TrainingDiverged`` propagates, the
        model keeping its last good weights.

        With a ``pool`` the steps are computed in one of its worker processes
        (:mod:`~diffusion_core.workflows.remote`), with the same result: the weights here are
        updated when the run ends (the step count and per-t loss after every report), and
        :meth:`panel` is drawn by the worker from its live weights meanwhile. If
        the worker dies, :class:`~diffusion_core.workflows.remote.WorkerLost` propagates and
        the model is as it was before the run.
        """
        run = self.trainer.run(steps) if pool is None else pool.train(self.trainer, steps)
        before, seconds_before = len(self.losses), self.train_seconds
        counted = 0.0
        self._remote = run if isinstance(run, RemoteRun) else None
        try:
            for p in run:
                self.losses.extend(p.losses)
                self.train_seconds += p.elapsed_s - counted
                counted = p.elapsed_s
                yield p
        except WorkerLost:
            del self.losses[before:]
            self.train_seconds = seconds_before
            raise
        finally:
            self._remote = None
            run.close()

    def panel(self, n: int = PANEL_IMAGES, seed: int = PANEL_SEED,
              sampler_steps: int | None = None) -> TrainPanel:
        """Rows (a) x_t, (b) x̂0 and (c) DDIM samples for a fixed batch (module docstring).

        The same ``seed`` gives the same training images, ε, x_T and DDIM noise, so panels at
        different steps show the same batch. ``sampler_steps`` overrides the
        :data:`PANEL_SAMPLER`'s 10 steps (1..T). Everything runs from the EMA weights as they
        are now under ``torch.inference_mode``; nothing about the trainer changes. Mid-run,
        while :meth:`train` computes in a worker process, the worker draws the panel from its
        live weights (``RemoteRun.call``: no copy of the model, none of the server's CPU).
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 64:
            raise ValueError(f"n must be an integer in 1..64; got {n!r}")
        settings = PANEL_SAMPLER if sampler_steps is None else replace(
            PANEL_SAMPLER, steps=sampler_steps)
        if settings.steps > self.T:
            settings = replace(settings, steps=self.T)
        run = getattr(self, "_remote", None)
        if run is None:
            return _panel(self.trainer, n, int(seed), settings)
        return run.call(_panel, n, int(seed), settings)

    def training_summary(self) -> dict:
        """The JSON-able training record a checkpoint keeps (as the train CLI writes it)."""
        loss = self.recent_loss()
        return {
            "config": self.trainer.config.to_dict(),
            "recipe": self.recipe,
            "model_kind": self.model_kind,
            "steps": self.step,
            "wall_time_s": round(self.train_seconds, 2),
            "final_loss": checkpoints.finite_or_none(loss),
            "parameters": self.parameters,
            "threads": torch.get_num_threads(),
            "device": "cpu",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "trained_in": "Diffusion Lab, tab 5 (Train images)",
            "sampler_defaults": self.sampler.kwargs(),
        }

    def to_checkpoint(self, directory: str | Path) -> Path:
        """Write the EMA weights as a checkpoint directory (``model.safetensors`` +
        ``config.json``, :func:`~diffusion_core.checkpoints.save_checkpoint`) with a short
        generated ``MODEL_CARD.md``; returns the directory."""
        out = checkpoints.save_checkpoint(
            directory, self.trainer.sampling_network(), self.model_config,
            self.schedule_config, dataset=self.dataset, training=self.training_summary(),
            prediction=self.trainer.config.prediction)
        config = checkpoints.read_config(out)
        (out / "MODEL_CARD.md").write_text(checkpoints.model_card_md(config), encoding="utf-8")
        return out


def restart_reason(session: ImageTrainSession | None, dataset: dict, model_kind: str,
                   schedule_config: ScheduleConfig, recipe: str) -> str | None:
    """Why ``session`` cannot continue with these settings (None: it can)."""
    if not isinstance(session, ImageTrainSession):
        return "new model"
    changed = []
    if session.dataset != dataset:
        changed.append("data")
    if session.model_kind != model_kind:
        changed.append("model")
    if session.schedule_config != schedule_config:
        changed.append("schedule")
    if session.recipe != recipe:
        changed.append("recipe")
    return None if not changed else "new model: the " + " and ".join(changed) + " changed"


def start_or_continue(session: ImageTrainSession | None, data: ImageSet, dataset: dict,
                      model_kind: str, schedule_config: ScheduleConfig, train_cfg: TrainConfig,
                      *, recipe: str = "quick") -> tuple[ImageTrainSession, str | None]:
    """The session to train next and why it is new (``None``: ``session`` continues, keeping
    its network, optimiser state, EMA and losses, with ``train_cfg``'s step count)."""
    reason = restart_reason(session, dataset, model_kind, schedule_config, recipe)
    if reason is not None:
        session = ImageTrainSession.create(data, dataset, model_kind, schedule_config,
                                           train_cfg, recipe=recipe)
    else:
        session.trainer.config = train_cfg
    session.runs += 1
    return session, reason


def describe(session: ImageTrainSession) -> str:
    """One line: network, parameters, data and schedule, e.g. for a progress note."""
    cfg = session.model_config
    net = "pixel MLP" if session.model_kind == "pixel_mlp" else (
        "U-Net small" if session.model_kind == "unet_small" else "U-Net medium")
    shape = f"{cfg.channels}×{cfg.image_size}×{cfg.image_size}"
    return (f"{net} ({session.parameters / 1e6:.2f} M parameters) on {session.dataset['name']} "
            f"{shape}, {session.schedule_config.kind} T = {session.T}")

