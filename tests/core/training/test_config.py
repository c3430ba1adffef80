"""TrainConfig: validation and round trip (old dicts still load)."""

from __future__ import annotations

import pytest
import torch

from diffusion_core.training import (
    TrainConfig,
)


def _brute_stf(x_t, ab, ref):
    x, r, ab = x_t.flatten(1).double(), ref.flatten(1).double(), ab.double()[:, None]
    d2 = ((x[:, None, :] - ab.sqrt()[:, :, None] * r[None]) ** 2).sum(-1)
    w = torch.softmax(-d2 / (2 * (1 - ab)), dim=1)
    return ((x - ab.sqrt() * (w @ r)) / (1 - ab).sqrt()).view(x_t.shape)


@pytest.mark.parametrize("bad", [dict(steps=0), dict(lr=-1.0), dict(lr=float("nan")),
                                 dict(batch_size=0), dict(loss="l3"), dict(ema_decay=1.0)])
def test_bad_config(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


@pytest.mark.parametrize("field, bad", [("timestep_power", 0.2), ("timestep_power", 4.5),
                                        ("timestep_power", True), ("timestep_power", "2"),
                                        ("target", "x0"), ("stf_extra", -1),
                                        ("stf_extra", 70_000), ("stf_extra", 1.5)])
def test_new_options_are_validated(field, bad):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: bad})


def test_config_round_trip_and_old_dicts_load():
    cfg = TrainConfig(timestep_power=1.5, target="stf", stf_extra=512)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    old = TrainConfig().to_dict()
    for k in ("timestep_power", "target", "stf_extra"):  # a checkpoint written before them
        del old[k]
    assert TrainConfig.from_dict(old) == TrainConfig()
    assert TrainConfig().target == "eps" and TrainConfig().timestep_power == 1.0

