"""Default settings shared by the app and the CLI (one place, so both train the same models).

Index convention: t ∈ {0, …, T−1}. Each preset is a frozen :class:`Preset` of the frozen
configs of the schedule, the model and the optimiser, plus the default sampler settings.
The 2D defaults were chosen by ``bench/toy2d_time_to_quality.py`` (see its results file).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .models import MLPConfig, UNetConfig
from .schedules import ScheduleConfig
from .training import TrainConfig


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


TOY_T = 50
# 2D points: a short cosine chain (ends at pure noise for any T) and a small MLP.
TOY = Preset(
    schedule=ScheduleConfig(kind="cosine", T=TOY_T),
    model=MLPConfig(hidden=128, depth=3, activation="silu", time_embedding="sinusoidal",
                    num_timesteps=TOY_T),
    train=TrainConfig(steps=1000, batch_size=256, lr=3e-3, lr_schedule="cosine",
                      report_every=50, seed=0),
    sampler=SamplerSettings(sampler="ddpm", steps=None, clip_x0=False),
)

# Images in [−1, 1]: the cosine schedule with T = 1000 and DDIM sampling by default.
_IMAGE_SCHEDULE = ScheduleConfig(kind="cosine", T=1000)
_IMAGE_SAMPLER = SamplerSettings(sampler="ddim", steps=25, eta=0.0, spacing="trailing",
                                 clip_x0=True)
DIGITS = Preset(
    schedule=_IMAGE_SCHEDULE,
    model=UNetConfig(channels=1, image_size=16, dim=32, dim_mults=(1, 2, 2)),
    train=TrainConfig(steps=6000, batch_size=64, lr=2e-3, lr_schedule="cosine",
                      warmup_steps=100, ema_decay=0.995, report_every=100, seed=0),
    sampler=_IMAGE_SAMPLER,
)
GRADIENTS = Preset(
    schedule=_IMAGE_SCHEDULE,
    model=UNetConfig(channels=3, image_size=16, dim=32, dim_mults=(1, 2, 2)),
    train=TrainConfig(steps=3000, batch_size=64, lr=2e-3, lr_schedule="cosine",
                      warmup_steps=100, ema_decay=0.995, report_every=100, seed=0),
    sampler=_IMAGE_SAMPLER,
)
IMAGE_PRESETS: dict[str, Preset] = {"digits": DIGITS, "gradients": GRADIENTS}


def preset_for(dataset: str, *, image: bool) -> Preset:
    """The default preset for a data set: TOY for every 2D set, else by image-set name."""
    if not image:
        return TOY
    if dataset in IMAGE_PRESETS:
        return IMAGE_PRESETS[dataset]
    return DIGITS  # user image sets: a digits-sized U-Net, channels set by the caller
