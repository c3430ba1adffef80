"""ScheduleConfig: validation (torch-free), round trip."""

from __future__ import annotations

import subprocess
import sys

import pytest

from diffusion_core.schedule import (
    ScheduleConfig,
)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="linear", T=0), "T must"),
        (dict(kind="linear", T=10, beta_start=0.0), "beta_start"),
        (dict(kind="linear", T=10, beta_end=1.5), "beta_end"),
        (dict(kind="linear", T=10, beta_start=0.02, beta_end=0.01), "beta_end must be"),
        (dict(kind="wavy", T=10), "schedule kind"),
        (dict(kind="custom", T=2, custom_betas=(0.1, 1.0)), "custom_betas"),
        (dict(kind="custom", T=3, custom_betas=(0.1, 0.2)), "custom_betas"),
        (dict(kind="linear", T=10, beta_end=float("nan")), "beta_end"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScheduleConfig(**kwargs)
    with pytest.raises(ValueError, match=match):
        ScheduleConfig.from_dict(kwargs)


def test_unknown_key_is_refused_by_name():
    good = ScheduleConfig(kind="linear", T=10).to_dict()
    assert ScheduleConfig.from_dict(good) == ScheduleConfig(kind="linear", T=10)
    with pytest.raises(ValueError, match="unknown schedule config keys: \\['bogus'\\]"):
        ScheduleConfig.from_dict({**good, "bogus": 1})


def test_config_round_trip_and_betas():
    cfg = ScheduleConfig(kind="polynomial", T=70, power=3.0, scale_to_T=True)
    assert ScheduleConfig.from_dict(cfg.to_dict()) == cfg
    betas = cfg.betas()
    assert betas.shape == (70,) and str(betas.dtype) == "torch.float64"


def test_config_module_imports_without_torch():
    code = ("import sys; import diffusion_core.schedule.config as c; "
            "c.ScheduleConfig(kind='cosine', T=50); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)

