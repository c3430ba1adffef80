"""Sampler settings: validation, the registry's options, what ``sample`` receives (no torch)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from diffusion_core.sampling.config import (
    DDIM_DEFAULT_STEPS,
    SAMPLERS,
    SamplerSettings,
    check_options,
    sampler_info,
)


def test_registry_states_which_options_apply():
    assert SAMPLERS["ddpm"].options == ("variance",)
    assert SAMPLERS["ddim"].options == ("eta",)
    assert SAMPLERS["ddpm"].default_steps(1000) == 1000
    assert SAMPLERS["ddim"].default_steps(1000) == DDIM_DEFAULT_STEPS
    assert SAMPLERS["ddim"].default_steps(10) == 10
    dpm = SAMPLERS["dpmpp_2m"]
    assert (dpm.label, dpm.options, dpm.multistep) == ("DPM-Solver++ 2M", (), True)
    assert dpm.default_steps(1000) == DDIM_DEFAULT_STEPS and dpm.default_steps(10) == 10
    assert not SAMPLERS["ddpm"].multistep and not SAMPLERS["ddim"].multistep
    with pytest.raises(ValueError, match="sampler must be one of ddpm, ddim, dpmpp_2m; "):
        sampler_info("euler")


@pytest.mark.parametrize("kw, match", [
    (dict(sampler="euler"), "sampler must be"), (dict(steps=0), "steps"),
    (dict(steps=2.5), "steps"), (dict(steps=True), "steps"), (dict(eta=1.5), "eta"),
    (dict(eta=float("nan")), "eta"), (dict(spacing="odd"), "spacing"),
    (dict(variance="big"), "variance"), (dict(clip_x0=1), "clip_x0"),
])
def test_settings_validate_every_field(kw, match):
    with pytest.raises(ValueError, match=match):
        SamplerSettings(**kw)


def test_sample_kwargs_pass_only_the_options_that_apply():
    ddpm = SamplerSettings(sampler="ddpm", steps=None, eta=0.7, variance="beta")
    assert ddpm.sample_kwargs(200) == dict(sampler="ddpm", steps=200, spacing="trailing",
                                           clip_x0=False, variance="beta")
    ddim = SamplerSettings(sampler="ddim", steps=None, eta=0.7, variance="beta", clip_x0=True)
    assert ddim.sample_kwargs(200) == dict(sampler="ddim", steps=DDIM_DEFAULT_STEPS,
                                           spacing="trailing", clip_x0=True, eta=0.7)
    assert SamplerSettings(steps=5000).sample_kwargs(1000)["steps"] == 1000
    dpm = SamplerSettings(sampler="dpmpp_2m", steps=None, eta=0.7, variance="beta")
    assert dpm.sample_kwargs(200) == dict(sampler="dpmpp_2m", steps=DDIM_DEFAULT_STEPS,
                                          spacing="trailing", clip_x0=False)


def test_describe_names_what_applies():
    assert SamplerSettings(sampler="ddim", steps=25, eta=0.5).describe(1000) == \
        "DDIM, 25 of 1000 steps (trailing), η = 0.5"
    assert SamplerSettings(sampler="ddpm", steps=None, variance="beta",
                           clip_x0=True).describe(200) == "DDPM, 200 steps, σ² = β, x̂0 clipped"
    assert SamplerSettings(sampler="dpmpp_2m", steps=10, eta=0.5).describe(1000) == \
        "DPM-Solver++ 2M, 10 of 1000 steps (trailing)"


def test_check_options():
    check_options("ddpm", {"eta": 0.0, "variance": "beta"})
    with pytest.raises(ValueError, match="does not apply to DDPM"):
        check_options("ddpm", {"eta": 0.1})
    with pytest.raises(ValueError, match="unknown sampler option"):
        check_options("ddim", {"s_churn": 1})
    check_options("dpmpp_2m", {"eta": 0.0, "variance": "beta_tilde"})
    with pytest.raises(ValueError, match="does not apply to DPM-Solver\\+\\+ 2M"):
        check_options("dpmpp_2m", {"variance": "beta"})


def test_from_dict_strict_and_lenient():
    base = SamplerSettings(sampler="ddpm", steps=None)
    assert SamplerSettings.from_dict({"eta": 2.0, "odd": 1}, base=base, strict=False) == base
    with pytest.raises(ValueError, match="unknown sampler setting"):
        SamplerSettings.from_dict({"odd": 1})
    with pytest.raises(ValueError, match="eta"):
        SamplerSettings.from_dict({"eta": 2.0})
    assert SamplerSettings.from_dict(base.kwargs()) == base


def test_config_imports_without_torch():
    code = ("import sys; from diffusion_core.sampling.config import SamplerSettings; "
            "SamplerSettings(); import diffusion_core.sampling.defaults; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
