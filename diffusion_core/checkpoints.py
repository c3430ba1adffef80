"""Checkpoints: ``model.safetensors`` (weights) + ``config.json`` (everything else).

A checkpoint directory holds exactly those two files (plus an optional ``MODEL_CARD.md``).
``config.json`` records the model config, the schedule config, the data set, what the network
predicts (``"prediction"``: ``"eps"``, ``"x0"`` or ``"v"``; a config without it — every
checkpoint written before the key existed — is ``"eps"``) and a training summary. A
class-conditional model records ``"num_classes": K`` in its model config (a config without the
key — every checkpoint written before it existed — is unconditional, K = 0) and its class names
in ``dataset["classes"]``; it is sampled with classifier-free guidance,
ε̃ = ε_u + s·(ε_c − ε_u) (s = 0 unconditional, s = 1 conditional, s > 1 guides harder;
:class:`~diffusion_core.sampling.guidance.GuidedModel`). Loading
validates the JSON, rebuilds the model from its config and checks every tensor name and shape;
:attr:`Checkpoint.model` is always an ε-predictor that samplers call as they are (an x0- or
v-network comes wrapped, :func:`~diffusion_core.forward.as_eps_predictor`). Nothing is ever
unpickled: ``.pt``/``.pth``/``.ckpt``/``.bin`` files are refused with a clear message.

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
from .training.config import PREDICTIONS

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
    """A loaded checkpoint: the model (eval mode, CPU), its schedule and metadata.

    ``model`` is an ε-predictor ``(x_t, t) → ε̂`` whatever :attr:`prediction` the network was
    trained for (an x0- or v-network is wrapped in an
    :class:`~diffusion_core.forward.EpsPredictor`); :attr:`network` is the bare network.
    """

    model: nn.Module
    model_config: Any
    schedule: NoiseSchedule
    dataset: dict
    training: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def schedule_config(self) -> ScheduleConfig:
        return self.schedule.config

    @property
    def network(self) -> nn.Module:
        """The network whose weights the checkpoint holds (``model`` without the conversion)."""
        from .forward import unwrap_network

        return unwrap_network(self.model)[0]

    @property
    def num_classes(self) -> int:
        """K for a class-conditional model (labels 0..K−1; K is the null class), else 0."""
        return int(getattr(self.model_config, "num_classes", 0))

    @property
    def class_names(self) -> tuple[str, ...]:
        """The names of the K classes in label order (``dataset["classes"]``, else "0".."K−1")."""
        names = self.dataset.get("classes") if isinstance(self.dataset, dict) else None
        if isinstance(names, list) and len(names) == self.num_classes:
            return tuple(str(n) for n in names)
        return tuple(str(k) for k in range(self.num_classes))

    @property
    def prediction(self) -> str:
        """What :attr:`network` predicts: ``"eps"``, ``"x0"`` or ``"v"`` (read off ``model``)."""
        from .forward import unwrap_network

        return unwrap_network(self.model)[1]


def save_checkpoint(directory: str | Path, model: nn.Module, model_config: Any,
                    schedule_config: ScheduleConfig, *, dataset: dict,
                    training: dict | None = None, prediction: str | None = None) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/config.json``; returns the dir.

    ``dataset`` describes the data (at least ``{"name": ...}``; for a class-conditional model
    optionally ``"classes"``, its K class names in label order); ``training`` is a JSON-able
    summary (config, steps, wall time, final loss, …). ``prediction`` is what ``model``
    predicts (default ``"eps"``); an :class:`~diffusion_core.forward.EpsPredictor` (what
    ``Trainer.sampling_model`` gives for x0/v) is unwrapped and its prediction recorded. A
    ``prediction`` that contradicts the wrapper or ``training["config"]`` is refused.
    """
    import torch
    from safetensors.torch import save_file

    from .forward import unwrap_network

    directory = Path(directory)
    if "name" not in dataset:
        raise ValueError("dataset must have a 'name'")
    network, wrapped = unwrap_network(model)
    if prediction is None:
        prediction = wrapped
    elif network is not model and prediction != wrapped:
        raise ValueError(f"prediction {prediction!r} contradicts the model, an EpsPredictor "
                         f"for {wrapped!r}")
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be eps, x0 or v; got {prediction!r}")
    recorded = (training or {}).get("config")
    trained = (recorded.get("prediction", prediction) if isinstance(recorded, dict)
               else prediction)
    if trained != prediction:
        raise ValueError(f"prediction {prediction!r} contradicts the training config's "
                         f"{trained!r}")
    classes = dataset.get("classes")
    k = int(getattr(model_config, "num_classes", 0))
    if classes is not None and (not isinstance(classes, (list, tuple)) or len(classes) != k):
        raise ValueError(f"dataset['classes'] must list the model's {k} classes; got {classes!r}")
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in network.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    config = {
        "format": FORMAT,
        "version": VERSION,
        "model": model_config.to_dict(),
        "schedule": schedule_config.to_dict(),
        "prediction": prediction,
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
    if config.get("prediction", "eps") not in PREDICTIONS:
        raise ValueError(f"{directory / CONFIG}: prediction must be eps, x0 or v; got "
                         f"{config['prediction']!r}")
    return config


def prediction_of(config: dict) -> str:
    """What a checkpoint's network predicts, from its ``config.json`` (``"eps"`` if unsaid)."""
    return config.get("prediction", "eps")


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Load a checkpoint directory onto the CPU; raises ValueError on anything malformed."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .forward import as_eps_predictor
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
    return Checkpoint(model=as_eps_predictor(model, schedule, prediction_of(config)),
                      model_config=model_config, schedule=schedule, dataset=config["dataset"],
                      training=config.get("training", {}), path=directory)


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN: store non-finite numbers as null."""
    return x if math.isfinite(x) else None
