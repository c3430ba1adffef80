"""End to end: the default 2D recipe (``presets.TOY``) trained on moons lands on the data.

Issue 2's bar, scored by the core's ``evaluation.toy2d.toy2d_quality`` (the 2D tab's score) at
n = 2000 points in model coordinates: SW1(samples, data) ≤ 1.5 × floor and nearest-neighbour
ratio ≤ 1.5, where the floor (``evaluation.distances.sw1_floor``, 8 pairs) is the mean SW1
between pairs of fresh i.i.d. draws of moons. Seeded and run for the preset's own step count
(not a time budget), so the result does not depend on the machine's speed; about 15 s on one
CPU thread, mostly evaluation.

Each number is a mean over 8 sampling draws (x_T and the sampler's noise), because one draw of
2000 samples varies by about ±25 % of the floor even for an exact sampler: fresh draws of the
data set itself score 1.15 ± 0.27 × floor against the fixed evaluation draw (seed 1000; see
``bench/toy2d_time_to_quality.py``). The bar is checked against that evaluation draw, as in the
benchmark, and against a second one (seed 9999) so a lucky evaluation draw cannot carry it.
Measured for training seeds 0 / 1 / 2: SW1/floor 0.98 / 0.88 / 0.93 (first draw) and
1.28 / 1.34 / 1.11 (second), NN ratio 1.13 / 1.10 / 1.12; the preset stopped after 100 steps
scores SW1/floor ≈ 1.3 and NN ≈ 2.0 and fails.
"""

from __future__ import annotations

import pytest
import torch

from diffusion_core.data.toy2d import make_2d
from diffusion_core.evaluation.toy2d import toy2d_quality
from diffusion_core.models import build_model
from diffusion_core.presets import TOY
from diffusion_core.sampling import sample_final
from diffusion_core.schedule import NoiseSchedule
from diffusion_core.training import Trainer

N = 2000  # evaluation points, as in bench/toy2d_time_to_quality.py
DRAWS = tuple(range(100, 108))  # x_T seeds; the sampler's generator uses seed + 100


@pytest.mark.slow
def test_default_2d_recipe_lands_on_moons() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        schedule = NoiseSchedule(TOY.schedule)
        trainer = Trainer(build_model(TOY.model), schedule, make_2d("moons", 4000, seed=0),
                          TOY.train)
        for _ in trainer.run():  # the preset's TOY.train.steps
            pass
        draws = []
        for seed in DRAWS:
            x_T = torch.randn(N, 2, generator=torch.Generator().manual_seed(seed))
            draws.append(sample_final(trainer.sampling_model(), schedule, x_T,
                                      generator=torch.Generator().manual_seed(seed + 100),
                                      **TOY.sampler.kwargs()))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.isfinite(s).all() for s in draws)
    for eval_seed in (1000, 9999):  # NN ratio to the evaluation draw, reference seed 1001
        scores = [toy2d_quality(s, "moons", eval_seed=eval_seed) for s in draws]
        sw = [q.ratio for q in scores]
        nn = [q.nn for q in scores]
        detail = (f"evaluation draw {eval_seed}: SW1/floor per draw {[round(v, 2) for v in sw]}, "
                  f"NN ratio per draw {[round(v, 2) for v in nn]}")
        assert sum(sw) / len(sw) <= 1.5, detail
        assert sum(nn) / len(nn) <= 1.5 and max(nn) <= 1.5, detail
