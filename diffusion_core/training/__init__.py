"""Training: the ε-prediction objective (DDPM Algorithm 1, eq. 14) for any model and data shape.

``config`` holds the torch-free :class:`TrainConfig`; ``trainer`` the :class:`Trainer` loop.
Names load on first use.
"""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "LossKind": ".config",
    "TrainConfig": ".config",
    "Trainer": ".trainer",
    "TrainProgress": ".trainer",
    "TrainingDiverged": ".trainer",
    "stf_target": ".trainer",
    "train": ".trainer",
})
