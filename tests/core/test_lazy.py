"""Lazy package exports: names load on first use, and the top-level API a notebook needs."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from diffusion_core._lazy import lazy_exports

API = ["NoiseSchedule", "ScheduleConfig", "make_betas", "q_sample", "sample_final", "MLP2D",
       "UNet", "Trainer", "load_checkpoint", "save_checkpoint", "MLPConfig", "UNetConfig",
       "TrainConfig", "SamplerSettings", "build_model", "make_2d", "ddim_invert",
       "IdealDenoiser", "GaussianOracle", "vlb_terms"]


def test_lazy_exports_resolve_alias_and_cache():
    all_, getattr_, dir_ = lazy_exports("json", {"dumps": "json", "d": "json:dumps"})
    import json

    assert all_ == ["d", "dumps"] and dir_() == ["d", "dumps"]
    assert getattr_("d") is json.dumps
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        getattr_("nope")


def test_top_level_api_names_resolve():
    import diffusion_core

    for name in API:
        assert name in diffusion_core.__all__, name
        assert not isinstance(getattr(diffusion_core, name), types.ModuleType), name


def test_sample_is_the_cli_module_not_a_function():
    """``diffusion_core.sample`` is the module of ``python -m diffusion_core.sample``; exporting
    the sampler function under that name made it depend on import order which one you got."""
    code = ("import types, diffusion_core; assert 'sample' not in diffusion_core.__all__; "
            "import diffusion_core.sample as m; assert isinstance(m, types.ModuleType); "
            "assert callable(diffusion_core.sample_final)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_package_does_not_import_torch():
    code = ("import sys, diffusion_core, diffusion_core.schedule, diffusion_core.models, "
            "diffusion_core.sampling, diffusion_core.training, diffusion_core.data, "
            "diffusion_core.evaluation, diffusion_core.workflows; "
            "assert 'torch' not in sys.modules, 'a package __init__ imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
