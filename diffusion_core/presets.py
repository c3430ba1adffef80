"""Default settings shared by the app and the CLI (one place, so both train the same models).

Index convention: t ∈ {0, …, T−1}. Each preset is a frozen :class:`Preset` of the frozen
configs of the schedule, the model and the optimiser, plus the default sampler settings.
Torch-free, like :mod:`diffusion_core.configs` (the app reads these while building its UI).
The 2D defaults were chosen by ``bench/toy2d_time_to_quality.py`` (see its results file).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .configs import MLPConfig, ScheduleConfig, TrainConfig, UNetConfig


@dataclass(frozen=True)
class SamplerSettings:
    """Default reverse-process settings (see :func:`diffusion_core.samplers.sample`)."""

    sampler: str = "ddim"
    steps: int | None = 25
    eta: float = 0.0
    spacing: str = "trailing"
    variance: str = "beta_tilde"
    clip_x0: bool = False

    def kwargs(self) -> dict:
        return dict(sampler=self.sampler, steps=self.steps, eta=self.eta, spacing=self.spacing,
                    variance=self.variance, clip_x0=self.clip_x0)


@dataclass(frozen=True)
class Preset:
    schedule: ScheduleConfig
    model: MLPConfig | UNetConfig
    train: TrainConfig
    sampler: SamplerSettings = field(default_factory=SamplerSettings)

    def with_T(self, T: int) -> Preset:
        """The same preset with T steps (the model's time embedding follows T)."""
        model = self.model
        if isinstance(model, MLPConfig):
            model = replace(model, num_timesteps=T)
        return replace(self, schedule=replace(self.schedule, T=T), model=model)


TOY_T = 200
# 2D points (chosen with bench/toy2d_time_to_quality.py on moons; steps-to-quality log in its
# results file). Each change below was tested one at a time against the previous recipe:
# - Fourier features of x_t (16 frequencies, 1..32 rad/unit): the plain MLP on raw coordinates
#   stalled at nearest-neighbour ratio ≈ 6 (samples blurred across the thin moons, spectral
#   bias); with them NN ≈ 1.1–1.3 after ~2000 steps.
# - EMA 0.999 of the weights: without it SW1 jumped 2× between evaluations (parameter noise).
# - lr 1e-2 (cosine decay to 0.1×): 3e-3 learned the fine structure much more slowly.
# - batch 1024: less gradient noise. SW1/floor at 1000 steps ≈ 1.8–2.2 (3 seeds) against
#   2.1–3.7 at batch 256 and 1.8–2.5 at 512, for ~2× the cost per step of 256 on one thread;
#   only 1024 met the bar on all 3 training seeds by 3000 steps (SW1/floor 1.41–1.65 at
#   2500–3000, averaged over 2 evaluation draws; NN ratio ≈ 1.0). Even so the bar takes
#   ~2500–3000 steps (≈ 9–10 s on one thread), not the 1 s the issue hoped for.
# - cosine T = 200, full DDPM chain: at T = 50 even the exact denoiser of the training points
#   samples too narrow a cloud (std ≈ 0.97 of the data's; SW1 ≈ 3× the two-draw floor) because
#   the last reverse steps are too coarse; T = 200 removes most of that (oracle SW1 ≈ 1.5× floor).
TOY = Preset(
    schedule=ScheduleConfig(kind="cosine", T=TOY_T),
    model=MLPConfig(hidden=128, depth=3, activation="silu", time_embedding="sinusoidal",
                    num_timesteps=TOY_T, input_frequencies=16, input_max_frequency=32.0),
    train=TrainConfig(steps=3000, batch_size=1024, lr=1e-2, lr_schedule="cosine",
                      ema_decay=0.999, report_every=50, seed=0),
    sampler=SamplerSettings(sampler="ddpm", steps=None, clip_x0=False),
)

# Images in [−1, 1]: the cosine schedule with T = 1000 and DDIM sampling by default.
# No linear attention at the down/up levels (bottleneck attention stays): on 2 CPU threads it
# cost ~40 % of a forward pass at 16×16 and 2–5× per training step (noisy, shared machine); the
# U-Net without it is faster per step than a matched diffusers UNet2DModel (bench/unet_speed.py).
# Quality with it was not compared. The models in assets/models/ use these model configs (see
# their MODEL_CARD.md for the exact commands).
_IMAGE_SCHEDULE = ScheduleConfig(kind="cosine", T=1000)
_IMAGE_SAMPLER = SamplerSettings(sampler="ddim", steps=25, eta=0.0, spacing="trailing",
                                 clip_x0=True)
DIGITS = Preset(
    schedule=_IMAGE_SCHEDULE,
    model=UNetConfig(channels=1, image_size=16, dim=32, dim_mults=(1, 2, 2),
                     use_linear_attention=False),
    train=TrainConfig(steps=6000, batch_size=64, lr=2e-3, lr_schedule="cosine",
                      warmup_steps=100, ema_decay=0.995, report_every=100, seed=0),
    sampler=_IMAGE_SAMPLER,
)
GRADIENTS = Preset(
    schedule=_IMAGE_SCHEDULE,
    model=UNetConfig(channels=3, image_size=16, dim=32, dim_mults=(1, 2, 2),
                     use_linear_attention=False),
    train=TrainConfig(steps=3000, batch_size=64, lr=2e-3, lr_schedule="cosine",
                      warmup_steps=100, ema_decay=0.995, report_every=100, seed=0),
    # Leading spacing: trailing starts at t = 999 (ᾱ ≈ 2e-9), where the clipped x̂0 is a ±1
    # guess that deterministic DDIM carries into over-saturated colours (21 % of pixels at ±1
    # vs 5 % with leading; SW1 to real gradients 0.21 vs 0.09, 128 samples, see model card).
    sampler=replace(_IMAGE_SAMPLER, spacing="leading"),
)
IMAGE_PRESETS: dict[str, Preset] = {"digits": DIGITS, "gradients": GRADIENTS}


def preset_for(dataset: str, *, image: bool) -> Preset:
    """The default preset for a data set: TOY for every 2D set, else by image-set name."""
    if not image:
        return TOY
    if dataset in IMAGE_PRESETS:
        return IMAGE_PRESETS[dataset]
    return DIGITS  # user image sets: a digits-sized U-Net, channels set by the caller
