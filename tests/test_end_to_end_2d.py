"""End to end: the default 2D recipe (``presets.TOY``) trained on moons lands on the data.

Issue 2's bar, with the core's metrics at n = 2000 points in model coordinates:
SW1(samples, data) ≤ 1.5 × floor (the SW1 between two fresh draws of moons) and nearest-neighbour
ratio ≤ 1.5. Seeded and run for the preset's own step count (not a time budget), so the result
does not depend on the machine's speed; about 15–20 s on one CPU thread (mostly
evaluation).

The nearest-neighbour half of the bar is asserted as it stands (every draw ≤ 1.5, and a mean
≤ 1.3). The SW1 half is not, because no sampler meets it reliably: ``make_moons`` spaces its
points evenly along the curves (only the jitter is random), so two draws of the data set are much
closer to each other than an independent sample is to either. An exact i.i.d. sampler of the
moons distribution scores SW1 ≈ 2.0 × floor on average (sd ≈ 0.5–0.7 × floor per draw) and meets
1.5 × floor in about one draw in five (``bench/toy2d_time_to_quality.py`` prints these figures);
the old 3000-step recipe, which met the bar here with a 2-draw mean of 1.41, averaged 2.02 over
20 draws. So the SW1 check compares the model with that exact sampler: the mean over 16
evaluation draws must stay within 1.3 × the exact sampler's mean over 64 draws (≈ 1.9–2.0).
Training seeds 0 / 1 / 2 of the preset score 2.11 / 2.01 / 2.25 (NN 1.15 / 1.12 / 1.15); the old
recipe stopped after 300 steps scores 3.08 (NN 1.52), an untrained-looking model > 4. Per-draw
values, and how many draws met the literal 1.5 × floor, are in the failure message.
"""

from __future__ import annotations

import pytest
import torch

from bench.toy2d_time_to_quality import perfect_moons
from diffusion_core import data, metrics
from diffusion_core.models import build_model
from diffusion_core.presets import TOY
from diffusion_core.samplers import sample_final
from diffusion_core.schedules import NoiseSchedule
from diffusion_core.training import Trainer

N = 2000  # evaluation points, as in bench/toy2d_time_to_quality.py
DRAWS = tuple(range(5, 165, 10))  # 16 x_T seeds; the sampler's generator uses seed + 1
EXACT_DRAWS = 64


@pytest.mark.slow
def test_default_2d_recipe_lands_on_moons() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        schedule = NoiseSchedule(TOY.schedule)
        trainer = Trainer(build_model(TOY.model), schedule, data.make_2d("moons", 4000, seed=0),
                          TOY.train)
        for _ in trainer.run():  # the preset's TOY.train.steps
            pass
        draws = []
        for seed in DRAWS:
            x_T = torch.randn(N, 2, generator=torch.Generator().manual_seed(seed))
            draws.append(sample_final(trainer.sampling_model(), schedule, x_T,
                                      generator=torch.Generator().manual_seed(seed + 1),
                                      **TOY.sampler.kwargs()))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.isfinite(s).all() for s in draws)
    floor = metrics.sw1_floor("moons", N)
    evald = data.make_2d("moons", N, seed=1000)
    ref = data.make_2d("moons", N, seed=1001)
    sw = [metrics.sliced_wasserstein(s, evald) / floor for s in draws]
    nn = [metrics.nearest_neighbour_ratio(s, evald, ref) for s in draws]
    g = torch.Generator().manual_seed(7)
    exact = [metrics.sliced_wasserstein(perfect_moons(N, g), evald) / floor
             for _ in range(EXACT_DRAWS)]
    sw_mean, exact_mean = sum(sw) / len(sw), sum(exact) / len(exact)
    detail = (f"SW1/floor per draw {[round(v, 2) for v in sw]} (mean {sw_mean:.2f}; "
              f"{sum(v <= 1.5 for v in sw)}/{len(sw)} draws ≤ 1.5); exact sampler mean "
              f"{exact_mean:.2f} ({sum(v <= 1.5 for v in exact)}/{len(exact)} draws ≤ 1.5)")
    assert max(nn) <= 1.5, f"nearest-neighbour ratio per draw {[round(v, 2) for v in nn]}"
    assert sum(nn) / len(nn) <= 1.3, f"mean nearest-neighbour ratio {sum(nn) / len(nn):.2f}"
    assert sw_mean <= 1.3 * exact_mean, detail
