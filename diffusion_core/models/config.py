"""Any model config, and rebuilding one from its JSON dict (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .mlp_config import MLPConfig
from .pixel_mlp_config import PixelMLPConfig
from .unet_config import UNetConfig

ModelConfig = MLPConfig | UNetConfig | PixelMLPConfig

_CONFIG_KINDS: dict[str, type[MLPConfig] | type[UNetConfig] | type[PixelMLPConfig]] = {
    "mlp2d": MLPConfig,
    "unet": UNetConfig,
    "pixel_mlp": PixelMLPConfig,
}


def config_from_dict(d: Mapping[str, Any]) -> ModelConfig:
    """Rebuild a config from ``config.to_dict()`` output, choosing the class by ``d["kind"]``."""
    if not isinstance(d, Mapping) or "kind" not in d:
        raise ValueError(f"config dict needs a 'kind' key, one of {sorted(_CONFIG_KINDS)}")
    kind = d["kind"]
    if kind not in _CONFIG_KINDS:
        raise ValueError(f"kind must be one of {sorted(_CONFIG_KINDS)}, got {kind!r}")
    return _CONFIG_KINDS[kind].from_dict(dict(d))
