"""Tab 4's models: listing the checkpoint folder, loading (cached, read-only), describing.

Shared state. Loaded checkpoints live in one small process-level LRU (:func:`_load_cached`),
the only object shared between sessions. That is safe because loading is pure (same files ⇒
same weights; the key includes the files' mtimes so a re-trained model is re-read), the model
is in eval mode with ``requires_grad`` off and is only called inside ``torch.inference_mode``
by :func:`diffusion_core.sampling.sample`, and nothing ever writes to it — so concurrent
sessions read the same weights without locks, and a 1–5 MB model is not copied into every
session's ``gr.State``.

Security: :func:`load_model` loads only keys that :func:`list_models` offers (directory names
under the model folder), so a client can never make the server load an arbitrary path.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from diffusion_core import checkpoints, presets
from diffusion_core.models.unet_config import UNetConfig
from pages import common

if TYPE_CHECKING:
    from diffusion_core.checkpoints import Checkpoint

# Imported by the first event that needs them, not while the UI is built (see pages.common).
torch = common.LazyModule("torch")
core_models = common.LazyModule("diffusion_core.models")
core_schedules = common.LazyModule("diffusion_core.schedule")

ROOT = Path(__file__).resolve().parents[2]
ASSETS_MODELS = ROOT / "assets" / "models"
CARD = "MODEL_CARD.md"
MODEL_CACHE_SIZE = 4

DEMO_KEY = ":demo:"  # ':' never appears in our checkpoint directory names
DEMO_LABEL = "untrained demo U-Net (random weights — shows the mechanics only)"
DEMO_CONFIG = UNetConfig(channels=1, image_size=16, dim=8, dim_mults=(1, 2), groups=4,
                         attn_heads=1, attn_dim_head=8, use_linear_attention=False,
                         use_mid_attention=False)
DEMO_SCHEDULE = presets.DIGITS.schedule  # cosine, T = 1000: what the shipped models use
DEFAULT_SAMPLER = presets.DIGITS.sampler  # DDIM, 25 trailing steps, η = 0, clip x̂0

SCHEDULE_NOTE_MD = (
    "<small>Sampling uses that schedule: a model only works with the noise levels it was "
    "trained on, so tab 1's schedule is not used here.</small>"
)


def _describe_config(config: dict) -> str:
    m, d = config["model"], config["dataset"]
    c, s = m.get("channels", "?"), m.get("image_size", "?")
    return f"{d.get('name', '?')} · {c}×{s}×{s}"


def list_models(root: str | Path = ASSETS_MODELS) -> list[tuple[str, str]]:
    """Dropdown choices ``(label, key)`` for every image checkpoint directory under ``root``.

    The key is the directory name. A directory counts when ``read_config`` accepts it (it has
    ``model.safetensors`` and a valid ``config.json``) and it holds a U-Net (2D models belong
    to tab 3). With none, the only choice is the untrained demo U-Net (key :data:`DEMO_KEY`).
    """
    root = Path(root)
    choices: list[tuple[str, str]] = []
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                config = checkpoints.read_config(d)
            except (ValueError, OSError):
                continue  # being written, or not a checkpoint
            if config["model"].get("kind") != "unet":
                continue
            choices.append((f"{d.name} ({_describe_config(config)})", d.name))
    return choices or [(DEMO_LABEL, DEMO_KEY)]


def conditional_models(root: str | Path | None = None) -> list[str]:
    """Keys of the listed checkpoints that are class-conditional (``num_classes > 0`` in their
    config): the ones guidance applies to."""
    root = _models_root() if root is None else Path(root)
    keys = []
    for _, key in list_models(root):
        if key == DEMO_KEY:
            continue
        try:
            k = checkpoints.read_config(root / key)["model"].get("num_classes", 0)
        except (ValueError, OSError):
            continue
        if isinstance(k, int) and not isinstance(k, bool) and k > 0:
            keys.append(key)
    return keys


def _models_root() -> Path:
    """Where checkpoints are looked up, read at call time (tests point it at a tmp dir)."""
    return Path(ASSETS_MODELS)


def _stamp(directory: Path) -> tuple:
    """Changes whenever the checkpoint's files change (part of the cache key)."""
    out = []
    for name in ("model.safetensors", "config.json"):
        st = (directory / name).stat()
        out.append((name, st.st_mtime_ns, st.st_size))
    return tuple(out)


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def _load_cached(path: str, stamp: tuple) -> Checkpoint:
    """Load once per (directory, file stamps); see the module docstring for why sharing is safe.

    Callers must treat the result as read-only (never train, move or modify the model).
    """
    del stamp  # only part of the cache key
    ck = checkpoints.load_checkpoint(path)
    ck.model.requires_grad_(False)
    return ck


@functools.lru_cache(maxsize=1)
def _demo_checkpoint() -> Checkpoint:
    """A tiny U-Net with fixed random weights (seed 0) and the image preset's schedule."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = core_models.build_model(DEMO_CONFIG)
    model.eval().requires_grad_(False)
    return checkpoints.Checkpoint(model=model, model_config=DEMO_CONFIG,
                                  schedule=core_schedules.NoiseSchedule(DEMO_SCHEDULE),
                                  dataset={"name": "none (untrained)"},
                                  training={"sampler_defaults": DEFAULT_SAMPLER.kwargs()})


def load_model(key) -> Checkpoint:
    """The checkpoint for a dropdown key; only keys :func:`list_models` offers are accepted,
    so a client can never make the server load an arbitrary path."""
    if key == DEMO_KEY:
        return _demo_checkpoint()
    root = _models_root()
    if not isinstance(key, str) or key not in {k for _, k in list_models(root)}:
        raise common.UserError(f"Unknown model {common.short(key)}. Reload the page to rescan "
                               "the model folder and pick one from the list.")
    directory = root / key
    try:
        return _load_cached(str(directory), _stamp(directory))
    except (ValueError, OSError) as e:
        raise common.UserError(f"Could not load the model {common.short(key)}: {e}") from None


def model_summary_md(key, ck: Checkpoint) -> str:
    """One or two lines: what the model makes, its size, and the schedule it needs."""
    cfg, sch = ck.model_config, ck.schedule_config
    shape = f"{cfg.channels}×{cfg.image_size}×{cfg.image_size}"
    params = core_models.count_parameters(ck.model) / 1e6
    head = ("⚠ **Untrained demo**: random weights, so the samples stay noise-like (it shows "
            "the mechanics only) · " if key == DEMO_KEY
            else f"**{ck.dataset.get('name', key)}** · ")
    return (f"{head}{shape} · U-Net, {params:.2f} M parameters · trained with "
            f"**{sch.kind}, T = {sch.T}** (t = 0 … {sch.T - 1}).  \n{SCHEDULE_NOTE_MD}")


def model_card_md(key, ck: Checkpoint) -> str:
    """``MODEL_CARD.md`` if the checkpoint has one, else a summary of its config."""
    if key != DEMO_KEY and ck.path is not None and (ck.path / CARD).is_file():
        try:
            return (ck.path / CARD).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    cfg, sch = ck.model_config, ck.schedule_config
    rows = [
        ("data set", ck.dataset.get("name", "?")),
        ("images", f"{cfg.channels} channel(s), {cfg.image_size}×{cfg.image_size}, "
                   "values in [−1, 1]"),
        ("network", f"U-Net, dim {cfg.dim}, levels × {list(cfg.dim_mults)}, "
                    f"{cfg.level_blocks} {cfg.block} block(s) per level and path, "
                    f"{core_models.count_parameters(ck.model):,} parameters"),
        ("schedule", f"{sch.kind}, T = {sch.T}"),
    ]
    tr = ck.training if isinstance(ck.training, dict) else {}
    for name, label in (("steps", "training steps"), ("wall_time_s", "training time (s)"),
                        ("final_loss", "final loss")):
        if isinstance(tr.get(name), (int, float)):
            rows.append((label, f"{tr[name]:,.4g}"))
    if key == DEMO_KEY:
        rows.append(("weights", "random (seed 0), never trained"))
    lines = "\n".join(f"- **{a}**: {b}" for a, b in rows)
    return "*No model card; from the checkpoint's config:*\n\n" + lines
