"""Checkpoints: ``model.safetensors`` (weights) + ``config.json`` (everything else).

A checkpoint directory holds exactly those two files (plus an optional ``MODEL_CARD.md``).
``config.json`` records the model config, the schedule config, the data set and a training
summary. Loading validates the JSON, rebuilds the model from its config and checks every
tensor name and shape. Nothing is ever unpickled: ``.pt``/``.pth``/``.ckpt``/``.bin`` files
are refused with a clear message.

:func:`read_config` needs no torch (the app lists checkpoints before torch is imported);
torch and safetensors are imported by the functions that touch weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .models.config import config_from_dict
from .schedule.config import ScheduleConfig

if TYPE_CHECKING:
    from torch import nn

    from .schedule import NoiseSchedule

FORMAT = "diffusion-lab-checkpoint"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode, CPU), its schedule and metadata."""

    model: nn.Module
    model_config: Any
    schedule: NoiseSchedule
    dataset: dict
    training: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def schedule_config(self) -> ScheduleConfig:
        return self.schedule.config


def save_checkpoint(directory: str | Path, model: nn.Module, model_config: Any,
                    schedule_config: ScheduleConfig, *, dataset: dict,
                    training: dict | None = None) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/config.json``; returns the dir.

    ``dataset`` describes the data (at least ``{"name": ...}``); ``training`` is a JSON-able
    summary (config, steps, wall time, final loss, …).
    """
    import torch
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if "name" not in dataset:
        raise ValueError("dataset must have a 'name'")
    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    config = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_config.to_dict(),
        "schedule": schedule_config.to_dict(),
        "dataset": dataset,
        "training": training or {},
    }
    text = json.dumps(config, indent=2, default=_json_default, allow_nan=False)
    (directory / CONFIG).write_text(text + "\n")
    return directory


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in config.json")


def read_config(directory: str | Path) -> dict:
    """Read and validate ``config.json`` without touching the weights."""
    directory = Path(directory)
    if directory.is_file():
        if directory.suffix.lower() in PICKLE_SUFFIXES:
            raise ValueError(f"{directory.name}: pickle files are never loaded (they can run "
                             "code); use a checkpoint directory with model.safetensors")
        directory = directory.parent
    if not directory.is_dir():
        raise ValueError(f"checkpoint directory {str(directory)!r} does not exist")
    if not (directory / WEIGHTS).is_file():
        pickles = [p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
        hint = (f" (found {', '.join(pickles)}: pickle files are never loaded)" if pickles
                else "")
        raise ValueError(f"{directory} has no {WEIGHTS}{hint}")
    try:
        config = json.loads((directory / CONFIG).read_text())
    except FileNotFoundError:
        raise ValueError(f"{directory} has no {CONFIG}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{directory / CONFIG} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{directory / CONFIG} is not a Diffusion Lab checkpoint config")
    if config.get("version") != VERSION:
        raise ValueError(f"unsupported checkpoint version {config.get('version')!r}")
    for key in ("model", "schedule", "dataset"):
        if not isinstance(config.get(key), dict):
            raise ValueError(f"{directory / CONFIG} lacks the '{key}' section")
    return config


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Load a checkpoint directory onto the CPU; raises ValueError on anything malformed."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .models import build_model
    from .schedule import NoiseSchedule

    directory = Path(directory)
    config = read_config(directory)
    directory = directory if directory.is_dir() else directory.parent
    model_config = config_from_dict(config["model"])
    schedule = NoiseSchedule(ScheduleConfig.from_dict(config["schedule"]))
    model = build_model(model_config)
    try:
        state = load_file(str(directory / WEIGHTS), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{directory / WEIGHTS} is not a valid safetensors file: {e}") from None
    expected = model.state_dict()
    missing, extra = set(expected) - set(state), set(state) - set(expected)
    if missing or extra:
        raise ValueError(f"weights do not match the model config: missing {sorted(missing)[:5]},"
                         f" unexpected {sorted(extra)[:5]}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise ValueError(f"weight {name} has shape {list(tensor.shape)}, the config needs "
                             f"{list(expected[name].shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"weight {name} contains NaN or inf")
    model.load_state_dict(state)
    model.eval()
    return Checkpoint(model=model, model_config=model_config, schedule=schedule,
                      dataset=config["dataset"], training=config.get("training", {}),
                      path=directory)


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN: store non-finite numbers as null."""
    return x if math.isfinite(x) else None
