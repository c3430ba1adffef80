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

Session models. A model a visitor trained or uploaded in the image-training tab is a checkpoint
folder in :data:`pages.sessions.SESSION_MODELS`, listed for that visitor's session only
(:func:`model_choices`) under a key ``"session:NAME"``. :func:`load_model` resolves such a key
with the session of the request being served (:func:`current_session`); any other session gets
"not available", so nobody can load another visitor's model. Loading goes through the same
cache as the folder's models (its key is the folder's path and file stamps), so every sampler
feature treats it as any other checkpoint.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from diffusion_core import checkpoints, presets
from diffusion_core.models.unet_config import UNetConfig
from pages import common, jobs, sessions

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


def current_session() -> str | None:
    """The Gradio session whose event is being served on this thread (None outside events).

    A heavy job's session (:func:`pages.jobs.current_session`), else the request Gradio sets
    around every event call and every step of a generator (``gradio.context.LocalContext``,
    Gradio 6.31; ``tests/pages/test_imagetrain.py`` serves an app and fails if that changes).
    """
    session = jobs.current_session()
    if session is not None:
        return session
    from gradio.context import LocalContext

    return getattr(LocalContext.request.get(None), "session_hash", None)


def model_choices(root: str | Path | None = None, session: str | None = None
                  ) -> list[tuple[str, str]]:
    """The dropdown's choices for a session: the models it trained or uploaded (newest first;
    ``session`` default: :func:`current_session`), then :func:`list_models` of the folder."""
    session = current_session() if session is None else session
    root = _models_root() if root is None else Path(root)
    return sessions.SESSION_MODELS.choices(session) + list_models(root)


def _load_session_model(key: str, session: str | None) -> Checkpoint:
    model = sessions.SESSION_MODELS.get(current_session() if session is None else session, key)
    if model is None:
        raise common.UserError(f"The model {common.short(key)} is not available: models "
                               "trained or uploaded in the image-training tab belong to the "
                               "browser session that made them, until it closes. Train it "
                               "again or upload its zip there.")
    try:
        return _load_cached(str(model.directory), _stamp(model.directory))
    except (ValueError, OSError) as e:
        raise common.UserError(f"Could not load the model {common.short(key)}: {e}") from None


def load_model(key, session: str | None = None) -> Checkpoint:
    """The checkpoint for a dropdown key; only keys :func:`list_models` offers are accepted,
    so a client can never make the server load an arbitrary path. A session model's key
    (``"session:…"``) loads only for the session that made it (``session``; default: the
    request's, :func:`current_session`)."""
    if key == DEMO_KEY:
        return _demo_checkpoint()
    if isinstance(key, str) and key.startswith(sessions.SESSION_KEY_PREFIX):
        return _load_session_model(key, session)
    root = _models_root()
    if not isinstance(key, str) or key not in {k for _, k in list_models(root)}:
        raise common.UserError(f"Unknown model {common.short(key)}. Reload the page to rescan "
                               "the model folder and pick one from the list.")
    directory = root / key
    try:
        return _load_cached(str(directory), _stamp(directory))
    except (ValueError, OSError) as e:
        raise common.UserError(f"Could not load the model {common.short(key)}: {e}") from None


def network_name(cfg) -> str:
    """"U-Net", or "pixel MLP (N hidden)" for the colour-gradient tutorial's network."""
    if isinstance(cfg, UNetConfig):
        return "U-Net"
    hidden = getattr(cfg, "hidden", None)
    return f"pixel MLP ({hidden} hidden)" if hidden else "network"


def model_summary_md(key, ck: Checkpoint) -> str:
    """One or two lines: what the model makes, its size, and the schedule it needs."""
    cfg, sch = ck.model_config, ck.schedule_config
    shape = f"{cfg.channels}×{cfg.image_size}×{cfg.image_size}"
    params = core_models.count_parameters(ck.model) / 1e6
    head = ("⚠ **Untrained demo**: random weights, so the samples stay noise-like (it shows "
            "the mechanics only) · " if key == DEMO_KEY
            else f"**{ck.dataset.get('name', key)}** · ")
    return (f"{head}{shape} · {network_name(cfg)}, {params:.2f} M parameters · trained with "
            f"**{sch.kind}, T = {sch.T}** (t = 0 … {sch.T - 1}).  \n{SCHEDULE_NOTE_MD}")


# The model card for learners: what each shipped model learned and how good its samples are,
# in plain words, from the numbers of its MODEL_CARD.md (the benchmark tables and commands
# stay there, collapsed under "Developer details"). Other models get words from their config.
PLAIN_WORDS = {
    "digits": (
        "**What it learned:** 1,347 handwritten digits of 8×8 pixels (the training part of "
        "scikit-learn's digits; 450 more were kept aside to judge it).\n\n"
        "**How good are its samples?** New digits, not copies: a digit classifier that never "
        "saw the training digits reads them almost as confidently as real digits (94 % vs "
        "95.5 %), all ten digits come out about equally often, and only 0.6 % of samples are "
        "near copies of a training digit. By a feature distance they sit much closer to real "
        "digits than to slightly blurred ones.\n\n"
        "**Speed:** 16 digits in about 0.2 s with the default sampler (DDIM, 25 steps)."),
    "digits_cond": (
        "**What it learned:** the same 1,347 handwritten digits, each with its label 0–9, so "
        "you can ask for a digit (*Class* above). The label was hidden 20 % of the time in "
        "training, so the one network is two models: with a label and without.\n\n"
        "**How good are its samples?** Asked for a digit with guidance s = 2 (the default), a "
        "classifier reads that digit in 99.6 % of samples; with s = 1 in 97.8 %; without a "
        "label (s = 0) 11.8 %, which is chance. Stronger guidance makes digits more legible "
        "but less varied (see *Guidance: digit × scale grid* below)."),
    "gradients": (
        "**What it learned:** 2,000 colour gradients of 16×16 pixels: two random colours "
        "blended along one of four directions.\n\n"
        "**How good are its samples?** 91 % of them are clean two-colour gradients (their "
        "pixels miss an exact gradient by less than half as much as a real gradient with "
        "faint noise added), and their colours are spread like the real ones."),
    "shapes": (
        "**What it learned:** 2,000 pictures of 16×16 pixels, each one filled shape (circle, "
        "square, triangle or plus) in a random colour on a random background.\n\n"
        "**How good are its samples?** Every sample is a clean two-colour picture and most "
        "shapes are clearly recognisable, but not yet as good as real ones: a classifier is a "
        "little less sure of them (95 % vs 99 %), some pluses have lumpy arms, a few squares "
        "have rounded corners, and circles come out a bit too often (85 of 256)."),
}
DETAILS_SUMMARY = "Developer details: the full model card (benchmarks, how it was trained)"


def plain_words_md(key, ck: Checkpoint) -> str:
    """What the model learned and how good it is, in plain words (:data:`PLAIN_WORDS`; for
    other models: from the checkpoint's config)."""
    if key == DEMO_KEY:
        return ("**What it learned:** nothing: its weights are random, so its samples stay "
                "noise. It shows how the sampler works, not what a model can do.")
    if key in PLAIN_WORDS:
        return PLAIN_WORDS[key]
    cfg = ck.model_config
    name = ck.dataset.get("name", "?") if isinstance(ck.dataset, dict) else "?"
    tr = ck.training if isinstance(ck.training, dict) else {}
    how = ""
    if isinstance(tr.get("steps"), int):
        how = f", in {tr['steps']:,} training steps"
        if isinstance(tr.get("wall_time_s"), (int, float)):
            how += f" ({tr['wall_time_s'] / 60:.1f} min)"
    return (f"**What it learned:** *{name}* images of {cfg.image_size}×{cfg.image_size} pixels "
            f"({'colour' if cfg.channels == 3 else 'grey'}){how}.\n\n"
            "**How good are its samples?** Not measured yet: look at them, or measure them in "
            "the *Sampler lab* below (for digits, gradients and shapes).")


def model_card_md(key, ck: Checkpoint) -> str:
    """The card for learners: :func:`plain_words_md` first, then the developer card
    (:func:`developer_card_md`) collapsed in a ``<details>``."""
    return (f"{plain_words_md(key, ck)}\n\n<details><summary>{DETAILS_SUMMARY}</summary>\n\n"
            f"{developer_card_md(key, ck)}\n\n</details>")


def developer_card_md(key, ck: Checkpoint) -> str:
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
        ("network", (f"U-Net, dim {cfg.dim}, levels × {list(cfg.dim_mults)}, "
                     f"{cfg.level_blocks} {cfg.block} block(s) per level and path, "
                     if isinstance(cfg, UNetConfig) else f"{network_name(cfg)}, ")
                    + f"{core_models.count_parameters(ck.model):,} parameters"),
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
