"""The one rule for a model's sampler settings: preset → recorded → the user's choices."""

from __future__ import annotations

import pytest

from diffusion_core.presets import IMAGE_SAMPLER, TOY
from diffusion_core.sampling.config import SamplerSettings
from diffusion_core.sampling.defaults import resolve_sampler_settings


def test_no_record_gives_the_preset_of_the_model_kind():
    assert resolve_sampler_settings(None, image=True) == IMAGE_SAMPLER
    assert resolve_sampler_settings({}, image=False) == TOY.sampler
    assert resolve_sampler_settings(None, image=False).sample_kwargs(200)["steps"] == 200


def test_record_wins_over_preset_and_bad_record_values_are_skipped():
    recorded = dict(sampler="ddpm", steps=100, spacing="leading", eta=7.0, extra="x")
    got = resolve_sampler_settings(recorded, image=True)
    assert (got.sampler, got.steps, got.spacing) == ("ddpm", 100, "leading")
    assert got.eta == IMAGE_SAMPLER.eta  # 7.0 is invalid: skipped, the preset's value stays
    assert got.clip_x0 == IMAGE_SAMPLER.clip_x0


def test_overrides_win_and_none_means_not_given():
    rec = SamplerSettings(sampler="ddim", steps=40, spacing="leading").kwargs()
    got = resolve_sampler_settings(rec, dict(steps=None, eta=0.5, spacing=None), image=True)
    assert (got.sampler, got.steps, got.eta, got.spacing) == ("ddim", 40, 0.5, "leading")
    with pytest.raises(ValueError, match="eta"):
        resolve_sampler_settings(rec, dict(eta=3.0), image=True)


def test_switching_sampler_without_steps_takes_that_samplers_default():
    rec = SamplerSettings(sampler="ddim", steps=25).kwargs()
    ddpm = resolve_sampler_settings(rec, dict(sampler="ddpm"), image=True)
    assert ddpm.steps is None and ddpm.sample_kwargs(1000)["steps"] == 1000
    back = resolve_sampler_settings(SamplerSettings(sampler="ddpm", steps=None).kwargs(),
                                    dict(sampler="ddim"), image=True)
    assert back.sample_kwargs(1000)["steps"] == 25  # an empty Steps box never means T for DDIM
    kept = resolve_sampler_settings(rec, dict(sampler="ddpm", steps=50), image=True)
    assert kept.steps == 50
    same = resolve_sampler_settings(rec, dict(sampler="ddim"), image=True)
    assert same.steps == 25
