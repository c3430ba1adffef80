"""Default settings shared by the app and the CLI (one place, so both train the same models).

Index convention: t ∈ {0, …, T−1}. Each preset is a frozen :class:`Preset` of the frozen
configs of the schedule, the model and the optimiser, plus the default sampler settings.
Torch-free, like the config modules (the app reads these while building its UI).
The 2D defaults were chosen by ``bench/toy2d_time_to_quality.py`` (see its results file).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .models.mlp_config import MLPConfig
from .models.unet_config import UNetConfig
from .sampling.config import SamplerSettings
from .schedule.config import ScheduleConfig
from .training.config import TrainConfig


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
# 2D points, chosen with bench/toy2d_time_to_quality.py on moons. Each change was tested one at
# a time against the previous recipe. Figures are SW1/floor / nearest-neighbour ratio at n = 2000,
# averaged over the 2 evaluation draws of tests/test_end_to_end_2d.py's old version ("2-draw"), or
# over 16 draws ("16-draw"), training seed 0 unless "3 seeds" (then the mean over seeds 0, 1, 2).
#
# The SW1 figures in the search log below were measured against the OLD floor: moons then came
# from scikit-learn's make_moons, whose points sit at evenly spaced angles, so two draws were
# far closer than independent samples and the floor was ~2.7× too low (an exact i.i.d. sampler
# scored 1.9–2.0 × that floor). make_2d now draws moons i.i.d. and sw1_floor averages 8 pairs of
# draws (see data/toy2d.py, evaluation/distances.py); read the log's SW1 figures as relative
# comparisons only.
#
# Previous recipe (3000 steps, batch 1024, MLP 3×128, ≈ 3.9 ms/step when measured, 5–7 ms on
# the shared machine during this search):
# - Fourier features of x_t (16 frequencies, 1..32 rad/unit): the plain MLP on raw coordinates
#   stalled at nearest-neighbour ratio ≈ 6 (samples blurred across the thin moons, spectral
#   bias); with them NN ≈ 1.1–1.3 after ~2000 steps.
# - EMA 0.999 of the weights: without it SW1 jumped 2× between evaluations (parameter noise).
# - lr 1e-2 (cosine decay to 0.1×): 3e-3 learned the fine structure much more slowly.
# - batch 1024; cosine T = 200 with the full DDPM chain (at T = 50 even the exact denoiser
#   samples too narrow a cloud, the last reverse steps being too coarse).
#
# Search for ~1 s of training (one thread):
# - Short horizon alone (that recipe with steps = 300, lr annealed within them): 2-draw
#   2.96/1.48, 16-draw 3.08/1.52; steps = 200: 4.3–5.7 (3 seeds). Not enough.
# - At 300 steps (batch 1024): lr 2e-2 5.42/2.38, 5e-3 5.38/3.22 (1e-2 stays); no EMA 4.71/1.52
#   (EMA 0.99 = 0.999 here: its warm-up, decay ≤ (1 + s)/(10 + s), sets the averaging);
#   grad_clip off 3.01/1.49; stratified t 2.76/1.66; time embedding t/T as one feature
#   28.98/17.57, sin/cos of t/T (16 frequencies to 50) 2.92/1.61; Fourier features 8 up to 16
#   3.21/1.73, 16 up to 16 2.81/1.86, 32 up to 64 16.94/12.67; MLP 2×256 3.09/1.66, 3×64
#   6.48/4.27. None helped much.
# - Same examples seen, other batch: 600 × 512 2.19/1.30, 1200 × 256 3.03/2.12 (300 × 1024
#   2.96/1.48). Batch 512 costs ~0.6–0.7× a 1024 step (fixed per-step costs).
# - target = "stf" (Stable Target Field, Xu et al. 2023: regress on the posterior-weighted
#   mean of ε over the batch's x0, not the drawn ε): the big step. Batch 1024 at 300 steps:
#   2-draw 1.82/1.19, 16-draw 2.13/1.18 (vs 3.08/1.52); batch 512 at 300 steps, 3 seeds: 2.08/1.28
#   (vs 4.48/2.91). It costs a 512 × 512 softmax a step (≈ 0.5 ms alone, 0.8 ms in whole-step
#   timings, of ~3.3 ms). A larger reference set helps a little more for a lot more time:
#   stf_extra 512 1.83/1.19 (+30 %/step), 1536 1.71/1.11 (+90 %/step); the whole training set
#   (4000) as reference ≈ 6× the step cost.
# - timestep_power 1.5 (t = ⌊T·u^1.5⌋: more low-noise examples, where the error stays largest):
#   3 seeds 1.85/1.19 vs 2.08/1.28, samples' width across the moons 1.10 vs 1.23 × the data's.
#   At 250 steps: p = 1.75 about the same (1.78/1.18 vs 1.80/1.21 with skip and depth 2); p = 2
#   2.85/1.94 vs 2.20/1.57 (too few high-noise examples: stray points). Also at 250 steps, no
#   more than seed noise: Adam β2 0.99 (2.02/1.46 vs 2.20/1.57; not a config field), a 20-step
#   warm-up (2.14/1.49), an lr floor of 0.01× (1.77/1.23 vs 1.80/1.21), Fourier features up to
#   48 (1.82/1.22).
# - skip (a learned linear map of x_t added to the output, zero at start): fewer stray points
#   early. At 250 steps (3 seeds) 1.79/1.20 vs 2.20/1.57, points > 0.25 from the curves 0.22 %
#   vs 0.62 %.
# - depth 2 instead of 3: 3 seeds at 300 steps 1.89/1.15 (with skip) vs 1.85/1.19 (without, depth
#   3), ~25 % less per step. Width 96 (2.37/1.63) or 192 (1.75/1.20) and batch 768 (1.74/1.17
#   at 250 steps, 1.6× the step cost) no better for the time.
# - T = 500 or 1000 (same training): 16-draw means 2.26 and 2.38 vs 2.11 at T = 200 (seed 0), for
#   2.5–5× the sampling time: T stays 200. (T = 200's coarse last steps narrow the cloud — the
#   exact denoiser of the true distribution samples 0.89× the data's width across the curves at
#   T = 200, 0.96× at T = 1000, 10 000 points — which offsets part of a short run's blur.)
# Result against the new (i.i.d.) floor, 300 steps, one thread: 0.9–1.3 s of training; the
# mean SW1/floor over 8 sampling draws is 0.88–0.98 against the benchmark's evaluation draw and
# 1.11–1.34 against another (fresh data draws: 1.15–1.17), NN 1.10–1.13, seeds 0 / 1 / 2
# (tests/test_end_to_end_2d.py). The benchmark meets the bar at 200 steps, 0.90 s.
TOY = Preset(
    schedule=ScheduleConfig(kind="cosine", T=TOY_T),
    model=MLPConfig(hidden=128, depth=2, activation="silu", time_embedding="sinusoidal",
                    num_timesteps=TOY_T, input_frequencies=16, input_max_frequency=32.0,
                    skip=True),
    train=TrainConfig(steps=300, batch_size=512, lr=1e-2, lr_schedule="cosine",
                      ema_decay=0.999, report_every=50, seed=0, timestep_power=1.5,
                      target="stf"),
    sampler=SamplerSettings(sampler="ddpm", steps=None, clip_x0=False),
)

# Images in [−1, 1]: the cosine schedule with T = 1000 and DDIM sampling by default.
# The U-Net is the lean layout, chosen for sampling speed on 2 CPU threads (bench/unet_speed.py,
# forward-pass ratios to a diffusers UNet2DModel of matched parameter count, mid attention only):
# - no linear attention at the down/up levels (bottleneck attention stays): it cost ~40 % of a
#   forward pass at 16×16 and 2–5× per training step. Quality with it was not compared.
# - one block per level and path (level_blocks = 1) instead of two, with the parameters moved
#   to the cheap low resolutions (dim_mults (1, 2, 3): widths 32, 64, 96; 1.09 M parameters,
#   as before). At 8×8 and batch 16 a forward pass is overhead-bound (each op ~50–150 µs), so
#   halving the blocks is what counts. Ratios to diffusers (digits / gradients, B16 / B64):
#   0.66 / 0.57, 0.62 / 0.51, vs 0.87 / 0.71, 0.83 / 0.70 for the two-block (1, 2, 2) U-Net of
#   the same size and code. Quality held (model cards). It trains 5–25 % faster per step.
# The models in assets/models/ use these model configs (see their MODEL_CARD.md for the exact
# commands).
_IMAGE_SCHEDULE = ScheduleConfig(kind="cosine", T=1000)
IMAGE_SAMPLER = SamplerSettings(sampler="ddim", steps=25, eta=0.0, spacing="trailing",
                                 clip_x0=True)
_IMAGE_UNET = UNetConfig(channels=1, image_size=16, dim=32, dim_mults=(1, 2, 3),
                         use_linear_attention=False, level_blocks=1)
DIGITS = Preset(
    schedule=_IMAGE_SCHEDULE,
    model=_IMAGE_UNET,
    train=TrainConfig(steps=6000, batch_size=64, lr=2e-3, lr_schedule="cosine",
                      warmup_steps=100, ema_decay=0.995, report_every=100, seed=0),
    sampler=IMAGE_SAMPLER,
)
GRADIENTS = Preset(
    schedule=_IMAGE_SCHEDULE,
    model=replace(_IMAGE_UNET, channels=3),
    train=TrainConfig(steps=3000, batch_size=64, lr=2e-3, lr_schedule="cosine",
                      warmup_steps=100, ema_decay=0.995, report_every=100, seed=0),
    # Leading spacing: trailing starts at t = 999 (ᾱ ≈ 2e-9), where the clipped x̂0 is a ±1
    # guess that deterministic DDIM carries into over-saturated colours (21 % of pixels at ±1
    # vs 5 % with leading; SW1 to real gradients 0.21 vs 0.09, 128 samples, see model card).
    sampler=replace(IMAGE_SAMPLER, spacing="leading"),
)
# The gradients recipe on anti-aliased two-colour shapes (data.make_shapes): same U-Net, schedule
# and optimiser, but 6000 steps: at 3000 the samples' edges were lumpy (Fréchet distance 7.0 vs
# 4.4 at 6000, confidence 0.90 vs 0.95; DDIM 25 leading, 256 samples; see the model card).
SHAPES = Preset(
    schedule=_IMAGE_SCHEDULE,
    model=replace(_IMAGE_UNET, channels=3),
    train=replace(GRADIENTS.train, steps=6000),
    # Leading spacing, as for gradients, measured with metrics.shape_quality (256 samples, see
    # assets/models/shapes/MODEL_CARD.md): trailing starts at t = 999, where the clipped x̂0 is a
    # ±1 guess, and saturates the colours (12.5 % of values at ±1 vs 3.1 %; Fréchet distance
    # 6.45 vs 4.39, confidence 0.938 vs 0.950).
    sampler=replace(IMAGE_SAMPLER, spacing="leading"),
)
# Class-conditional digits for classifier-free guidance (ε̃ = ε_u + s·(ε_c − ε_u); s = 0
# unconditional, 1 conditional, > 1 guides harder): the DIGITS recipe with 10 classes and label
# dropout p_uncond = 0.2 (TrainConfig's default, measured: training/config.py), for
# DIGITS_COND_STEPS steps. assets/models/digits_cond was trained with exactly
#   python -m diffusion_core.train --dataset digits8 --out assets/models/digits_cond \
#       --conditional --p-uncond 0.2 --steps 8000 --seed 0 --threads 2 --quiet
# (its MODEL_CARD.md has the measured quality per scale; `python -m bench.guidance`).
DIGITS_COND_STEPS = 8000
DIGITS_COND = Preset(
    schedule=_IMAGE_SCHEDULE,
    model=replace(_IMAGE_UNET, num_classes=10),
    train=replace(DIGITS.train, steps=DIGITS_COND_STEPS, p_uncond=0.2),
    sampler=IMAGE_SAMPLER,
)
IMAGE_PRESETS: dict[str, Preset] = {"digits": DIGITS, "gradients": GRADIENTS, "shapes": SHAPES}
CONDITIONAL_PRESETS: dict[str, Preset] = {"digits": DIGITS_COND, "digits8": DIGITS_COND}


def preset_for(dataset: str, *, image: bool, conditional: bool = False) -> Preset:
    """The default preset for a data set: TOY for every 2D set, else by image-set name.

    ``conditional`` asks for the class-conditional recipe where one exists (digits:
    :data:`DIGITS_COND`); the caller sets ``num_classes`` on the model config either way.
    """
    if not image:
        return TOY
    if conditional and dataset in CONDITIONAL_PRESETS:
        return CONDITIONAL_PRESETS[dataset]
    if dataset in IMAGE_PRESETS:
        return IMAGE_PRESETS[dataset]
    return DIGITS  # user image sets: a digits-sized U-Net, channels set by the caller
