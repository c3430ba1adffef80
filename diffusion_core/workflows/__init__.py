"""UI-free sessions that the tabs, the CLIs, the benchmarks and the tests all drive.

Each module runs one demo or job and returns plain records (frozen dataclasses, numpy arrays,
tensors); none imports gradio or plotly. Index convention: t ∈ {0, …, T−1}; ᾱ at t = −1 is 1.
Names load on first use (no torch import until then).

==================  ==========================================================================
module              what it drives
==================  ==========================================================================
``forward_demo``    tab 2: one image x0, one fixed ε, x_t at any t (DDPM eq. 4) and eq. 2 vs 4
``toy2d``           tab 3: one user's 2D model (``Toy2DSession``: data, schedule, trainer), the
                    restart rule, the step-cost guard, the vector field, sampling with frames
                    and the quality score, the forward-diffusion frames
``toy2d_why``       tab 3's "why it works": the network's ε-error against the ideal
                    denoiser by t, the likelihood bound of both on the same points (in pieces)
``sampler_lab``     tabs 3 and 4's sampler lab: samplers on one x_T side by side (paths, NFE),
                    steps-vs-quality sweeps with a judge, DDIM inversion, slerp paths
``image_why``       tab 4's "why it works": a checkpoint's training data, the U-Net's and the
                    ideal denoiser's x̂0 on the same x_t, the bound in bits/dim (in batches)
``budget``          :class:`Budget`: the step and wall-time caps of one job (the app's limits)
``image_sampling``  tab 4 and the sample CLI: a checkpoint's sampler settings, one run's kept
                    (x_t, x̂0) frames streamed from the reverse chain (guided toward classes
                    when asked), its PNG and GIF files
``guidance2d``      tab 3's guidance view: the unconditional, conditional and guided fields
                    at t, guided samples per class, accuracy and spread against s
``image_guidance``  tab 4's guidance section: the class × scale grid in one batched chain,
                    accuracy and spread against the guidance scale s
``image_train``     tab 5: one learner's image model (``ImageTrainSession``: data, network,
                    schedule, recipe, trainer), the restart rule, the panel (x_t, x̂0, DDIM
                    samples of a fixed batch), the checkpoint with its model card
==================  ==========================================================================
"""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "Budget": ".budget",
    # forward_demo (its functions are reached as forward_demo.NAME: compare, strip, … are too
    # generic here)
    "BUILTIN_IMAGES": ".forward_demo",
    "CompareStats": ".forward_demo",
    "Comparison": ".forward_demo",
    "ForwardParts": ".forward_demo",
    "FrameStats": ".forward_demo",
    "Histogram": ".forward_demo",
    "RouteStats": ".forward_demo",
    "Strip": ".forward_demo",
    # toy2d (its functions are reached as toy2d.NAME: train, sample, … are too generic here)
    "DataSpec": ".toy2d",
    "ForwardFrames": ".toy2d",
    "Toy2DSampling": ".toy2d",
    "Toy2DSamples": ".toy2d",
    "Toy2DSession": ".toy2d",
    "VectorField": ".toy2d",
    # image_sampling (its functions are reached as image_sampling.NAME)
    "Progress": ".image_sampling",
    "SamplingRun": ".image_sampling",
    # image_train (its functions are reached as image_train.NAME)
    "ImageTrainSession": ".image_train",
    "TrainPanel": ".image_train",
})
