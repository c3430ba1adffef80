"""Reverse-process samplers: DDPM (Ho et al. 2020), DDIM (Song et al. 2020), DPM-Solver++ 2M
(Lu et al. 2022), and DDIM inversion.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. ``config`` (names, options, the registry,
:class:`SamplerSettings`; torch-free) · ``defaults`` (the one rule for a model's settings) ·
``spacing`` (visited timesteps, built once) · ``ddpm`` / ``ddim`` / ``dpm_solver`` (one
``step`` each, one signature; a multistep one also takes ``previous``) · ``loop`` (the
streaming :func:`sample`) · ``invert`` (DDIM run upwards: data → latent) · ``guidance``
(classifier-free guidance, ε̃ = ε_u + s·(ε_c − ε_u), as a model wrapper every sampler runs).
Names load on first use (no torch import until then).
"""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "DDIM_DEFAULT_STEPS": ".config",
    "GUIDANCE_DEFAULT": ".config",
    "GUIDANCE_MAX": ".config",
    "NEUTRAL_OPTIONS": ".config",
    "SAMPLERS": ".config",
    "SAMPLER_NAMES": ".config",
    "SPACINGS": ".config",
    "VARIANCES": ".config",
    "SamplerInfo": ".config",
    "SamplerName": ".config",
    "SamplerSettings": ".config",
    "Spacing": ".config",
    "Variance": ".config",
    "check_options": ".config",
    "sampler_info": ".config",
    "resolve_sampler_settings": ".defaults",
    "evenly_spaced": ".spacing",
    "time_pairs": ".spacing",
    "timesteps": ".spacing",
    "PreviousStep": ".step",
    "StepOutput": ".step",
    "ddpm_step": ".ddpm:step",
    "ddim_step": ".ddim:step",
    "dpmpp_2m_step": ".dpm_solver:step",
    "SampleStep": ".loop",
    "sample": ".loop",
    "sample_final": ".loop",
    "step_function": ".loop",
    "InversionStep": ".invert",
    "ddim_invert": ".invert",
    "ddim_invert_steps": ".invert",
    "inversion_pairs": ".invert",
    "GuidedEps": ".guidance",
    "GuidedModel": ".guidance",
    "guidance_mix": ".guidance",
})
