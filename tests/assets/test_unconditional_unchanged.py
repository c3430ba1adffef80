"""Old unconditional checkpoints load and sample bit-identically now that models take labels.

The shipped digits model's config.json predates ``num_classes``; it must load as an
unconditional U-Net with exactly the old state-dict keys and compute exactly the numbers the code
computed before class labels existed. Recorded with that code (commit 1556a7e, torch
2.13.0+cpu, Python 3.11; identical with 1 and 2 threads; equal to float32 rounding on other
CPUs, ``tests.helpers.ACROSS_CPUS``): x_T = randn(4, 1, 8, 8) from
``torch.Generator().manual_seed(0)``; ε̂ at t = [0, 10, 500, 999] (every 17th value, first 12),
then DDPM, 10 trailing steps, clipped x̂0, the same generator (every 13th value, first 12).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from diffusion_core.checkpoints import load_checkpoint
from diffusion_core.sampling import GuidedModel, sample_final
from tests.helpers import ACROSS_CPUS

MODELS = Path(__file__).resolve().parents[2] / "assets" / "models"

DIGITS_EPS = [-1.8802090883255005, -6.50039529800415, -0.039042890071868896,
              -0.1858472377061844, -2.6013693809509277, -0.601250410079956,
              0.04538753628730774, 0.9900221228599548, 0.8987700343132019,
              -0.09040334820747375, 0.3221496343612671, -0.16094915568828583]
DIGITS_DDPM10 = [-1.0, -1.0, 0.7617011666297913, -0.9880467653274536, 0.9709950685501099,
                 -0.9903655648231506, -0.8040253520011902, -0.9121173620223999, -1.0,
                 0.8140053749084473, -0.6632917523384094, -1.0]


@pytest.mark.parametrize("name", ["digits", "gradients", "shapes"])
def test_old_configs_load_as_unconditional(name):
    raw = json.loads((MODELS / name / "config.json").read_text())
    assert "num_classes" not in raw["model"]  # written before the field existed
    ck = load_checkpoint(MODELS / name)
    assert ck.num_classes == 0 and ck.class_names == ()
    assert ck.network.class_embed is None and ck.network.null_class is None
    assert not any(k.startswith("class_embed") for k in ck.network.state_dict())
    with pytest.raises(ValueError, match="unconditional"):
        GuidedModel(ck.model, 0, 2.0)


def test_shipped_digits_model_computes_exactly_what_it_did():
    ck = load_checkpoint(MODELS / "digits")
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(4, 1, 8, 8, generator=g)
    with torch.inference_mode():
        eps = ck.model(x_T, torch.tensor([0, 10, 500, 999]))
    x = sample_final(ck.model, ck.schedule, x_T, sampler="ddpm", steps=10, spacing="trailing",
                     clip_x0=True, generator=g)
    torch.testing.assert_close(eps.flatten()[::17][:12], torch.tensor(DIGITS_EPS), **ACROSS_CPUS)
    torch.testing.assert_close(x.flatten()[::13][:12], torch.tensor(DIGITS_DDPM10),
                               **ACROSS_CPUS)
