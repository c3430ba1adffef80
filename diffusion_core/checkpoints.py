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

A checkpoint travels as one zip (the two files + a generated ``MODEL_CARD.md``):
:func:`export_zip` writes it, :func:`import_zip` checks everything before it loads it
(:mod:`diffusion_core.safezip` for the zip itself), :func:`model_card_md` writes the card.
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


# ---------------------------------------------------------------------------------------------
# Checkpoint zip: take a model home (export_zip) and bring it back (import_zip)
# ---------------------------------------------------------------------------------------------

CARD = "MODEL_CARD.md"
ZIP_MAX_BYTES = 128 * 2**20
"""Largest checkpoint zip contents :func:`import_zip` accepts (≈ 33 M float32 parameters)."""
ZIP_MAX_MEMBERS = 16
"""Most entries (files, folders, ``__MACOSX/`` metadata) a checkpoint zip may hold."""
_ZIP_CONFIG_MAX_BYTES = 2**20
_ZIP_CARD_MAX_BYTES = 256 * 2**10
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed member times: the same checkpoint gives the same bytes
_FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})
_SAFETENSORS_HEADER_MAX = 16 * 2**20


def _md(value: Any, limit: int = 200) -> str:
    """A value as one line of Markdown table text (``|`` escaped, no newlines or backticks)."""
    s = " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _num(d: Any, key: str) -> float | None:
    """``d[key]`` if ``d`` is a dict and it is a finite number (not a bool), else None."""
    v = d.get(key) if isinstance(d, dict) else None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return v if ok else None


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s" if s < 600 else f"{s / 60:.1f} min"


_MODEL_WORDS = {
    "unet": "a U-Net (a convolutional network that looks at the image at several scales)",
    "pixel_mlp": "a pixel MLP (all pixels and the time step, through one hidden layer)",
    "mlp2d": "a small MLP (a fully connected network on 2D points)",
}


def model_card_md(config: dict, quality: dict | None = None) -> str:
    """A short ``MODEL_CARD.md`` for a checkpoint's ``config.json`` dict (torch-free).

    Written for learners: what the model makes, how it learned and how good it is, in plain
    words first; then a table of developer details (model config, schedule, prediction, recipe,
    wall time, default sampler, command). ``quality`` is the measured quality, metric name →
    value (an optional ``"summary"`` sentence is shown first; ``None``: "not measured"). A
    field that is missing or of the wrong type is left out, so any config gives a card.
    """
    cfg = config if isinstance(config, dict) else {}
    model = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    sched = cfg.get("schedule") if isinstance(cfg.get("schedule"), dict) else {}
    data = cfg.get("dataset") if isinstance(cfg.get("dataset"), dict) else {}
    train = cfg.get("training") if isinstance(cfg.get("training"), dict) else {}
    recipe = train.get("config") if isinstance(train.get("config"), dict) else {}
    kind = model.get("kind")
    name = _md(data.get("name", "your data"), 60)
    c, s = _num(model, "channels"), _num(model, "image_size")
    if kind == "mlp2d":
        makes = "2D points"
    elif c is not None and s is not None:
        colour = "greyscale" if c == 1 else "colour"
        makes = f"{colour} {int(s)}×{int(s)} images ({int(c)}×{int(s)}×{int(s)} values in [−1, 1])"
    else:
        makes = "samples"
    n = _num(data, "n")
    classes = data.get("classes")
    lines = [f"# Diffusion model trained on “{name}”", ""]
    what = (f"**What it makes.** {makes[0].upper()}{makes[1:]} like the ones in the "
            f"“{name}” data set")
    what += f" it learned from ({int(n):,} examples)" if n is not None else " it learned from"
    if isinstance(classes, list) and classes:
        shown = ", ".join(_md(k, 20) for k in classes[:12]) + (", …" if len(classes) > 12 else "")
        what += (f". It is class-conditional: you can ask for one of its {len(classes)} classes "
                 f"({shown})")
    lines += [what + ".", ""]
    params, steps = _num(train, "parameters"), _num(train, "steps")
    wall = _num(train, "wall_time_s")
    network = _MODEL_WORDS.get(kind, f"a {_md(kind, 30)} network")
    how = f"**How it learned.** {network[0].upper()}{network[1:]}"
    if params is not None:
        how += f" with {int(params):,} numbers to tune (parameters)"
    how += " practised removing noise from those examples"
    if steps is not None:
        how += f" for {int(steps):,} training steps"
    if wall is not None:
        where = f"{int(train['threads'])} CPU threads" if _num(train, "threads") else "this machine"
        if isinstance(train.get("device"), str) and train["device"] != "cpu":
            where = _md(train["device"], 20)
        how += f", in {_seconds(wall)} on {where}"
    T = _num(sched, "T")
    if T is not None:
        how += (f". Sampling starts from pure noise and removes it step by step; the noise "
                f"schedule ({_md(sched.get('kind', '?'), 20)}) has T = {int(T)} steps")
    lines += [how + ".", ""]
    if quality:
        summary = quality.get("summary") if isinstance(quality.get("summary"), str) else None
        good = f"**How good it is.** {_md(summary, 400)}" if summary else \
            "**How good it is.** Measured quality (details below):"
        metrics = [f"{_md(k, 40)} = {_fmt(v)}" for k, v in quality.items() if k != "summary"]
        if metrics and not summary:
            good += " " + "; ".join(metrics[:8])
        lines += [good + ("" if good.endswith(".") else "."), ""]
    else:
        lines += ["**How good it is.** Not measured: look at its samples, and compare them with "
                  "the training images.", ""]
    lines += ["**Use it again.** Upload this zip in Diffusion Lab to sample from the model, or "
              "unzip it and run `python -m diffusion_core.sample --checkpoint FOLDER`. "
              f"`{WEIGHTS}` holds only numbers (no code, nothing is unpickled); "
              f"`{CONFIG}` holds everything else.", ""]
    rows: list[tuple[str, str]] = []
    if model:
        rows.append(("model", f"`{_md(json.dumps(model, default=str), 400)}`"))
    if params is not None:
        rows.append(("parameters", f"{int(params):,}"))
    if sched:
        extra = " (custom β)" if sched.get("custom_betas") else ""
        rows.append(("schedule", f"{_md(sched.get('kind', '?'), 20)}, T = "
                                 f"{_md(sched.get('T', '?'), 10)}{extra}"))
    rows.append(("prediction", _md(cfg.get("prediction", "eps"), 10)))
    if data:
        shape = data.get("shape")
        shape_s = "×".join(_md(v, 6) for v in shape) if isinstance(shape, list) else None
        rows.append(("data set", ", ".join(x for x in (
            name, f"{int(n):,} examples" if n is not None else None, shape_s) if x)))
    keys = (("batch_size", "batch"), ("lr", "lr"), ("lr_schedule", "lr schedule"),
            ("warmup_steps", "warm-up"), ("ema_decay", "EMA"), ("loss", "loss"),
            ("target", "target"), ("seed", "seed"))
    recipe_s = ", ".join(f"{label} {_md(recipe[k], 20)}" for k, label in keys if k in recipe)
    if steps is not None or recipe_s:
        rows.append(("training", ", ".join(x for x in (
            f"{int(steps):,} steps" if steps is not None else "", recipe_s) if x)))
    loss = _num(train, "final_loss")
    if loss is not None:
        rows.append(("final loss", f"{loss:.4g}"))
    if wall is not None:
        run = [_seconds(wall)]
        for k, label in (("device", "device"), ("threads", "threads"),
                         ("world_size", "processes"), ("global_batch_size", "global batch"),
                         ("torch", "torch")):
            if k in train:
                run.append(f"{label} {_md(train[k], 30)}")
        rows.append(("wall time", ", ".join(run)))
    sampler = train.get("sampler_defaults")
    if isinstance(sampler, dict):
        rows.append(("default sampler", ", ".join(f"{_md(k, 20)} {_md(v, 20)}"
                                                  for k, v in sampler.items())))
    if isinstance(train.get("command"), str):
        rows.append(("command", f"`{_md(train['command'], 400)}`"))
    for k, v in (quality or {}).items():
        if k != "summary":
            rows.append((f"quality: {_md(k, 40)}", _fmt(v)))
    rows.append(("files", f"`{WEIGHTS}` (weights), `{CONFIG}` (everything else)"))
    lines += ["## Developer details", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:.4g}"
    return _md(v, 60)


def export_zip(directory_or_checkpoint: str | Path | Checkpoint, out_path: str | Path, *,
               card_md: str | None = None, quality: dict | None = None) -> Path:
    """Write one zip holding ``model.safetensors``, ``config.json`` and ``MODEL_CARD.md``.

    ``directory_or_checkpoint``: a checkpoint directory (validated with
    :func:`load_checkpoint` first, so what is exported imports again) or a loaded
    :class:`Checkpoint` (its in-memory weights and records are saved, as
    :func:`save_checkpoint` would). The card is ``card_md`` if given, else the directory's own
    ``MODEL_CARD.md`` if it has one and no ``quality`` is given, else
    :func:`model_card_md` ``(config, quality)``. Members are written at a fixed time, the
    weights stored (deflate saves ≈ 7 % of float32 weights for ≈ 0.5 s per 4 MB), so the same
    checkpoint gives the same bytes. Written to a temporary name, then renamed; returns
    ``out_path``. A checkpoint larger than :data:`ZIP_MAX_BYTES` is refused (it would not
    import).
    """
    import os
    import tempfile
    import zipfile

    out = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(directory_or_checkpoint, Checkpoint):
            ck = directory_or_checkpoint
            directory = save_checkpoint(Path(tmp) / "ck", ck.model, ck.model_config,
                                        ck.schedule_config, dataset=ck.dataset,
                                        training=ck.training)
        else:
            directory = Path(directory_or_checkpoint)
            if directory.is_file():
                directory = directory.parent
            load_checkpoint(directory)  # every check import_zip makes
        config = read_config(directory)
        if card_md is None and quality is None and (directory / CARD).is_file():
            card_md = (directory / CARD).read_text(encoding="utf-8")
        if card_md is None:
            card_md = model_card_md(config, quality)
        card = card_md.encode("utf-8")
        size = (directory / WEIGHTS).stat().st_size + (directory / CONFIG).stat().st_size
        if size + len(card) > ZIP_MAX_BYTES or len(card) > _ZIP_CARD_MAX_BYTES:
            raise ValueError(f"the checkpoint is {size / 2**20:.0f} MB, more than the "
                             f"{ZIP_MAX_BYTES // 2**20} MB a checkpoint zip may hold")
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(out.name + ".part")
        try:
            with zipfile.ZipFile(part, "w") as zf:
                for name, source, method in (
                        (CONFIG, directory / CONFIG, zipfile.ZIP_DEFLATED),
                        (WEIGHTS, directory / WEIGHTS, zipfile.ZIP_STORED),
                        (CARD, None, zipfile.ZIP_DEFLATED)):
                    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                    info.compress_type = method
                    info.external_attr = 0o644 << 16
                    if source is None:
                        zf.writestr(info, card)
                    else:
                        with source.open("rb") as src, zf.open(info, "w") as dst:
                            while chunk := src.read(1 << 20):
                                dst.write(chunk)
            os.replace(part, out)
        finally:
            part.unlink(missing_ok=True)
    return out


def _pickle_like(parts: tuple[str, ...]) -> bool:
    """A member that is (or is part of) a pickle: ``.pt``/``.pkl``/… or torch.save's data.pkl."""
    return Path(parts[-1]).suffix.lower() in PICKLE_SUFFIXES or parts[-1] == "data.pkl"


def _safetensors_header(path: Path, label: str) -> dict:
    """The JSON header of a safetensors file (names → dtype, shape, offsets), read without
    touching the tensor data; ``ValueError`` if it is not one."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= min(size - 8, _SAFETENSORS_HEADER_MAX):
            raise ValueError(f"{label}: {WEIGHTS} is not a valid safetensors file")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"{label}: {WEIGHTS} is not a valid safetensors file (bad header)"
                         ) from None
    if not isinstance(header, dict):
        raise ValueError(f"{label}: {WEIGHTS} is not a valid safetensors file (bad header)")
    header.pop("__metadata__", None)
    for k, v in header.items():
        if (not isinstance(v, dict) or not isinstance(v.get("shape"), list)
                or not all(isinstance(d, int) and d >= 0 for d in v["shape"])):
            raise ValueError(f"{label}: {WEIGHTS} entry {k!r} is malformed")
    return header


def _check_weights_match(directory: Path, model_config: Any, label: str) -> None:
    """Compare every tensor name, shape and dtype in the weights file's header with the model
    its config describes, built on the ``meta`` device (no memory, no data read): a config
    naming a huge model never allocates it."""
    import torch

    from .models import build_model

    header = _safetensors_header(directory / WEIGHTS, label)
    with torch.device("meta"):
        expected = build_model(model_config).state_dict()
    missing, extra = set(expected) - set(header), set(header) - set(expected)
    if missing or extra:
        raise ValueError(f"{label}: the weights do not match the model config: missing "
                         f"{sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    for name, want in expected.items():
        got = header[name]
        if list(got["shape"]) != list(want.shape):
            raise ValueError(f"{label}: weight {name} has shape {got['shape']}, the config "
                             f"needs {list(want.shape)}")
        if want.is_floating_point() and got.get("dtype") not in _FLOAT_DTYPES:
            raise ValueError(f"{label}: weight {name} is stored as {got.get('dtype')!r}, not "
                             f"as floating point")


def _unpathed(error: Exception, dest: Path) -> str:
    """An error message without the server's folder names (the user sees it)."""
    text = str(error)
    for name in (CONFIG, WEIGHTS):
        text = text.replace(str(dest / name), name)
    return text.replace(f"{dest}: ", "").replace(str(dest), "the zip")


def import_zip(path: str | Path, dest_dir: str | Path, *,
               max_bytes: int = ZIP_MAX_BYTES) -> Checkpoint:
    """Unpack a checkpoint zip (as :func:`export_zip` writes) into ``dest_dir`` and load it.

    Never unpickles anything and never trusts the zip: every refusal is a ``ValueError`` whose
    message starts with the file name (the UI shows it). Refused: a file that is not a zip; a
    zip with a pickle (``.pt``, ``.bin``, torch.save's ``data.pkl``, …) or any member but
    ``model.safetensors``, ``config.json`` and an optional ``MODEL_CARD.md`` (at the top or
    in one folder; ``__MACOSX/`` and dotfiles are skipped); path traversal (``../``, absolute
    names), symlinks, encrypted or duplicate members; more than :data:`ZIP_MAX_MEMBERS`
    entries or more than ``max_bytes`` unpacked (zip bombs); a config that is not JSON, not a
    Diffusion Lab config or names an unknown model kind; weights whose names, shapes or dtypes
    do not match the model the config describes (compared on the safetensors header, before
    anything is loaded); NaN/inf weights (:func:`load_checkpoint`).

    ``dest_dir`` must be missing or empty; on refusal whatever was written there is removed.
    Returns the :class:`Checkpoint` (``path`` = ``dest_dir``, which keeps the card).
    """
    import shutil

    from .safezip import (
        NotAZipError,
        ZipLimits,
        checked_members,
        copy_member,
        member_parts,
        open_zip,
        read_member,
    )

    path, dest = Path(path), Path(dest_dir)
    label = path.name
    limits = ZipLimits(ZIP_MAX_MEMBERS, max_bytes, max_bytes)
    if not path.is_file():
        raise ValueError(f"{label}: no such file")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ValueError(f"{label} is a pickle file, not a checkpoint zip: pickles are never "
                         "loaded (they can run code)")
    try:  # (listing more entries than a checkpoint has, to say "pickle" about torch.save zips)
        zf = open_zip(path, ZipLimits(4096, max_bytes, max_bytes))
    except NotAZipError:
        raise ValueError(f"{label} is not a zip file: upload the .zip that Diffusion Lab "
                         f"exported ({WEIGHTS} + {CONFIG} + {CARD})") from None
    expected = f"a checkpoint zip holds only {WEIGHTS}, {CONFIG} and {CARD}"
    with zf:
        for info in zf.infolist():
            try:
                parts = member_parts(info.filename)
            except ValueError:
                continue  # refused below, with the reason
            if parts and _pickle_like(parts):
                raise ValueError(f"{label} holds {'/'.join(parts)}, part of a pickle (a "
                                 "PyTorch .pt/.bin file): pickles are never loaded (they can "
                                 f"run code); {expected}")
        members, _ = checked_members(zf, limits, label=label)
        folders = {p[:-1] for _, p in members}
        found = {p[-1]: info for info, p in members}
        unexpected = [("/".join(p)) for _, p in members if p[-1] not in (WEIGHTS, CONFIG, CARD)]
        if unexpected:
            raise ValueError(f"{label} holds {unexpected[0]!r}: {expected}")
        if len(folders) > 1 or any(len(f) > 1 for f in folders) or len(found) != len(members):
            raise ValueError(f"{label}: the checkpoint files must sit together at the top or "
                             "in one folder")
        for need in (CONFIG, WEIGHTS):
            if need not in found:
                raise ValueError(f"{label} has no {need}: {expected}")
        raw = read_member(zf, found[CONFIG], _ZIP_CONFIG_MAX_BYTES, label=label)
        try:
            json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"{label}: {CONFIG} is not valid JSON ({type(e).__name__})"
                             ) from None
        card = None
        if CARD in found:
            try:
                card = read_member(zf, found[CARD], _ZIP_CARD_MAX_BYTES, label=label)
                card.decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise ValueError(f"{label}: {CARD} is not a short UTF-8 text file") from None
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ValueError(f"{dest} must be a new or empty folder")
        created = not dest.exists()
        written: list[Path] = []
        try:
            dest.mkdir(parents=True, exist_ok=True)
            written.append(dest / CONFIG)
            (dest / CONFIG).write_bytes(raw)
            written.append(dest / WEIGHTS)
            copy_member(zf, found[WEIGHTS], dest / WEIGHTS, max_bytes, label=label)
            if card is not None:
                written.append(dest / CARD)
                (dest / CARD).write_bytes(card)
            try:
                config = read_config(dest)
                model_config = config_from_dict(config["model"])
                ScheduleConfig.from_dict(config["schedule"])
            except (ValueError, TypeError) as e:
                raise ValueError(f"{label}: {CONFIG}: {_unpathed(e, dest)}") from None
            _check_weights_match(dest, model_config, label)
            try:
                return load_checkpoint(dest)
            except ValueError as e:
                raise ValueError(f"{label}: {_unpathed(e, dest)}") from None
        except BaseException:
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            else:
                for p in written:
                    p.unlink(missing_ok=True)
            raise
