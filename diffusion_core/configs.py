"""Plain, torch-free configuration records and option names.

Everything here is data: frozen dataclasses that validate their fields, and the names of the
choices they accept. Importing this module (or :mod:`diffusion_core.presets`) does not import
torch, so the app can build its whole UI before torch's ~1 s import (start-up figures in
``bench/results/ui_bench.json``). The modules that compute (``schedules``, ``models``,
``samplers``, ``data``, ``training``) import their configs from here and re-export them, so
``from diffusion_core.schedules import ScheduleConfig`` keeps working.

Index convention: t ∈ {0, …, T−1}; ᾱ at t = −1 is 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    import torch

# ---------------------------------------------------------------------------------------------
# Field checks shared by every config (each raises ValueError naming the field and its range)
# ---------------------------------------------------------------------------------------------


def check_int_field(name: str, value: Any, lo: int, hi: int) -> None:
    """Raise ``ValueError`` naming config field ``name`` unless ``lo <= value <= hi`` (an int)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int in {lo}..{hi}, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")


def check_choice_field(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` naming config field ``name`` unless ``value`` is one of ``choices``.

    Types must match too, so ``1`` is not accepted for ``True`` nor ``True`` for ``1``.
    """
    choices = tuple(choices)
    if not any(type(value) is type(c) and value == c for c in choices):
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def checked_config_kwargs(
    cls_name: str, kind: str, fields: Iterable[str], d: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate a config dict's keys for ``cls_name.from_dict``; returns a plain ``dict`` copy.

    Unknown keys and a ``kind`` other than ``kind`` raise ``ValueError``; missing keys are left
    to the dataclass defaults.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"{cls_name}.from_dict expects a mapping, got {type(d).__name__}")
    allowed = set(fields)
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(
            f"{cls_name}.from_dict: unknown key(s) {unknown}; allowed keys are {sorted(allowed)}"
        )
    if "kind" in d and d["kind"] != kind:
        raise ValueError(f"{cls_name}.from_dict: kind must be {kind!r}, got {d['kind']!r}")
    return dict(d)


def check_range(name: str, value: float, lo: float, hi: float, *, lo_open: bool = True,
                hi_open: bool = True) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite number in the range."""
    ok_lo = value > lo if lo_open else value >= lo
    ok_hi = value < hi if hi_open else value <= hi
    if not (isinstance(value, (int, float)) and math.isfinite(value) and ok_lo and ok_hi):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}; got {value!r}")


# ---------------------------------------------------------------------------------------------
# Noise schedules (computed by diffusion_core.schedules)
# ---------------------------------------------------------------------------------------------

ScheduleKind = Literal["linear", "cosine", "quadratic", "sigmoid", "polynomial", "custom"]
SCHEDULE_KINDS: tuple[str, ...] = get_args(ScheduleKind)
# Kinds shown in the UI as overlays (custom needs a user array).
BUILTIN_KINDS: tuple[str, ...] = ("linear", "cosine", "quadratic", "sigmoid", "polynomial")

MAX_T = 100_000
TERMINAL_SIGNAL_WARN = 0.01  # warn when √ᾱ_{T−1} is above this: x_{T−1} still carries signal
COSINE_MAX_BETA = 0.999  # iDDPM clips β to avoid a singular step at the end


def check_schedule_args(
    kind: str,
    T: int,
    *,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    scale_to_T: bool = False,
    cosine_s: float = 0.008,
    power: float = 2.0,
    custom_betas: Iterable[float] | torch.Tensor | None = None,
) -> None:
    """Validate the arguments of :func:`diffusion_core.schedules.make_betas` (same signature).

    Only the fields the chosen ``kind`` uses are checked, exactly as ``make_betas`` uses them.

    Raises:
        ValueError: naming the parameter and its allowed range.
    """
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"schedule kind must be one of {', '.join(SCHEDULE_KINDS)}; got {kind!r}")
    if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= MAX_T:
        raise ValueError(f"T must be an integer in [1, {MAX_T}]; got {T!r}")
    if kind == "custom":
        if custom_betas is None:
            raise ValueError("custom_betas must be given for the custom schedule")
        values = [float(b) for b in (custom_betas.flatten().tolist()
                                     if hasattr(custom_betas, "flatten") else custom_betas)]
        if len(values) != T:
            raise ValueError(f"custom_betas must have T = {T} values; got {len(values)}")
        if not all(math.isfinite(b) and 0 < b < 1 for b in values):
            raise ValueError("custom_betas must all be finite and in (0, 1)")
        return
    if kind == "cosine":
        check_range("cosine_s", cosine_s, 0.0, 1.0, lo_open=False)
        return
    check_range("beta_start", beta_start, 0.0, 1.0)
    check_range("beta_end", beta_end, 0.0, 1.0)
    if beta_end < beta_start:
        raise ValueError(f"beta_end must be ≥ beta_start ({beta_start}); got {beta_end}")
    if scale_to_T:
        scale = 1000.0 / T
        if beta_end * scale >= 1:
            raise ValueError(
                f"with the 1000/T scaling, beta_end becomes {beta_end * scale:.3g} ≥ 1; "
                f"use T ≥ {math.floor(1000 * beta_end) + 1} or turn the scaling off"
            )
    if kind == "polynomial":
        check_range("power", power, 0.0, 10.0, hi_open=False)


@dataclass(frozen=True)
class ScheduleConfig:
    """Everything that defines a schedule; one UI control maps onto one field.

    See :func:`diffusion_core.schedules.make_betas` for the exact definition of each kind.
    """

    kind: ScheduleKind = "linear"
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    scale_to_T: bool = False
    cosine_s: float = 0.008
    power: float = 2.0
    custom_betas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.custom_betas is not None and not isinstance(self.custom_betas, tuple):
            object.__setattr__(self, "custom_betas", tuple(float(b) for b in self.custom_betas))
        check_schedule_args(**self._kwargs())  # validates every field (no torch needed)

    def _kwargs(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def betas(self) -> torch.Tensor:
        """β_t for t = 0..T−1, float64 ``[T]`` (see :func:`diffusion_core.schedules.make_betas`)."""
        from .schedules import make_betas  # torch is imported on first use, not with the config

        return make_betas(**self._kwargs())

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["custom_betas"] is not None:
            d["custom_betas"] = list(d["custom_betas"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ScheduleConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown schedule config keys: {sorted(unknown)}")
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Image U-Net (diffusion_core.models.unet)
# ---------------------------------------------------------------------------------------------

BlockType = Literal["resnet", "convnext"]


@dataclass(frozen=True, kw_only=True)
class UNetConfig:
    """Configuration of :class:`UNet` (frozen; every field maps onto one UI control).

    Attributes:
        kind: always ``"unet"``; lets a JSON dict say which model it describes.
        channels: image channels C, 1 (grey) or 3 (RGB).
        image_size: H = W; divisible by ``2 ** (len(dim_mults) − 1)`` (one halving per level).
        dim: base width (channels after the stem, and the sinusoidal embedding width); even,
            divisible by ``groups``.
        dim_mults: width multiplier per resolution level, 1..5 levels, each 1..16.
        block: ``"resnet"`` (wide-ResNet block, time as scale-shift) or ``"convnext"``.
        groups: GroupNorm groups in ResNet blocks; must divide ``dim`` (so every level width).
        attn_heads, attn_dim_head: heads and per-head width of both attention kinds.
        use_linear_attention: linear attention at every down/up level.
        use_mid_attention: full softmax attention at the bottleneck.
        convnext_mult: ConvNeXt inner-width multiplier.
        level_blocks: blocks per resolution level on each path, 1 or 2 (the Annotated
            Diffusion layout has 2; 1 halves the convolutions at every level).
    """

    kind: Literal["unet"] = "unet"
    channels: int = 1
    image_size: int = 16
    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 2)
    block: BlockType = "resnet"
    groups: int = 8
    attn_heads: int = 4
    attn_dim_head: int = 32
    use_linear_attention: bool = True
    use_mid_attention: bool = True
    convnext_mult: int = 2
    level_blocks: int = 2

    def __post_init__(self) -> None:
        check_choice_field("kind", self.kind, ("unet",))
        check_choice_field("channels", self.channels, (1, 3))
        check_int_field("dim", self.dim, 4, 1024)
        if self.dim % 2:
            raise ValueError(
                f"dim must be even (it is the sinusoidal embedding width), got {self.dim}"
            )
        mults = self.dim_mults
        if isinstance(mults, list):  # JSON gives lists; store the hashable tuple
            object.__setattr__(self, "dim_mults", mults := tuple(mults))
        if not isinstance(mults, tuple) or not 1 <= len(mults) <= 5:
            raise ValueError(f"dim_mults must be a tuple of 1..5 ints, got {mults!r}")
        for m in mults:
            check_int_field("dim_mults", m, 1, 16)
        factor = 2 ** (len(mults) - 1)
        check_int_field("image_size", self.image_size, 1, 512)
        if self.image_size % factor or self.image_size // factor < 1:
            raise ValueError(
                f"image_size must be divisible by 2 ** (len(dim_mults) - 1) = {factor}, "
                f"got {self.image_size}"
            )
        check_choice_field("block", self.block, ("resnet", "convnext"))
        check_int_field("groups", self.groups, 1, 1024)
        if self.dim % self.groups:  # then every level width dim * m is divisible too
            raise ValueError(
                f"groups must divide dim (GroupNorm in every block), got dim = {self.dim}, "
                f"groups = {self.groups}"
            )
        check_int_field("attn_heads", self.attn_heads, 1, 64)
        check_int_field("attn_dim_head", self.attn_dim_head, 1, 512)
        check_choice_field("use_linear_attention", self.use_linear_attention, (True, False))
        check_choice_field("use_mid_attention", self.use_mid_attention, (True, False))
        check_int_field("convnext_mult", self.convnext_mult, 1, 8)
        check_choice_field("level_blocks", self.level_blocks, (1, 2))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``kind`` included; ``dim_mults`` as a list)."""
        d = asdict(self)
        d["dim_mults"] = list(self.dim_mults)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys or a wrong ``kind`` raise ``ValueError``."""
        kwargs = checked_config_kwargs(cls.__name__, "unet", (f.name for f in fields(cls)), d)
        if isinstance(kwargs.get("dim_mults"), list):
            kwargs["dim_mults"] = tuple(kwargs["dim_mults"])
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# 2D MLP (diffusion_core.models.mlp)
# ---------------------------------------------------------------------------------------------

Activation = Literal["silu", "relu", "gelu", "leaky_relu"]
TimeEmbedding = Literal["sinusoidal", "onehot_linear", "scalar"]

ACTIVATIONS: tuple[str, ...] = ("silu", "relu", "gelu", "leaky_relu")
TIME_EMBEDDINGS: tuple[str, ...] = ("sinusoidal", "onehot_linear", "scalar")


@dataclass(frozen=True, kw_only=True)
class MLPConfig:
    """Configuration of :class:`MLP2D` (frozen; every field maps onto one UI control).

    Attributes:
        kind: always ``"mlp2d"``; lets a JSON dict say which model it describes.
        hidden: width of each hidden layer, 1..4096.
        depth: number of hidden layers, 1..16.
        activation: nonlinearity after each hidden layer.
        time_embedding: how t enters the network —
            ``"sinusoidal"`` (Transformer/DDPM encoding, ``embed_dim`` features),
            ``"onehot_linear"`` (``Linear(one_hot(t, T), 1)``: one learned scalar per t) or
            ``"scalar"`` (``t / T`` as one feature).
        embed_dim: width of the sinusoidal embedding (even, 4..1024; unused by the others).
        input_frequencies: Fourier features of x_t: number of angular frequencies per coordinate
            (0..256; 0 = the network sees the raw coordinates only).
        input_max_frequency: the largest of those frequencies (radians per unit of model
            coordinates, > 1 and ≤ 10000); they run geometrically from 1 up to it.
        num_timesteps: T; t must lie in 0..T−1 (1..100000).
        skip: add a learned linear map of x_t (2 → 2, zero at initialisation, the same for
            every t) to the output: a shortcut for the part of ε that is linear in x_t.
    """

    kind: Literal["mlp2d"] = "mlp2d"
    hidden: int = 128
    depth: int = 3
    activation: Activation = "silu"
    time_embedding: TimeEmbedding = "sinusoidal"
    embed_dim: int = 32
    num_timesteps: int = 1000
    input_frequencies: int = 0
    input_max_frequency: float = 32.0
    skip: bool = False

    def __post_init__(self) -> None:
        check_choice_field("kind", self.kind, ("mlp2d",))
        check_int_field("hidden", self.hidden, 1, 4096)
        check_int_field("depth", self.depth, 1, 16)
        check_choice_field("activation", self.activation, ACTIVATIONS)
        check_choice_field("time_embedding", self.time_embedding, TIME_EMBEDDINGS)
        check_int_field("embed_dim", self.embed_dim, 4, 1024)
        if self.embed_dim % 2:
            raise ValueError(f"embed_dim must be even, got {self.embed_dim}")
        check_int_field("num_timesteps", self.num_timesteps, 1, 100_000)
        check_int_field("input_frequencies", self.input_frequencies, 0, 256)
        f = self.input_max_frequency
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 1.0 < f <= 10_000.0:
            raise ValueError(f"input_max_frequency must be a number in (1, 10000], got {f!r}")
        check_choice_field("skip", self.skip, (False, True))

    @property
    def input_features(self) -> int:
        """Number of features x_t contributes: its 2 coordinates plus their Fourier features."""
        return 2 + 4 * self.input_frequencies

    @property
    def time_features(self) -> int:
        """Number of features the time embedding adds to the 2 input coordinates."""
        return self.embed_dim if self.time_embedding == "sinusoidal" else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``kind`` included)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MLPConfig:
        """Inverse of :meth:`to_dict`; unknown keys or a wrong ``kind`` raise ``ValueError``."""
        kwargs = checked_config_kwargs(cls.__name__, "mlp2d", (f.name for f in fields(cls)), d)
        return cls(**kwargs)


ModelConfig = MLPConfig | UNetConfig

_CONFIG_KINDS: dict[str, type[MLPConfig] | type[UNetConfig]] = {
    "mlp2d": MLPConfig,
    "unet": UNetConfig,
}


def config_from_dict(d: Mapping[str, Any]) -> ModelConfig:
    """Rebuild a config from ``config.to_dict()`` output, choosing the class by ``d["kind"]``."""
    if not isinstance(d, Mapping) or "kind" not in d:
        raise ValueError(f"config dict needs a 'kind' key, one of {sorted(_CONFIG_KINDS)}")
    kind = d["kind"]
    if kind not in _CONFIG_KINDS:
        raise ValueError(f"kind must be one of {sorted(_CONFIG_KINDS)}, got {kind!r}")
    return _CONFIG_KINDS[kind].from_dict(dict(d))


# ---------------------------------------------------------------------------------------------
# Training (diffusion_core.training)
# ---------------------------------------------------------------------------------------------

LossKind = Literal["l2", "l1", "huber"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (AdamW). One UI control maps onto one field.

    Besides the usual optimiser fields:

    - ``timestep_power`` p: each example's t is ``⌊T·u^p⌋`` with u ~ U[0, 1). p = 1 is DDPM's
      uniform t; p > 1 draws low-noise steps more often (p = 1.5 puts 22 % of a batch in the
      lowest tenth of t instead of 10 %). The loss is not reweighted, so p also sets how much
      each noise level counts in the objective. Range [0.25, 4].
    - ``target``: what the network regresses on. ``"eps"`` is the drawn noise ε (DDPM eq. 14).
      ``"stf"`` is the Stable Target Field of Xu et al. 2023 ("Stable Target Field for Reduced
      Variance Score Estimation in Diffusion Models"): the posterior mean of ε given x_t over a
      reference set of clean examples — the batch's own plus ``stf_extra`` more drawn from the
      data each step — weighted by q(x_t | x0_j). Same minimiser as ``"eps"`` as the reference
      set grows (both fit the training set's E[ε | x_t]), with much less gradient noise at
      mid-range t; costs one [batch × reference] softmax per step.
    - ``stf_extra``: size of that extra reference set, 0..65536 (used only with ``"stf"``).
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    loss: LossKind = "l2"
    grad_clip: float = 1.0  # max global gradient norm; 0 = off
    ema_decay: float = 0.0  # 0 = off; e.g. 0.995 keeps an exponential moving average
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    seed: int = 0
    report_every: int = 50
    timestep_bins: int = 10
    timestep_power: float = 1.0
    target: Literal["eps", "stf"] = "eps"
    stf_extra: int = 0

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(isinstance(self.steps, int) and 1 <= self.steps <= 10_000_000,
             f"steps must be an integer in [1, 10000000]; got {self.steps!r}")
        need(isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65_536,
             f"batch_size must be an integer in [1, 65536]; got {self.batch_size!r}")
        need(isinstance(self.lr, (int, float)) and 0 < self.lr <= 1 and math.isfinite(self.lr),
             f"lr must be in (0, 1]; got {self.lr!r}")
        need(0 <= self.weight_decay <= 1,
             f"weight_decay must be in [0, 1]; got {self.weight_decay}")
        need(self.loss in ("l2", "l1", "huber"), f"loss must be l2, l1 or huber; got {self.loss!r}")
        need(0 <= self.grad_clip <= 1e6, f"grad_clip must be in [0, 1e6]; got {self.grad_clip}")
        need(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1); got {self.ema_decay}")
        need(self.lr_schedule in ("constant", "cosine"),
             f"lr_schedule must be constant or cosine; got {self.lr_schedule!r}")
        need(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0,
             f"warmup_steps must be an integer ≥ 0; got {self.warmup_steps!r}")
        need(isinstance(self.report_every, int) and self.report_every >= 1,
             f"report_every must be an integer ≥ 1; got {self.report_every!r}")
        need(isinstance(self.timestep_bins, int) and 1 <= self.timestep_bins <= 1000,
             f"timestep_bins must be in [1, 1000]; got {self.timestep_bins!r}")
        p = self.timestep_power
        need(isinstance(p, (int, float)) and not isinstance(p, bool) and 0.25 <= p <= 4,
             f"timestep_power must be a number in [0.25, 4]; got {p!r}")
        need(self.target in ("eps", "stf"), f"target must be eps or stf; got {self.target!r}")
        need(isinstance(self.stf_extra, int) and not isinstance(self.stf_extra, bool)
             and 0 <= self.stf_extra <= 65_536,
             f"stf_extra must be an integer in [0, 65536]; got {self.stf_extra!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown train config keys: {sorted(unknown)}")
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Sampler option names (see diffusion_core.samplers)
# ---------------------------------------------------------------------------------------------

Spacing = Literal["leading", "trailing", "linspace"]
SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace")
Variance = Literal["beta_tilde", "beta"]
SamplerName = Literal["ddpm", "ddim"]


# ---------------------------------------------------------------------------------------------
# 2D toy data sets (generated by diffusion_core.data)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToySpec:
    """One 2D toy set: its fixed affine map to model coordinates and its default noise.

    ``model = (original − offset) · scale``; ``default_noise`` is a Gaussian std in model
    coordinates.
    """

    name: str
    description: str
    offset: tuple[float, float]
    scale: float
    default_noise: float


# Swiss roll support (t ∈ [1.5π, 4.5π], columns x = t·cos t, z = t·sin t), from a dense grid of t:
# x ∈ [−9.4773, 12.6059], z ∈ [−11.0407, 14.1372]; z is the larger extent (25.1779).
_SWISS_X = (-9.4773, 12.6059)
_SWISS_Z = (-11.0407, 14.1372)

TOY_SPECS: dict[str, ToySpec] = {
    s.name: s
    for s in (
        ToySpec("moons", "two interleaving half circles (make_moons' curves, random angles)",
                (0.5, 0.25), 2.0 / 3.0, 0.05),
        ToySpec("circles", "two concentric circles, radii 1 and 0.5, random angles",
                (0.0, 0.0), 1.0, 0.03),
        ToySpec("swiss_roll", "swiss roll seen from the side (make_swiss_roll, columns x, z)",
                ((_SWISS_X[0] + _SWISS_X[1]) / 2, (_SWISS_Z[0] + _SWISS_Z[1]) / 2),
                2.0 / (_SWISS_Z[1] - _SWISS_Z[0]), 0.03),
        ToySpec("spirals", "two intertwined Archimedean spirals, 1.5 turns each",
                (0.0, 0.0), 1.0 / (3.0 * math.pi), 0.02),
        ToySpec("s_curve", "S-shaped curve (make_s_curve, columns x, z)",
                (0.0, 0.0), 0.5, 0.03),
        ToySpec("gaussians8", "mixture of 8 equal Gaussians on a ring (noise = component std)",
                (0.0, 0.0), 0.5, 0.08),
        ToySpec("checkerboard", "uniform on the 8 dark cells of a 4×4 checkerboard",
                (0.0, 0.0), 0.25, 0.0),
    )
}

TOY_DATASETS: tuple[str, ...] = tuple(TOY_SPECS)
"""Names accepted by :func:`make_2d`."""
