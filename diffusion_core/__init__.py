"""Diffusion Lab's engine: schedules, forward process, samplers, models, training, data.

Index convention everywhere: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``;
t = 0 is one noising step and ᾱ at t = −1 is 1. This package never imports gradio.

The names a notebook needs are importable from here (they load on first use, so importing
the package itself is instant and torch-free)::

    from diffusion_core import NoiseSchedule, ScheduleConfig, MLP2D, MLPConfig, Trainer
"""

from ._lazy import lazy_exports

__version__ = "0.2.0"

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    # schedule
    "ScheduleConfig": ".schedule.config",
    "NoiseSchedule": ".schedule.noise_schedule",
    "make_betas": ".schedule.betas",
    # forward process
    "q_sample": ".forward",
    "q_sample_iterative": ".forward",
    "q_posterior": ".forward",
    "pred_x0_from_eps": ".forward",
    "pred_eps_from_x0": ".forward",
    "v_target": ".forward",
    "pred_x0_from_v": ".forward",
    "pred_eps_from_v": ".forward",
    "pred_v_from_eps": ".forward",
    "prediction_target": ".forward",
    "eps_from_prediction": ".forward",
    "prediction_from_eps": ".forward",
    "EpsPredictor": ".forward",
    "as_eps_predictor": ".forward",
    # sampling
    "SamplerSettings": ".sampling.config",
    "resolve_sampler_settings": ".sampling.defaults",
    "timesteps": ".sampling.spacing",
    "sample_final": ".sampling.loop",  # (the streaming chain: diffusion_core.sampling.sample;
    # the name ``sample`` here is the module behind ``python -m diffusion_core.sample``)
    "ddim_invert": ".sampling.invert",
    "ddim_invert_steps": ".sampling.invert",
    "GuidedModel": ".sampling.guidance",  # classifier-free guidance: ε_u + s·(ε_c − ε_u)
    # models
    "MLPConfig": ".models.mlp_config",
    "UNetConfig": ".models.unet_config",
    "MLP2D": ".models.mlp",
    "UNet": ".models.unet",
    "build_model": ".models.build",
    "count_parameters": ".models.build",
    # training
    "TrainConfig": ".training.config",
    "Trainer": ".training.trainer",
    # data
    "make_2d": ".data.toy2d",
    "load_image_dataset": ".data.registry",
    # checkpoints and presets
    "Checkpoint": ".checkpoints",
    "load_checkpoint": ".checkpoints",
    "save_checkpoint": ".checkpoints",
    "preset_for": ".presets",
    # exact denoisers and the likelihood bound
    "GaussianOracle": ".oracles.gaussian",
    "IdealDenoiser": ".oracles.ideal",
    "vlb_terms": ".evaluation.vlb",
})
