"""The lessons of the *Start here* tab: a guided path through the app, one idea each.

A lesson names a tab (its id in ``app.py``) and the settings its button applies there, by the
same readable names that links use (:mod:`pages.links`); every control of that tab that the
lesson does not name gets its default. ``tests/pages/test_lessons.py`` checks every setting
against the tabs' registry (a misspelt name or a value out of range fails) and applies each
lesson without a warning.

Index convention, as everywhere in the app: t ∈ {0, …, T−1}, ᾱ_t = ∏_{s≤t}(1 − β_s), and
ᾱ_{−1} = 1 is the clean data. The figures quoted were measured with this code: the schedules'
ends by ``NoiseSchedule.health()``, the 2D runs with the tab's preset (moons, 300 steps), the
digit ones in ``bench/results/quality_digits.json`` and ``bench/results/guidance.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LESSONS", "Lesson"]


@dataclass(frozen=True)
class Lesson:
    """One lesson: a few sentences, the settings its button applies, what to notice and one
    question to think about (Markdown; ``$…$`` is LaTeX)."""

    key: str  # a short id (the button's elem_id is ``lesson-<key>``)
    title: str
    tab: str  # the tab's id in app.py
    settings: tuple[tuple[str, Any], ...]  # (readable name, value), as in a link
    text: str
    notice: str
    question: str

    @property
    def settings_dict(self) -> dict[str, Any]:
        return dict(self.settings)


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        key="never_noise",
        title="A schedule that never reaches noise",
        tab="schedules",
        settings=(("schedules", ["linear", "cosine"]), ("primary", "linear"), ("T", 50),
                  ("beta_start", 1e-4), ("beta_end", 0.02), ("scale_to_T", False)),
        text=(
            "Training noises the data with $x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + "
            "\\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon$ (eq. 4), and sampling starts from pure "
            "noise $\\mathcal N(0, I)$ at the last step, $t = T-1$. That only works if the last "
            "step really is noise: $\\bar\\alpha_{T-1} \\approx 0$. Here is DDPM's linear "
            "schedule, β from 0.0001 to 0.02, with only T = 50 steps instead of 1000."),
        notice=(
            "The table under the plots: for linear, $\\bar\\alpha_{T-1} \\approx 0.60$, so "
            "$x_{T-1}$ still keeps $\\sqrt{0.60} \\approx$ 78 % of $x_0$ (⚠ no). Now tick "
            "*Scale β_start, β_end by 1000/T*: β runs from 0.002 to 0.4 and "
            "$\\bar\\alpha_{T-1}$ drops to about $8\\cdot10^{-6}$."),
        question=(
            "The cosine curve ends near 0 at T = 50 as well, without any rescaling. What in "
            "its definition, $\\bar\\alpha_t = f(t+1)/f(0)$, makes that so for every T?"),
    ),
    Lesson(
        key="eq2_eq4",
        title="Step by step (eq. 2) or in one jump (eq. 4)",
        tab="forward",
        settings=(("image", "china"), ("shared", False), ("schedule", "cosine"), ("T", 1000),
                  ("t", 500), ("compare", True)),
        text=(
            "The forward chain adds a little noise at every step, "
            "$x_t = \\sqrt{1-\\beta_t}\\,x_{t-1} + \\sqrt{\\beta_t}\\,\\varepsilon_t$ (eq. 2). "
            "Gaussian noise added to Gaussian noise is Gaussian, so the whole chain up to t "
            "collapses into one draw: eq. 4. The box under the pictures runs both to "
            "t = 500 of a cosine schedule with T = 1000 (eq. 2 takes all 501 steps)."),
        notice=(
            "The two pictures differ pixel by pixel (different noise draws: the correlation "
            "of their noise parts is about 0), yet the table's means and standard deviations "
            "agree with each other and with the theory: noise std $\\sqrt{1-\\bar\\alpha_t}$."),
        question=(
            "Training needs $x_t$ at a random t for every example in every batch. What would "
            "each training step cost if it had to run eq. 2 up to t?"),
    ),
    Lesson(
        key="scaling",
        title="Why the data are scaled to [−1, 1]",
        tab="toy2d",
        settings=(("dataset", "checkerboard"),),
        text=(
            "The noise ε has standard deviation 1 in each coordinate, so the data are brought "
            "to about the same size: every toy set is moved into [−1, 1] by one fixed shift "
            "and scale (the raw checkerboard spans [−4, 4]). The 2D-toy tutorial this tab "
            "follows found this linear scaling important, and standardising (zero mean, unit "
            "std) worse. Open the *Forward diffusion* sub-tab and play the animation of "
            "$x_t$ for the schedule on the left (cosine, T = 200)."),
        notice=(
            "Scaled by c, the data are noised as $\\sqrt{\\bar\\alpha_t}\\,c\\,x_0 + "
            "\\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon$: up to an overall factor, that is "
            "$x_0$ under a schedule whose $\\bar\\alpha_t/(1-\\bar\\alpha_t)$ is $c^2$ times "
            "larger. Choosing the scale is choosing the schedule. Watch at which t the cells "
            "stop being distinguishable, and how large the cloud is in the last frame."),
        question=(
            "With the raw board ([−4, 4]) every step's SNR would be 16 times larger. Where "
            "in the chain would the cells then disappear, and how many steps would be left "
            "for the network to turn near-noise into the board?"),
    ),
    Lesson(
        key="predict_noise",
        title="Why we predict the noise",
        tab="toy2d",
        settings=(("dataset", "moons"), ("prediction", "x0")),
        text=(
            "The network may output the noise ε (as DDPM does), the clean point $x_0$, or "
            "$v$; given $x_t$ each determines the others, so sampling works the same. What "
            "changes is which steps the loss cares about: "
            "$\\|\\hat x_0 - x_0\\|^2 = \\mathrm{SNR}_t^{-1}\\,\\|\\hat\\varepsilon - "
            "\\varepsilon\\|^2$. Press ▶ Train (an $x_0$-predictor); then, under *Model and "
            "custom schedule*, set *Prediction* to ε and press ▶ Train again."),
        notice=(
            "The right-hand loss chart keeps one curve per prediction, both in ε units. At "
            "small t (little noise) the $x_0$-predictor's ε error is many times the "
            "ε-predictor's (about 30× below t = 20 in our run): its own loss hardly counts "
            "those steps. At large t it is the other way round."),
        question=(
            "The last sampling steps are the small-t ones, where fine detail is drawn. Which "
            "prediction would you trust there, and where does v's weight "
            "$1 + \\mathrm{SNR}_t^{-1}$ put it?"),
    ),
    Lesson(
        key="score",
        title="The arrows are the score",
        tab="toy2d",
        settings=(("dataset", "moons"), ("show", "both")),
        text=(
            "Press ▶ Train, then open *Vector field*: arrows of $-\\hat\\varepsilon(x, t)$ "
            "on a grid, the network's (dark) and the exact ideal denoiser's for the training "
            "points (vermillion). Up to a factor they are the *score* of the noised data, "
            "$\\nabla_x \\log p_t(x) = -\\mathbb E[\\varepsilon \\mid x_t = x]/"
            "\\sqrt{1-\\bar\\alpha_t}$: following them moves a point to where noised data is "
            "dense, and each reverse step does a little of that."),
        notice=(
            "Press *▶ Play over t* (or drag t from 199 down to 0, or hold an arrow key on "
            "the slider). At large t the arrows point at the centre; as t falls they bend "
            "onto the two moons. The plot under the field shows at which t the network is "
            "furthest from the ideal arrows."),
        question=(
            "At t = 199, $\\bar\\alpha_t \\approx 6\\cdot10^{-8}$. Why must the ideal arrows "
            "there point at the centre, whatever the data's shape?"),
    ),
    Lesson(
        key="paths",
        title="Follow single points through the reverse chain",
        tab="toy2d",
        settings=(("dataset", "moons"), ("sampler", "ddpm"), ("paths", 8)),
        text=(
            "Sampling starts 1,000 points at pure noise and moves each one step by step "
            "(DDPM Algorithm 2): every step nudges it along the arrows of the last lesson and, "
            "for DDPM, adds fresh noise $\\sigma_t z$. Press ▶ Train, open *Sample* and press "
            "*Sample*: the lines are the whole paths of the first 8 points, from ○ (pure "
            "noise) to ◆ (the sample)."),
        notice=(
            "DDPM's paths zig-zag: each step adds new noise, so two runs from the same start "
            "end in different places. Switch *Sampler* to DDIM (η = 0) and sample again: the "
            "paths become smooth curves, decided by the start alone. Then choose *Draw your "
            "own* as the data set, draw a shape, press *Use my drawing* and ▶ Train: the "
            "points now flow onto your drawing."),
        question=(
            "DDIM with η = 0 adds no noise, yet its samples are as varied as DDPM's. Where "
            "does all of their variety come from?"),
    ),
    Lesson(
        key="memorise",
        title="The ideal denoiser memorises",
        tab="toy2d",
        settings=(("dataset", "moons"), ("points", 200), ("denoiser", "ideal")),
        text=(
            "For a finite training set the training loss has an exact minimiser, the *ideal "
            "denoiser* $\\varepsilon^*(x_t, t) = \\mathbb E[\\varepsilon \\mid x_t]$, a "
            "weighted average over the training points. Here the set has only 200 points. "
            "Press ▶ Train, open *Sample* and press *Sample* (Denoiser: ideal); then choose "
            "the trained network and sample again."),
        notice=(
            "The ideal denoiser's samples land on training points: the text reports the "
            "share that sit on one, and the NN ratio falls far below 1. The network's "
            "samples fall between the points (NN ratio near 1): it generalises by missing "
            "the optimum of its own loss."),
        question=(
            "If the exact optimum of the training loss only copies the training set, what "
            "keeps a real network from reaching it?"),
    ),
    Lesson(
        key="bound",
        title="The likelihood bound: training points and fresh ones",
        tab="toy2d",
        settings=(("dataset", "moons"), ("points", 200), ("bound_points", "train"),
                  ("bound_n", 200)),
        text=(
            "A diffusion model gives every point a bound on $-\\log p_\\theta(x_0)$ (DDPM "
            "eq. 5): a prior term, one KL term per step and a decoder term. Press ▶ Train, "
            "open *Likelihood bound* and press *Compute the bound* (the 200 training points); "
            "then choose *fresh points* and compute again."),
        notice=(
            "On the training points the ideal denoiser's bound is lower than the network's: "
            "nothing predicts ε better on those points. On fresh points it is far worse than "
            "on its own training points, while the network scores both about the same: the "
            "bound tells a model that copies its training set from one that generalises."),
        question=(
            "Training minimises $L_\\text{simple}$, the bound with its per-step weights $w_t$ "
            "dropped. Which steps does the bound weight most (the result lists $w_t$), and "
            "why might ignoring those weights give better samples?"),
    ),
    Lesson(
        key="few_steps",
        title="DDPM and DDIM: how few steps suffice",
        tab="sampler",
        settings=(("model", "digits"), ("sampler", "ddim"), ("steps", 10), ("eta", 0.0),
                  ("images", 16), ("seed", 0)),
        text=(
            "DDPM (eq. 11) adds fresh noise at every step. DDIM with η = 0 (Song et al. 2020, "
            "eq. 12) uses the same trained network but moves deterministically through the "
            "predicted $\\hat x_0$, which lets it skip steps. Press ▶ Sample (DDIM, 10 of "
            "the model's 1000 steps); set *Steps* to 50 and sample again. Then choose DDPM, "
            "type 10 into *Steps*, sample, and once more with 50."),
        notice=(
            "From the same seed (the same starting noise $x_T$) DDIM's 10-step and 50-step "
            "digits are mostly the same digits: $x_T$ decides the image. DDPM's change with "
            "the step count, since every step draws new noise. In our benchmark DDIM with 20 "
            "steps scores as well as DDPM with all 1,000."),
        question=(
            "DDIM with η = 1 puts DDPM's noise back in. Would its digits still stay the same "
            "when the number of steps changes?"),
    ),
    Lesson(
        key="guidance",
        title="Classifier-free guidance",
        tab="sampler",
        settings=(("model", "digits_cond"), ("class", "3"), ("guidance", 0.0)),
        text=(
            "This model was trained with the digit's label, dropped 20 % of the time, so one "
            "network predicts both $\\varepsilon_c$ (given the digit) and $\\varepsilon_u$ "
            "(no label). Sampling mixes them: "
            "$\\tilde\\varepsilon = \\varepsilon_u + s\\,(\\varepsilon_c - \\varepsilon_u)$. "
            "Press ▶ Sample (class 3, s = 0); then set s to 1, then 3, and sample again."),
        notice=(
            "At s = 0 the label is ignored: all kinds of digits. At s = 1 (the conditional "
            "model) nearly all are 3s, at s = 3 all of them. In our benchmark the requested "
            "digit is read in 12 % of the samples at s = 0 (chance), 98 % at s = 1 and "
            "99.7 % at s = 3, while the class-wise Fréchet distance to real digits grows "
            "from 1.5 at s = 1 to 2.7 at s = 3."),
        question=(
            "Guiding harder made the samples more surely 3s but less like real 3s. What "
            "does $s > 1$ do to the distribution the sampler draws from?"),
    ),
    Lesson(
        key="train_digits",
        title="Train your own digit model",
        tab="imagetrain",
        settings=(("data", "digits8"), ("model", "unet_small"), ("recipe", "quick")),
        text=(
            "So far the image models were trained beforehand. Press ▶ Train: a small U-Net "
            "learns from scikit-learn's 1,347 digits (8×8) while you watch. Row (a) noises a "
            "few training images to different t, row (b) is the network's guess "
            "$\\hat x_0$ for each, row (c) samples from the same starting noise every time."),
        notice=(
            "Row (c) goes from smudges to strokes to digits. In row (b) the guesses at "
            "large t stay blurry even when training goes well. When the run ends, your model "
            "appears in tab 4's model list (for this browser session)."),
        question=(
            "From almost pure noise the best guess of $x_0$ is a blur (an average of many "
            "digits), yet sampling ends in sharp digits. How do many small steps get around "
            "that?"),
    ),
)
