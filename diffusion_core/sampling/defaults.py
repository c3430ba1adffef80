"""The one rule for a model's sampler settings: preset, then recorded, then the user's choices.

Torch-free. The image sampler tab, the sample CLI and the 2D tab all call
:func:`resolve_sampler_settings`, so a checkpoint samples the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .. import presets
from .config import SamplerSettings


def resolve_sampler_settings(recorded: Mapping[str, Any] | None = None,
                             overrides: Mapping[str, Any] | None = None, *,
                             image: bool) -> SamplerSettings:
    """Sampler settings for a model.

    1. Start from the preset of the model's kind (images: DDIM 25 steps; 2D points: DDPM's
       full chain), see :mod:`diffusion_core.presets`.
    2. Apply the settings the checkpoint ``recorded`` (``training["sampler_defaults"]``);
       unknown keys or invalid values there are skipped.
    3. Apply the user's ``overrides`` (``None`` values are "not given"); an invalid value
       raises ``ValueError``. Choosing another sampler without a step count resets the
       steps to that sampler's default (DDPM: all T steps; DDIM: 25), never to the other
       sampler's count.

    ``steps`` may stay ``None`` (= the sampler's default); :meth:`SamplerSettings.sample_kwargs`
    turns it into a number for a given T.
    """
    base = presets.IMAGE_SAMPLER if image else presets.TOY.sampler
    settings = SamplerSettings.from_dict(dict(recorded or {}), base=base, strict=False)
    given = {k: v for k, v in dict(overrides or {}).items() if v is not None}
    if "sampler" in given and given["sampler"] != settings.sampler and "steps" not in given:
        settings = replace(settings, steps=None)
    return SamplerSettings.from_dict(given, base=settings, strict=True)
