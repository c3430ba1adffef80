"""Default settings shared by the app and the CLI (one place, so both train the same models).

Index convention: t ∈ {0, …, T−1}. Each preset is a frozen :class:`Preset` of the frozen
configs of the schedule, the model and the optimiser, plus the default sampler settings.
Torch-free, like the config modules (the app reads these while building its UI).
The 2D defaults were chosen by ``bench/toy2d_time_to_quality.py`` (see its results file), the
quick image recipes (``preset_for(..., recipe="quick")``) with the judge of
``bench/image_time_to_quality.py`` (the search log above :data:`QUICK_STEPS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .models.mlp_config import MLPConfig
from .models.pixel_mlp_config import PixelMLPConfig
from .models.unet_config import UNetConfig
from .sampling.config import SamplerSettings
from .schedule.config import ScheduleConfig
from .training.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    schedule: ScheduleConfig
    model: MLPConfig | UNetConfig | PixelMLPConfig
    train: TrainConfig
    sampler: SamplerSettings = field(default_factory=SamplerSettings)

    def with_T(self, T: int) -> Preset:
        """The same preset with T steps (the model's time embedding follows T)."""
        model = self.model
        if isinstance(model, (MLPConfig, PixelMLPConfig)):
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

# ---------------------------------------------------------------------------------------------
# The "quick" recipe: an image model the learner watches train in about a minute on 2 vCPU.
#
# Chosen with bench/image_time_to_quality.py's judge (300 samples, DDIM 25 η = 0 trailing with
# clipped x̂0, one fixed x_T; the digits bar the shipped model meets at N = 300: Fréchet distance
# ≤ 1.91 (blur σ = 0.5 reference; real digits 0.47), confidence ≥ 0.85, class entropy ≥ 2.20,
# near copies ≤ 5 %) on digits8, the set the shipped model was trained on. One change at a
# time against the previous recipe. Figures are FD / confidence after that many steps, seed 0
# unless said; "ms" is one training step on 2 threads. Quality at a step count does not depend
# on the machine's load, so the comparisons are of steps; the step costs are ratios measured side
# by side (8 searches in parallel on a quiet 2-core slot each of another machine, "device";
# or on this shared 2-vCPU machine at load 3–9, "loaded", where only ratios of minimum times
# mean anything).
#
# - The shipped DIGITS recipe (6000-step cosine, batch 64, lr 2e-3, EMA 0.995) meets the bar
#   after 500 steps (0.98 / 0.871; 37 s device, 65–82 ms/step): the bar is what it reaches
#   early, the last 5500 steps polish (0.57 / 0.939 at 3000). Confidence is the binding part.
# - Horizon: the same recipe annealed over 700 steps instead of 6000 meets it at 400 (0.93 /
#   0.861, 26 s), ends at 0.83 / 0.895. A shorter cosine gets there sooner.
# - target = "stf" with the whole training split as reference (stf_extra = 1347 − batch): the
#   Stable Target Field's posterior over 1347 digits of 64 pixels is one cheap matmul (step
#   cost unchanged within noise, loaded 1.00 vs 1.03 for ε). 700-step horizon: 0.81 / 0.870 at
#   400, 0.68 / 0.912 at 700 (vs 0.83 / 0.895); 1200-step horizon at 800: 0.65 / 0.921 vs 0.88
#   / 0.900. Kept.
# - batch 128, lr 3e-3 (800-step horizon): meets the bar at 200 steps (0.88 / 0.860, 23.5 s
#   device, ~115 ms/step) where batch 64 needs 400 (30.6 s); per example batch 128 costs 0.8×
#   batch 64, batch 256 0.95× batch 128 (loaded, 1 thread) for half the updates. Without STF
#   batch 128 missed at 200 (1.06 / 0.844). Kept.
# - 400 steps, warm-up 50 (the recipe from here on, "q400"): 0.83 / 0.877 at 200, 0.67 / 0.916
#   at 400 (60 s device at 150 ms/step that run; the searches beside it slowed it). Then one
#   change each, at 200 / 400 steps: lr 5e-3 1.00 / 0.849, 0.60 / 0.903 (no); warm-up 20 0.88
#   / 0.865, 0.69 / 0.922 (same); EMA off 2.42 / 0.881 at 200 (the EMA matters); EMA 0.99 the
#   same as 0.995 to four digits (the EMA warm-up, decay ≤ (1 + s)/(10 + s), sets the averaging
#   in runs this short); timestep_power 1.5 1.03 / 0.860, 0.69 / 0.907 (no); no bottleneck
#   attention 0.94 / 0.843 at 200 for ~7 % less per step (no); 300 steps 0.83 / 0.885 at 200,
#   0.69 / 0.880 at 300 (no better at 200).
# - prediction = "v" (the loss weighted (1 + SNR⁻¹) relative to ε's: more weight on the
#   high-noise steps that set a digit's shape): at 200 steps 0.77 / 0.862 (seed 0), 0.79 / 0.867
#   (seed 1) vs ε's 0.83 / 0.877, 0.91 / 0.843 and (seed 2) 0.99 / 0.849: ε misses the bar at
#   200 steps in 2 seeds of 3, v in none; at 400 the same (0.65 / 0.909, 0.61 / 0.906). Kept.
# - dim_mults (1, 2) instead of (1, 2, 3) (two levels, 8×8 and 4×4; 0.47 M parameters instead
#   of 1.09 M): 10–15 % less per step (device, 60 vs 71 ms at batch 64, 100–108 vs 117–120 at
#   128), same quality with v: at 200 steps 0.81 / 0.874, 0.79 / 0.899, 0.80 / 0.869 (seeds 0, 1,
#   2), at 400 0.58 / 0.910, 0.69 / 0.910. Kept.
# - Not kept: bf16 autocast of the forward pass, 1.3× slower per step on this CPU (AMX bf16;
#   loaded, 1 thread, min of 8: 292 vs 221 ms with dim_mults (1, 2, 3), 280 vs 228 ms with
#   (1, 2)): at 8×8 the convolutions are too small to gain and the casts cost. Channels-last is
#   already the U-Net's layout (models/unet.py). The colour-gradient toy's pixel MLP (512
#   hidden, t/T, Adam 1e-3, batch 128) never meets the bar: FD 2.0–3.7, confidence ≤ 0.83 in
#   20 000 steps (40 s, 2 ms/step); 1024 wide with a sinusoidal t and STF, 1.31 / 0.815 at
#   10 000 steps (44 s).
# Result (bench/image_time_to_quality.py, 2 threads, beside the other two runs, this machine at
# load 5–7 with passive OpenMP waiting): the bar after 171 steps, 50.6 s of training (28.5 CPU
# s), against 379 steps and 81.2 s (54.2 CPU s) for the shipped recipe; the pixel MLP not in
# 120 s. The 400 steps end at 0.58 / 0.910, about where the shipped recipe is after 1500–3000
# steps (0.57–0.60 / 0.919–0.939). On the quieter device slot the 200-step point came at ~24 s.
#
# 16×16 digits (the 8×8 digits upsampled; the same bar, judged after area-averaging to 8×8, is
# harder there: real digits score confidence 0.937 at N = 300, the blur reference 0.849):
# the shipped layout at 16×16 with STF, batch 64, lr 2e-3 over 1000 steps meets it at 800 (0.32
# / 0.865; 170 ms/step device, 137 s); the 8×8 recipe above with dim_mults (1, 2, 3) (three
# levels: 16, 8, 4) reaches 0.34 / 0.803 at 200 steps (loaded; not run further). QUICK_DIGITS
# is that recipe; at 16×16 it will not meet the bar in a minute. A cheaper top level
# (dim 16, dim_mults (1, 4, 6)) was no faster per example (265 vs 150 ms at batch 128, device,
# against the 8×8 recipe) and at 400 steps scored 0.37 / 0.835.
#
# Colour gradients (3×16×16; bar: mean misfit to the gradient model ≤ 0.0497, the +N(0, 0.05²)
# reference; SW1 to fresh gradients reported beside it, ≤ 0.0677 being the +N(0, 0.2²)
# reference's, since washed-out colours fit the model too; DDIM 25 leading as GRADIENTS; 256
# samples): the shipped recipe is at 0.115 after 600 of its 3000 steps (108 s device).
# U-Net dim 16, dim_mults (1, 2, 2), batch 64, STF over the 2000 images, lr 3e-3, 200 steps:
# ε 0.230 (SW1 0.084), v 0.113, x0 0.080 (SW1 0.068): predicting x0 gives the smooth images
# directly. lr 5e-3: v 0.104, ε 0.205 (no). Over a 600-step horizon x0 reaches 0.054 at 300,
# 0.048 at 500 (bar) and 0.045 at 600, but SW1 stays 0.077–0.082 (colours a little washed
# out); ~120 ms/step (device, beside other runs): ~60 s to the misfit bar, not the 20 s target.
# Width 32, dim_mults (1, 2), x0: 0.075 with SW1 0.059 after 100 steps (vs 0.087 / 0.081) for
# about twice the step cost; not run further.
# The pixel MLP with x0 prediction fits fast but misses the colours: 1024 wide, sinusoidal t,
# misfit 0.040 after 250 steps (26 ms/step) with SW1 0.125, worse than flat colours (0.105);
# 512 or 2048 wide with t/T plateau at misfit 0.066–0.075 (SW1 0.04–0.07) over 1500 steps; with
# v prediction 0.28; the toy's own setup (ε, t/T, Adam 1e-3) 0.81, no better than noise.
#
# Search for ≤ 20 s (issue #12). One image has 7 degrees of freedom (two RGB end colours and one
# of 4 directions) spread over 768 values, so the colours are decided at very low SNR: under the
# cosine schedule only t ≈ 830–965 (ᾱ 0.05 … 0.003) carry that decision (3–4 of DDIM 25's
# leading steps, 13 % of the training draws); below t ≈ 500 the image is known and the network
# only has to denoise. Runs below are on this shared 2-vCPU machine at load 7–16, 1 thread, 256
# samples as the bench (DDIM 25 leading, one fixed x_T); "a / b" is misfit / SW1 after that many
# steps of a horizon of H steps, seed 0; ms ratios side by side (2 threads, passive waiting).
# - The U-Net recipe above over H = 200: 0.086 / 0.094 at 100, 0.080 / 0.068 at 200. Its x̂0 of
#   real gradients is itself rough: misfit 0.052 at t = 0–40 (clean input), 0.07–0.08 at t ≥ 400:
#   the network's own artefacts, committed into the sample at mid t, set the misfit.
# - Schedule (the preset's own ScheduleConfig; DDIM 25 leading kept): linear 1e-4..0.02 (ᾱ = 0.05
#   at t ≈ 500, 1e-4 at t ≈ 910: ~40 % of t in the decision band), H = 200: 0.068 / 0.101 at 100,
#   0.070 / 0.069 at 200; H = 300: 0.068 / 0.070 at 200, 0.066 / 0.064 at 300; H = 600: 0.063 /
#   0.070 at 250. Polynomial power 2, 1e-5..0.04 (less noise at small t, ᾱ(40) = 0.999): H = 200
#   0.064 / 0.085 at 150, 0.065 / 0.081 at 200; H = 300 0.065 / 0.073 at 300. Both plateau near
#   0.065 in 300 steps; linear keeps the colours (SW1 under the bar), polynomial does not.
# - On the U-Net, one change each (no gain): timestep_power 2 0.090 / 0.078 at 200 (cosine);
#   v prediction 0.142 / 0.077 (poly 2; its x̂0 is exact near t = 0 but rough at t = 200–400);
#   lr 1.5e-3 0.088 / 0.118 at 100, lr 6e-3 0.075 / 0.065 at 200 (linear); batch 128 0.072 /
#   0.073 at 200 for 1.45× the step; grad_clip off 0.068 / 0.068 at 200; width 32 0.071 / 0.074
#   at 100, 0.080 / 0.056 at 150. L1 loss (linear): 0.061 / 0.078 at 150, 0.061 / 0.082 at 200
#   (smoother, more washed out); with timestep_power 0.6 0.039 / 0.097 at 100: misfit met with
#   washed-out colours, not a win. Every lower misfit on the U-Net cost SW1.
# - Step cost (min / median of 16 interleaved steps, ratios to the U-Net above, 126 / 267 ms):
#   dim 12 (groups 4) 1.36 / 1.07, dim 8 1.43 / 1.49, no mid attention 1.43 / 0.99, dim_mults
#   (1, 2) 1.43 / 1.23, batch 32 0.78 / 0.76, batch 128 1.48 / 1.44: the 16×16 U-Net step is
#   overhead-bound, narrower ones are no cheaper. The pixel MLP, 1024 wide: 0.23 / 0.18.
# - The pixel MLP (1024 wide, sinusoidal t, x0, STF) on the linear schedule: the colours come
#   back. H = 1000: 0.038 / 0.081 at 200, 0.039 / 0.069 at 600, 0.047 / 0.074 at 1000; H = 600:
#   0.048 / 0.063 at 600 (corner-colour spread 0.46 vs real 0.54; cosine 0.34 for the U-Net,
#   0.39 for this MLP on polynomial 2, whose samples are mostly flat: 0.041 / 0.118 at 200).
#   Not kept: batch 128 0.040 / 0.075 at 200, 0.045 / 0.071 at 600; linear 1e-4..0.01 0.042 /
#   0.077 at 200, 0.044 / 0.072 at 600; lr 1e-3 0.047 / 0.145 at 200; 2048 wide 0.030 / 0.095
#   at 200, 0.037 / 0.067 at 400 (2–4× the step).
# Result: QUICK_GRADIENTS is that MLP over 600 steps (one hidden layer, so tab 5's pixel MLP
# choice, 512 wide with t/T, is a smaller cousin; the tab's U-Net small takes only the optimiser).
# Seed 0 at 300 / 400 / 500 / 600 steps: 0.040 / 0.070, 0.043 / 0.073, 0.047 / 0.067, 0.048 / 0.063
# (seed 1: 0.040 / 0.080 at 200, 0.042 / 0.065 at 400, 0.0496 / 0.063 at 600: the misfit creeps
# up as the colours spread, so the two bars are met together only late in the run).
# bench/image_time_to_quality.py --parts gradients (2 threads, passive waiting, load 11 → 7):
# 85 ms/step (the U-Net recipe: 307 ms/step at load 5–7, misfit bar not met in 90 s / 294
# steps); misfit ≤ the bar from 143 steps (12.2 s; a first, lucky hit at 63 steps, 6.1 s, with
# SW1 0.21), SW1 0.073–0.081 at 14–20 s (the old recipe's at its bar: 0.077–0.082); both bars
# from 477 steps, 39.2 s; at 600 steps 0.047 / 0.063. Target ≤ 20 s: met for the misfit, not
# with the colours (SW1 ≤ 0.0677): that needs ~480 steps of this MLP.
# Shapes use the 16×16 digits recipe with 3 channels and leading spacing: not measured.
QUICK_STEPS = 400
_QUICK_TRAIN = TrainConfig(steps=QUICK_STEPS, batch_size=128, lr=3e-3, lr_schedule="cosine",
                           warmup_steps=50, ema_decay=0.995, report_every=25, seed=0,
                           target="stf", stf_extra=1219, prediction="v")
_QUICK_UNET = UNetConfig(channels=1, image_size=8, dim=32, dim_mults=(1, 2),
                         use_linear_attention=False, level_blocks=1)
QUICK_DIGITS8 = Preset(schedule=_IMAGE_SCHEDULE, model=_QUICK_UNET, train=_QUICK_TRAIN,
                       sampler=IMAGE_SAMPLER)
QUICK_DIGITS = Preset(schedule=_IMAGE_SCHEDULE,
                      model=replace(_QUICK_UNET, image_size=16, dim_mults=(1, 2, 3)),
                      train=_QUICK_TRAIN, sampler=IMAGE_SAMPLER)
QUICK_GRADIENTS = Preset(
    schedule=ScheduleConfig(kind="linear", T=1000, beta_start=1e-4, beta_end=0.02),
    model=PixelMLPConfig(channels=3, image_size=16, hidden=1024, time_embedding="sinusoidal",
                         num_timesteps=1000),
    train=TrainConfig(steps=600, batch_size=64, lr=3e-3, lr_schedule="cosine",
                      warmup_steps=20, ema_decay=0.995, report_every=25, seed=0,
                      target="stf", stf_extra=1936, prediction="x0"),
    sampler=GRADIENTS.sampler,
)
QUICK_SHAPES = Preset(schedule=_IMAGE_SCHEDULE, model=replace(QUICK_DIGITS.model, channels=3),
                      train=_QUICK_TRAIN, sampler=SHAPES.sampler)
QUICK_PRESETS: dict[str, Preset] = {"digits": QUICK_DIGITS, "digits8": QUICK_DIGITS8,
                                    "gradients": QUICK_GRADIENTS, "shapes": QUICK_SHAPES}

RECIPES: tuple[str, ...] = ("default", "quick")
"""The recipes :func:`preset_for` knows: the shipped models' (``"default"``) and the fast one."""


def preset_for(dataset: str, *, image: bool, conditional: bool = False,
               recipe: str = "default") -> Preset:
    """The preset of ``recipe`` for a data set: TOY for every 2D set, else by image-set name.

    ``recipe`` is one of :data:`RECIPES`: ``"default"`` (the recipes of the shipped models) or
    ``"quick"`` (:data:`QUICK_PRESETS`: about a minute of training on 2 vCPU; 2D sets keep TOY,
    which already trains in about a second). ``conditional`` asks for the class-conditional
    recipe where one exists (default recipe, digits: :data:`DIGITS_COND`; the quick recipe is
    the same for both); the caller sets ``num_classes`` on the model config either way. Sets
    without a preset of their own (user images) get the digits-sized one, channels and size
    set by the caller. An unknown recipe raises ``ValueError`` naming the valid ones.
    """
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}; got {recipe!r}")
    if not image:
        return TOY
    if recipe == "quick":
        return QUICK_PRESETS.get(dataset, QUICK_DIGITS)
    if conditional and dataset in CONDITIONAL_PRESETS:
        return CONDITIONAL_PRESETS[dataset]
    if dataset in IMAGE_PRESETS:
        return IMAGE_PRESETS[dataset]
    return DIGITS  # user image sets: a digits-sized U-Net, channels set by the caller
