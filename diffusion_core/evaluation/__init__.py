"""Evaluation: generic distances, one sample-quality judge per data set, and the likelihood bound.

============== ===============================================================================
module         what it holds
============== ===============================================================================
``distances``  ``sliced_wasserstein`` (SW1), ``sw1_floor`` (SW1 between two fresh draws: "as
               good as data"), ``mean_nn_distance``, ``nearest_neighbour_ratio``, Fréchet
               distance between Gaussians (``frechet_distance``, ``…_from_features``)
``toy2d``      ``toy2d_quality`` → ``Toy2DQuality``: the 2D score the tab, bench and tests
               share; ``toy2d_floor``: its floor alone
``digits``     ``digit_quality``: classifier confidence, class entropy, Fréchet distance, near
               copies; the classifier is fitted only on the held-out digits
``gradients``  ``gradient_residual`` and ``two_colour_residual``: per-image RMS misfit of the
               exact two-colour models of :mod:`diffusion_core.data.synthetic`
``shapes``     ``shape_quality``: shape classifier confidence, class entropy, Fréchet distance,
               two-colour misfit, edge softness
``guidance``   guidance's fidelity–diversity measures: ``nearest_class_2d``, ``spread_ratio``,
               ``digit_guidance_scores`` (accuracy, spread, class-wise Fréchet distance);
               ``guided_samples``; ``gaussian_blur`` (the blur reference)
``vlb``        ``vlb_terms`` → ``VLBTerms``: the variational bound (DDPM eq. 5) term by term —
               decoder L_0, the KL terms, the prior L_T, total, bits/dim; the discrete
               decoder's bucket log-probabilities (``discretized_gaussian_log_probs``,
               ``…_log_likelihood``)
============== ===============================================================================

Every judge compares samples with data the generator never trained on (held-out digits, fresh
seeded draws). Importing this package imports no torch: each name below is imported from its
module on first use (:func:`diffusion_core._lazy.lazy_exports`).
"""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "frechet_distance": ".distances",
    "frechet_distance_from_features": ".distances",
    "mean_nn_distance": ".distances",
    "nearest_neighbour_ratio": ".distances",
    "sliced_wasserstein": ".distances",
    "sw1_floor": ".distances",
    "Toy2DQuality": ".toy2d",
    "toy2d_floor": ".toy2d",
    "toy2d_quality": ".toy2d",
    "DigitClassifier": ".digits",
    "DigitReference": ".digits",
    "default_digit_classifier": ".digits",
    "digit_quality": ".digits",
    "digit_reference": ".digits",
    "digits_to_8x8": ".digits",
    "gradient_residual": ".gradients",
    "two_colour_residual": ".gradients",
    "ShapeClassifier": ".shapes",
    "default_shape_classifier": ".shapes",
    "shape_masks": ".shapes",
    "shape_quality": ".shapes",
    "digit_guidance_scores": ".guidance",
    "gaussian_blur": ".guidance",
    "guided_samples": ".guidance",
    "nearest_class_2d": ".guidance",
    "spread_ratio": ".guidance",
    "VLBTerms": ".vlb",
    "discretized_gaussian_log_likelihood": ".vlb",
    "discretized_gaussian_log_probs": ".vlb",
    "vlb_terms": ".vlb",
})
