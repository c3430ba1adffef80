"""Tab 3 — train a small MLP noise predictor on 2D toy points, live, then sample from it.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean data. The reverse chain starts from x ~ N(0, I) at t = T−1 and ends at
t = −1 (the sample).

Everything a user trains lives in their own ``gr.State`` (a :class:`ToyState`); handlers are
plain module-level functions (generators for anything long) so tests can call them directly:

=======================  ======================================================================
handler                  what it does
=======================  ======================================================================
``data_plot``            scatter of the chosen toy set (cheap; re-run on every data change)
``dataset_changed``      the same, plus the set's default noise
``train``                generator: trains (or continues training) and streams the loss curve
``vector_field``         arrows of −ε̂_θ(x, t) on a 21×21 grid over the noised cloud x_t
``sample``               generator: N(0, I) → reverse chain → animated figure + SW1 / NN ratio
``forward_animation``    animated x_t of the data set at ~30 evenly spaced t (same ε)
=======================  ======================================================================

Animations: Gradio's ``gr.Plot`` hands only ``data`` and ``layout`` to ``Plotly.react`` and
drops ``frames``. :class:`AnimatedFigure` is a ``go.Figure`` (tests see ``fig.frames``) whose
JSON moves the frames into ``layout.meta``; a few lines of browser JS (:data:`FRAMES_JS`,
run on the plot's ``change`` event) register them with ``Plotly.addFrames``.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from diffusion_core import presets
from diffusion_core.data.toy2d_spec import TOY_DATASETS, TOY_SPECS
from diffusion_core.models.mlp_config import ACTIVATIONS, TIME_EMBEDDINGS, MLPConfig
from diffusion_core.schedule.config import BUILTIN_KINDS, ScheduleConfig
from diffusion_core.training.config import TrainConfig
from pages import common

if TYPE_CHECKING:
    from diffusion_core.schedule import NoiseSchedule
    from diffusion_core.training import Trainer

# Imported by the first event that needs them, not while the UI is built (see pages.common).
torch = common.LazyModule("torch")
toy_data = common.LazyModule("diffusion_core.data")
forward = common.LazyModule("diffusion_core.forward")
metrics = common.LazyModule("diffusion_core.evaluation")
models = common.LazyModule("diffusion_core.models")
samplers = common.LazyModule("diffusion_core.sampling")
core_schedules = common.LazyModule("diffusion_core.schedule")
training = common.LazyModule("diffusion_core.training")

# ---------------------------------------------------------------------------------------------
# Limits and defaults
# ---------------------------------------------------------------------------------------------

PRESET = presets.TOY  # the app and CLI default 2D recipe (see diffusion_core/presets.py)
DATASETS: tuple[str, ...] = TOY_DATASETS
DEFAULT_DATASET = "moons"
DEFAULT_POINTS = 2000
MAX_NOISE = 0.5
MAX_SEED = 2**31 - 1
WIDTHS = (32, 64, 128, 256, 512)
MAX_DEPTH = 6
MAX_BATCH = 4096
MAX_STEPS = 100_000
MAX_SAMPLES = 5000
FLOPS_PER_S = 2.5e10  # what one core sustains for these small matmuls (measured ~4e10)
MAX_STEP_S = 0.2  # one training step must fit inside the Stop button's reaction time

GRID = 21  # arrows per side of the vector-field grid
YIELD_EVERY_S = 0.1  # progress text / state at least this often (Stop reacts within 0.5 s)
FIGURE_EVERY_S = 0.6  # rebuild the loss figure at most this often while training
LOSS_POINTS = 600  # the loss curve is block-averaged down to about this many points
SHOW_POINTS = 4000  # scatter plots show at most this many points (a fixed random subset)
ANIM_POINTS = 1000  # animations move at most this many points per frame
MAX_FRAMES = 60
FORWARD_FRAMES = 30
PLOT_HEIGHT = 430

SOURCE_PRESET, SOURCE_SHARED, SOURCE_CUSTOM = "preset", "shared", "custom"

LATEX = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
]


# ---------------------------------------------------------------------------------------------
# Per-session state
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """Which points were drawn: ``make_2d(name, n, noise=noise, seed=seed)``."""

    name: str
    n: int
    noise: float
    seed: int


@dataclass(eq=False)
class ToyState:
    """One user's trained model and everything needed to look at it (lives in ``gr.State``).

    ``data [n, 2]`` are the training points, ``eps [n, 2]`` a fixed ε drawn once per data set
    so the noised cloud x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε (eq. 4) moves smoothly with t.
    ``losses`` holds every step's batch loss since the model was created.
    """

    spec: DataSpec
    schedule_config: ScheduleConfig
    model_config: MLPConfig
    data: torch.Tensor
    eps: torch.Tensor
    schedule: NoiseSchedule
    trainer: Trainer
    losses: list[float] = field(default_factory=list)
    runs: int = 0

    @property
    def model(self) -> torch.nn.Module:
        return self.trainer.sampling_model()

    @property
    def T(self) -> int:
        return self.schedule.T


# ---------------------------------------------------------------------------------------------
# Input validation (bad input → gr.Error in plain words)
# ---------------------------------------------------------------------------------------------


def _data_spec(dataset, n, noise, seed) -> DataSpec:
    if dataset not in DATASETS:
        raise gr.Error(f"Unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}.")
    n = common.number("Number of points", n, 10, common.MAX_POINTS, integer=True)
    noise = common.number("Noise (std of the jitter)", noise, 0.0, MAX_NOISE)
    seed = common.number("Data seed", seed, 0, MAX_SEED, integer=True)
    return DataSpec(dataset, n, float(noise), seed)


def _schedule_from_ui(source, kind, T, shared) -> ScheduleConfig:
    """The schedule the user picked: the 2D preset, tab 1's, or kind + T chosen here."""
    if source == SOURCE_PRESET:
        return PRESET.schedule
    if source == SOURCE_SHARED:
        try:
            cfg = ScheduleConfig.from_dict(dict(shared or {}))
        except (TypeError, ValueError) as e:
            raise gr.Error(f"Tab 1's schedule cannot be used here: {e}") from None
        if cfg.T > common.T_MAX:
            raise gr.Error(f"Tab 1's schedule has T = {cfg.T}; this tab allows T ≤ "
                           f"{common.T_MAX}.")
        return cfg
    if source == SOURCE_CUSTOM:
        # Linear-type kinds get DDPM's 1e-4..0.02 scaled by 1000/T so short chains still end
        # near pure noise (improved-diffusion); cosine ignores the β range.
        return common.schedule_config(kind, T, 1e-4, 0.02, scale_to_T=True)
    raise gr.Error(f"Unknown schedule choice {source!r}.")


def _model_config(hidden, depth, time_embedding, activation, T: int) -> MLPConfig:
    hidden = common.number("Width", hidden, WIDTHS[0], WIDTHS[-1], integer=True)
    depth = common.number("Depth", depth, 1, MAX_DEPTH, integer=True)
    if time_embedding not in TIME_EMBEDDINGS:
        raise gr.Error(f"Time embedding must be one of {', '.join(TIME_EMBEDDINGS)}.")
    if activation not in ACTIVATIONS:
        raise gr.Error(f"Activation must be one of {', '.join(ACTIVATIONS)}.")
    return replace(PRESET.model, hidden=hidden, depth=depth, time_embedding=time_embedding,
                   activation=activation, num_timesteps=T)


def _train_config(lr, batch_size, steps) -> TrainConfig:
    lr = common.number("Learning rate", lr, 1e-6, 1.0)
    batch_size = common.number("Batch size", batch_size, 1, MAX_BATCH, integer=True)
    steps = common.number("Training steps", steps, 1, MAX_STEPS, integer=True)
    return replace(PRESET.train, lr=lr, batch_size=batch_size, steps=steps, report_every=1)


def _check_step_cost(model_config: MLPConfig, train_config: TrainConfig) -> None:
    """Refuse models whose single step would outlast the Stop button's reaction time."""
    h, batch_size = model_config.hidden, train_config.batch_size
    inputs = model_config.input_features + model_config.time_features
    weights = inputs * h + (model_config.depth - 1) * h * h + 2 * h
    seconds = 6.0 * batch_size * weights / FLOPS_PER_S  # forward + backward ≈ 3 × 2 flops
    if train_config.target == "stf":  # the [batch × (batch + extra)] softmax of the STF target
        seconds += 12.0 * batch_size * (batch_size + train_config.stf_extra) / FLOPS_PER_S
    if seconds > MAX_STEP_S:
        raise gr.Error(
            f"Width {h} × depth {model_config.depth} with batch {batch_size} is too big for a "
            f"CPU: one step would take about {seconds:.1f} s. Lower the width, depth or batch "
            "size."
        )


def _need_model(state) -> ToyState | None:
    if isinstance(state, ToyState):
        return state
    gr.Warning("Train a model first: press ▶ Train (a few hundred steps are enough to see "
               "something).")
    return None


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _fixed_noise(n: int, seed: int) -> torch.Tensor:
    """ε [n, 2] used for every picture of x_t of one data set (same seed ⇒ same ε)."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(n, 2, generator=g)


def _subset(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Indices of a fixed random subset of at most k of n points (for drawing only)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _f32(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """float32 numpy: plotly sends it as base64 (4 bytes a value), half of float64."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _xy(pts: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns x₁, x₂ of ``pts [N, 2]`` as contiguous float32 arrays."""
    a = _f32(pts)
    return np.ascontiguousarray(a[:, 0]), np.ascontiguousarray(a[:, 1])


def _half_range(*clouds: torch.Tensor, q: float = 0.995, floor: float = 1.25) -> float:
    """Half-width of a square view centred on 0 that shows most of every cloud."""
    r = floor
    for c in clouds:
        if len(c):
            r = max(r, float(torch.quantile(c.abs().max(dim=1).values.float(), q)) * 1.08)
    return min(r, 6.0)


def _scatter_style(fig: go.Figure, half: float, *, title: str | None = None) -> go.Figure:
    common.style_figure(fig, title=title, height=PLOT_HEIGHT, x_title="x₁", y_title="x₂")
    fig.update_layout(hovermode="closest", margin=dict(l=55, r=10, t=40 if title else 20, b=45),
                      legend=dict(orientation="v", x=1.0, y=1.0, xanchor="right",
                                  yanchor="top", bgcolor="rgba(255,255,255,0.8)"))
    # A square view (1 unit is as long on both axes) that keeps the requested ranges.
    fig.update_xaxes(range=[-half, half], zeroline=False, constrain="domain")
    fig.update_yaxes(range=[-half, half], zeroline=False, scaleanchor="x", scaleratio=1,
                     constrain="domain")
    return fig


def _points_trace(pts: torch.Tensor, name: str, color: str, *, size: float = 4,
                  opacity: float = 0.6) -> go.Scatter:
    x, y = _xy(pts)
    return go.Scatter(x=x, y=y, mode="markers", name=name,
                      marker=dict(color=color, size=size, opacity=opacity),
                      hovertemplate="x₁ %{x:.3f}<br>x₂ %{y:.3f}<extra>" + name + "</extra>")


def _schedule_label(shared) -> str:
    try:
        cfg = ScheduleConfig.from_dict(dict(shared or {}))
        return f"Tab 1's schedule ({cfg.kind}, T = {cfg.T})"
    except (TypeError, ValueError):
        return "Tab 1's schedule"


def _source_choices(shared) -> list[tuple[str, str]]:
    p = PRESET.schedule
    return [
        (f"2D preset ({p.kind}, T = {p.T})", SOURCE_PRESET),
        (_schedule_label(shared), SOURCE_SHARED),
        ("Kind and T below", SOURCE_CUSTOM),
    ]


# ---------------------------------------------------------------------------------------------
# Animated figures
# ---------------------------------------------------------------------------------------------


class AnimatedFigure(go.Figure):
    """A ``go.Figure`` with frames that survive ``gr.Plot``.

    ``gr.Plot`` serialises with ``to_json()`` and its front end calls
    ``Plotly.react(data, layout)``, dropping ``frames``. Here ``to_json`` moves the frames into
    ``layout.meta.dl_frames`` (with a fresh ``dl_key``); :data:`FRAMES_JS` registers them in
    the browser. In Python, ``fig.frames`` stays the usual tuple of frames.
    """

    def to_json(self, *args, **kwargs) -> str:  # noqa: D102 - see class docstring
        d = self.to_plotly_json()
        frames = d.pop("frames", None) or []
        layout = d.setdefault("layout", {})
        meta = layout.get("meta")
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta.update(dl_frames=frames, dl_key=uuid.uuid4().hex)
        layout["meta"] = meta
        return pio.json.to_json_plotly(d)


# Runs in the browser on each animated plot's change event: installs (once) a light poller that
# hands frames stored in layout.meta to Plotly.addFrames whenever a plot shows a new figure
# (also after the plot is re-mounted, e.g. when its tab is shown again).
FRAMES_JS = """
() => {
  if (!window.__dlAnimPoller) {
    const scan = () => {
      const P = window.Plotly;
      if (!P) return;
      document.querySelectorAll('.dl-anim .js-plotly-plot').forEach((gd) => {
        const meta = gd.layout && gd.layout.meta;
        if (!meta || !meta.dl_frames || gd.__dlKey === meta.dl_key) return;
        gd.__dlKey = meta.dl_key;
        try {
          const old = (gd._transitionData && gd._transitionData._frames) || [];
          if (old.length) P.deleteFrames(gd, old.map((_, i) => i));
          P.addFrames(gd, meta.dl_frames);
        } catch (e) { console.warn('Diffusion Lab: could not add frames', e); }
      });
    };
    window.__dlAnimPoller = setInterval(scan, 250);
  }
  return [];
}
"""


def _animate(fig: AnimatedFigure, frame_traces: list[list[go.Scatter]], labels: list[str],
             trace_ids: list[int], *, prefix: str, duration_ms: int = 90) -> AnimatedFigure:
    """Add frames (each replacing ``trace_ids``), a play/pause menu and a scrubbing slider."""
    names = [f"f{i}" for i in range(len(labels))]
    fig.frames = [go.Frame(data=traces, traces=trace_ids, name=name)
                  for traces, name in zip(frame_traces, names, strict=True)]
    play = dict(frame=dict(duration=duration_ms, redraw=False), transition=dict(duration=0),
                fromcurrent=True, mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0),
                 mode="immediate")
    fig.update_layout(
        updatemenus=[dict(
            type="buttons", direction="left", showactive=False, x=0.0, y=-0.2,
            xanchor="left", yanchor="top", pad=dict(t=0, r=6),
            buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                     dict(label="❚❚ Pause", method="animate", args=[[None], pause])],
        )],
        sliders=[dict(
            active=0, x=0.3, y=-0.13, len=0.7, xanchor="left", yanchor="top",
            pad=dict(t=0, b=0), currentvalue=dict(prefix=prefix, font=dict(size=13)),
            steps=[dict(label=label, method="animate",
                        args=[[name], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                           transition=dict(duration=0))])
                   for label, name in zip(labels, names, strict=True)],
        )],
    )
    fig.update_layout(margin=dict(b=115), height=PLOT_HEIGHT + 70)
    return fig


# ---------------------------------------------------------------------------------------------
# Data scatter
# ---------------------------------------------------------------------------------------------


def _data_figure(spec: DataSpec, pts: torch.Tensor) -> go.Figure:
    idx = _subset(len(pts), SHOW_POINTS, spec.seed)
    fig = go.Figure(_points_trace(pts[idx], "data", common.DATA_COLOR))
    shown = "" if len(idx) == len(pts) else f" (showing {len(idx):,})"
    title = f"{spec.name}: {spec.n:,} points{shown}, noise {spec.noise:g}"
    return _scatter_style(fig, _half_range(pts), title=title)


def data_plot(dataset, n, noise, seed) -> go.Figure:
    """Scatter of the toy set ``make_2d(dataset, n, noise=noise, seed=seed)``."""
    spec = _data_spec(dataset, n, noise, seed)
    pts = toy_data.make_2d(spec.name, spec.n, noise=spec.noise, seed=spec.seed)
    return _data_figure(spec, pts)


def dataset_changed(dataset, n, seed) -> tuple[go.Figure, float]:
    """A new data set: its default noise and its scatter."""
    if dataset not in DATASETS:
        raise gr.Error(f"Unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}.")
    noise = TOY_SPECS[dataset].default_noise
    return data_plot(dataset, n, noise, seed), noise


def shared_schedule_changed(shared, source):
    """Tab 1 changed its schedule: refresh the label of that choice (keep the selection)."""
    return gr.update(choices=_source_choices(shared), value=source)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def _new_state(spec: DataSpec, sched_cfg: ScheduleConfig, model_cfg: MLPConfig,
               train_cfg: TrainConfig) -> ToyState:
    pts = toy_data.make_2d(spec.name, spec.n, noise=spec.noise, seed=spec.seed)
    schedule = core_schedules.NoiseSchedule(sched_cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train_cfg.seed)  # same settings ⇒ same initial weights
        model = models.build_model(model_cfg)
    trainer = training.Trainer(model, schedule, pts, train_cfg)
    return ToyState(spec=spec, schedule_config=sched_cfg, model_config=model_cfg, data=pts,
                    eps=_fixed_noise(spec.n, spec.seed), schedule=schedule, trainer=trainer)


def _restart_reason(state, spec, sched_cfg, model_cfg) -> str | None:
    """Why the current model cannot simply continue (None: it can)."""
    if not isinstance(state, ToyState):
        return "new model"
    changed = []
    if state.spec != spec:
        changed.append("data set")
    if state.schedule_config != sched_cfg:
        changed.append("schedule")
    if state.model_config != model_cfg:
        changed.append("model")
    return None if not changed else "new model: the " + " and ".join(changed) + " changed"


def _block_mean(values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(step numbers, mean loss) averaged over equal blocks so at most ~max_points remain."""
    n = len(values)
    k = max(1, math.ceil(n / max_points))
    m = n // k
    head = values[: m * k].reshape(m, k).mean(axis=1)
    steps = np.arange(m) * k + (k + 1) / 2
    if m * k < n:  # the unfinished last block
        head = np.append(head, values[m * k:].mean())
        steps = np.append(steps, (m * k + n + 1) / 2)
    return steps, head


def loss_figure(state: ToyState | None) -> go.Figure:
    """Loss per step (log y, block means + a smoothed line) and mean loss per t-range."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                        subplot_titles=("loss per step (dark: moving average)",
                                        "mean loss by t"))
    if isinstance(state, ToyState) and state.losses:
        losses = np.asarray(state.losses, dtype=np.float64)
        x, y = _block_mean(losses, LOSS_POINTS)
        per = "" if len(x) == len(losses) else f" (mean of {math.ceil(len(losses) / len(x))})"
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="loss per step" + per,
                                 line=dict(color="#9ab7d3", width=1),
                                 hovertemplate="step %{x:.0f}<br>loss %{y:.4f}<extra></extra>"),
                      row=1, col=1)
        w = max(1, len(y) // 20)
        smooth = np.convolve(y, np.ones(w) / w, mode="valid")
        fig.add_trace(go.Scatter(x=x[w - 1:], y=smooth, mode="lines",
                                 name=f"moving average ({w} points)",
                                 line=dict(color=common.DATA_COLOR, width=2.5),
                                 hovertemplate="step %{x:.0f}<br>smoothed %{y:.4f}"
                                               "<extra></extra>"),
                      row=1, col=1)
        edges = state.trainer.edges
        tl = np.asarray(state.trainer.timestep_loss(), dtype=np.float64)
        labels = [f"{a}–{b - 1}" if b - 1 > a else f"{a}"
                  for a, b in zip(edges[:-1], edges[1:], strict=True)]
        fig.add_trace(go.Bar(x=labels, y=np.where(np.isfinite(tl), tl, None),
                             marker_color=common.SAMPLE_COLOR, name="mean loss in t range",
                             hovertemplate="t %{x}<br>loss %{y:.4f}<extra></extra>"),
                      row=1, col=2)
    else:
        fig.add_annotation(text="Press ▶ Train to see the loss here", showarrow=False,
                           xref="x domain", yref="y domain", x=0.5, y=0.5, font=dict(size=15))
        fig.update_xaxes(range=[0, PRESET.train.steps], row=1, col=1)
        fig.update_yaxes(range=[-1, 0.3], row=1, col=1)
    common.style_figure(fig, height=PLOT_HEIGHT)
    fig.update_layout(hovermode="closest", showlegend=False, margin=dict(l=60, r=10, t=40, b=50))
    fig.update_annotations(font_size=14)
    fig.update_xaxes(title_text="training step", row=1, col=1)
    stf = (state.trainer.config if state is not None else PRESET.train).target == "stf"
    fig.update_yaxes(title_text=f"‖{'ε_STF' if stf else 'ε'} − ε̂‖² (log scale)", type="log",
                     row=1, col=1)
    fig.update_xaxes(title_text="t", row=1, col=2)
    fig.update_yaxes(title_text="mean loss", row=1, col=2)
    return fig


def _progress_md(state: ToyState, p, note: str, *, stopped: bool = False) -> str:
    if p is None:
        return f"**Step 0 / {state.trainer.config.steps}** · {note}"
    rate = p.run_step / p.elapsed_s if p.elapsed_s > 0 else float("nan")
    head = "Done" if p.done else ("Stopped" if stopped else "Training")
    return (f"**{head}: step {p.run_step:,} / {p.run_steps:,}** · loss {p.loss:.3f} · "
            f"{p.elapsed_s:.1f} s · {rate:,.0f} steps/s  \n{note} "
            f"({state.trainer.step:,} steps in total)")


def train(state, dataset, n, noise, seed, source, kind, T, shared, hidden, depth,
          time_embedding, activation, lr, batch_size, steps):
    """Train (or keep training) this session's model; a generator for the Train button.

    Yields ``(state, loss figure, progress Markdown, t-slider update, sampler-steps update)``
    (``gr.skip()`` for parts that did not change) at least
    every 0.1 s of work, so the Stop button (which closes the generator) leaves the model
    trained so far in ``state``. The same data, schedule and model settings continue the
    model (learning rate, batch and steps may change); other settings start a new one.
    """
    spec = _data_spec(dataset, n, noise, seed)
    sched_cfg = _schedule_from_ui(source, kind, T, shared)
    model_cfg = _model_config(hidden, depth, time_embedding, activation, sched_cfg.T)
    train_cfg = _train_config(lr, batch_size, steps)
    _check_step_cost(model_cfg, train_cfg)

    reason = _restart_reason(state, spec, sched_cfg, model_cfg)
    if reason is not None:
        try:
            state = _new_state(spec, sched_cfg, model_cfg, train_cfg)
        except ValueError as e:
            raise gr.Error(str(e)) from None
        note = f"Started a {reason} ({spec.name}, {sched_cfg.kind} T = {sched_cfg.T})"
        # A new model may have a new T: move the t slider and the sampler's step count.
        t_update = gr.update(maximum=state.T - 1, value=state.T // 2)
        steps_update = gr.update(value=state.T, maximum=state.T)
    else:
        state.trainer.config = train_cfg  # new lr / batch / steps; optimizer state is kept
        note = f"Continuing the model from step {state.trainer.step:,} (same settings)"
        t_update = steps_update = gr.skip()
    state.runs += 1
    yield state, loss_figure(state), _progress_md(state, None, note), t_update, steps_update

    skip = gr.skip()
    p = None
    last_yield = last_fig = time.perf_counter()
    try:
        for p in state.trainer.run(train_cfg.steps):
            state.losses.extend(p.losses)
            now = time.perf_counter()
            if p.done:
                break
            if now - last_fig >= FIGURE_EVERY_S:
                last_fig = last_yield = now
                yield state, loss_figure(state), _progress_md(state, p, note), skip, skip
            elif now - last_yield >= YIELD_EVERY_S:
                last_yield = now
                yield state, skip, _progress_md(state, p, note), skip, skip
    except training.TrainingDiverged as e:
        gr.Warning(f"Training diverged: {e}")
        yield (state, loss_figure(state),
               _progress_md(state, p, f"⚠️ Diverged (NaN loss): {e}", stopped=True), skip,
               skip)
        return
    yield state, loss_figure(state), _progress_md(state, p, note), skip, skip


def train_stopped(state) -> str:
    """Progress text after Stop (the cancelled generator cannot write it)."""
    if not isinstance(state, ToyState):
        return "Stopped before any training step."
    recent = state.losses[-50:]
    loss = f" · recent loss {np.mean(recent):.3f}" if recent else ""
    return (f"**Stopped** after {state.trainer.step:,} steps in total{loss}. The model keeps "
            "what it learned: press ▶ Train to continue, or look at the vector field and "
            "samples.")


# ---------------------------------------------------------------------------------------------
# Vector field
# ---------------------------------------------------------------------------------------------


def _arrows(grid: np.ndarray, vec: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
    """One polyline for all arrows: shaft, NaN, head, NaN (plotly draws NaN as a gap).

    Lengths are normalised for readability: proportional to |vec| up to its 90th percentile,
    which (and anything longer) is drawn ``length`` long.
    """
    mag = np.linalg.norm(vec, axis=1, keepdims=True)
    unit = vec / np.maximum(mag, 1e-12)
    ref = max(float(np.quantile(mag, 0.9)), 1e-12)
    scaled = unit * (length * np.minimum(mag / ref, 1.0))
    tip = grid + scaled
    head = 0.3 * np.linalg.norm(scaled, axis=1, keepdims=True)
    c, s = math.cos(math.radians(25)), math.sin(math.radians(25))
    back = -unit
    left = tip + head * np.stack([c * back[:, 0] - s * back[:, 1],
                                  s * back[:, 0] + c * back[:, 1]], axis=1)
    right = tip + head * np.stack([c * back[:, 0] + s * back[:, 1],
                                   -s * back[:, 0] + c * back[:, 1]], axis=1)
    gap = np.full_like(grid, np.nan)
    seg = np.stack([grid, tip, gap, left, tip, right, gap], axis=1)  # [G, 7, 2]
    return seg[..., 0].ravel(), seg[..., 1].ravel()


def vector_field(state, t) -> go.Figure:
    """Arrows of −ε̂_θ(x, t) on a GRID×GRID grid over the noised cloud x_t (same ε each time).

    Arrow length is normalised: proportional to |ε̂| up to its 90th percentile over the grid,
    which (and anything longer) spans 0.9 grid cells; hover shows the true ε̂ and the marker
    colour is |ε̂|.
    """
    state = _need_model(state)
    if state is None:
        return gr.skip()
    t = common.number("t", t, 0, state.T - 1, integer=True)
    x_t = forward.q_sample(state.schedule, state.data, t, state.eps)  # eq. (4), fixed ε
    half = _half_range(state.data, x_t)
    axis = np.linspace(-half * 0.95, half * 0.95, GRID)
    gx, gy = np.meshgrid(axis, axis)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    model = state.model
    with torch.inference_mode():
        pred_eps = model(torch.from_numpy(grid).float(),
                         torch.full((len(grid),), t, dtype=torch.long)).double().numpy()
    vec = -pred_eps
    mag = np.linalg.norm(pred_eps, axis=1)
    ax, ay = _arrows(grid, vec, 0.9 * (axis[1] - axis[0]))

    idx = _subset(len(x_t), SHOW_POINTS, state.spec.seed)
    ab = state.schedule.alpha_bar(t)
    fig = go.Figure()
    fig.add_trace(_points_trace(x_t[idx], f"x_t (t = {t})", common.DATA_COLOR, size=3.5,
                                opacity=0.35))
    fig.add_trace(go.Scatter(x=_f32(ax), y=_f32(ay), mode="lines", name="−ε̂ direction",
                             line=dict(color="#1f2937", width=1.6), hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=_f32(grid[:, 0].copy()), y=_f32(grid[:, 1].copy()), mode="markers",
        name="|ε̂| at arrow base",
        marker=dict(size=4, color=mag, colorscale="Viridis", showscale=True,
                    colorbar=dict(title=dict(text="|ε̂|"), thickness=12, len=0.7)),
        customdata=np.round(np.stack([pred_eps[:, 0], pred_eps[:, 1], mag], axis=1), 4),
        hovertemplate="x = (%{x:.2f}, %{y:.2f})<br>ε̂ = (%{customdata[0]:.3f}, "
                      "%{customdata[1]:.3f})<br>|ε̂| = %{customdata[2]:.3f}<extra></extra>"))
    title = f"−ε̂_θ(x, t = {t}) over x_t (ᾱ_t = {ab:.3f}); lengths normalised"
    _scatter_style(fig, half, title=title)
    fig.update_layout(showlegend=False)
    return fig


def vector_field_after_train(state, t) -> go.Figure:
    """The vector field refreshed after training, silently skipped if there is no model."""
    if not isinstance(state, ToyState):
        return gr.skip()
    try:
        t = min(max(int(t), 0), state.T - 1)
    except (TypeError, ValueError):
        t = state.T // 2
    return vector_field(state, t)


def train_finished(state, t, text):
    """Runs after ▶ Train ends, is stopped (cancelled) or diverges; not after a gr.Error.

    Refreshes the vector field and, after a Stop, the loss figure and the progress text. Its
    outputs are all of the train event's outputs: writing them clears the "Error" badge that
    Gradio 6 puts on the outputs of a cancelled event.
    Returns ``(vector field, loss figure, progress, t slider, sampler steps)``.
    """
    skip = gr.skip()
    if not isinstance(state, ToyState):
        return skip, skip, skip, skip, skip
    field_fig = vector_field_after_train(state, t)
    if isinstance(text, str) and (text.startswith("**Done") or "Diverged" in text):
        return field_fig, skip, skip, skip, skip
    return field_fig, loss_figure(state), train_stopped(state), skip, skip


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------


def sample_finished(text):
    """Runs after Sample ends or is stopped; says so after a Stop (and clears its badges).

    Returns ``(figure, quality Markdown)``.
    """
    if isinstance(text, str) and text.startswith("Sampling"):
        return gr.skip(), "Sampling stopped: " + text.removeprefix("Sampling").strip(" …")
    return gr.skip(), gr.skip()


def _frame_indices(num_steps: int, max_frames: int = MAX_FRAMES - 1) -> set[int]:
    """Which reverse steps (0..num_steps−1) get a frame; the last one always does."""
    k = min(num_steps, max_frames)
    return {int(round(i)) for i in np.linspace(num_steps - 1, 0, k)}


def _quality(state: ToyState, samples: torch.Tensor, seed: int) -> dict:
    """SW1 to a fresh draw, the floor (mean SW1 of 4 pairs of fresh draws, as
    ``metrics.sw1_floor``), and the nearest-neighbour ratio."""
    spec, n = state.spec, len(samples)
    fresh_a = toy_data.make_2d(spec.name, n, noise=spec.noise, seed=spec.seed + 1000)
    fresh_b = toy_data.make_2d(spec.name, n, noise=spec.noise, seed=spec.seed + 1001)

    def draw(k: int, s: int) -> torch.Tensor:
        return toy_data.make_2d(spec.name, k, noise=spec.noise, seed=s)

    finite = torch.isfinite(samples).all(dim=1)
    if not bool(finite.all()):
        return dict(sw1=float("nan"), floor=float("nan"), nn=float("nan"),
                    bad=int((~finite).sum()))
    return dict(
        sw1=metrics.sliced_wasserstein(samples, fresh_a, seed=seed),
        floor=metrics.sw1_floor(draw, n, seed=spec.seed, pairs=4),
        nn=metrics.nearest_neighbour_ratio(samples, state.data, fresh_b),
        bad=0,
    )


def _quality_md(q: dict, n: int, how: str) -> str:
    if q["bad"]:
        return (f"⚠️ {q['bad']} of {n} samples are NaN/inf — the model is not usable yet; "
                "train longer or with a lower learning rate.")
    ratio = q["sw1"] / q["floor"] if q["floor"] > 0 else float("nan")
    return (f"**SW1 = {q['sw1']:.4f}** · floor {q['floor']:.4f} ({ratio:.1f}× the floor; "
            f"lower is better) · **NN ratio = {q['nn']:.2f}** (1 is ideal) · {n:,} samples, "
            f"{how}")


def sample(state, sampler, steps, eta, n_samples, seed, clip_x0=False):
    """Sample N points with the reverse chain; a generator for the Sample button.

    ``clip_x0`` clamps the predicted x̂0 to [−1, 1] in every step (see samplers.sample).

    Yields ``(figure | no-change, Markdown)``: progress while running, then the animated
    figure (≤ 60 frames, final samples over the data) and the quality numbers.
    """
    state = _need_model(state)
    if state is None:
        yield gr.skip(), "Train a model first."
        return
    if sampler not in ("ddpm", "ddim"):
        raise gr.Error("Sampler must be ddpm or ddim.")
    T = state.T
    steps = common.number("Sampling steps", T if steps in (None, "") else steps, 1, T,
                          integer=True)
    eta = common.number("η", eta, 0.0, 1.0)
    n_samples = common.number("Number of samples", n_samples, 2, MAX_SAMPLES, integer=True)
    seed = common.number("Sampling seed", seed, 0, MAX_SEED, integer=True)

    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n_samples, 2, generator=g)
    keep = _frame_indices(steps)
    anim = _subset(n_samples, ANIM_POINTS, seed)
    frames = [x_T[anim]]
    labels: list[str] = []
    how = (f"DDPM, {steps} steps" if sampler == "ddpm"
           else f"DDIM, {steps} steps, η = {eta:g}") + (", x̂0 clipped" if clip_x0 else "")
    yield gr.skip(), f"Sampling ({how}) …"
    last = time.perf_counter()
    x = x_T
    model = state.model
    for step in samplers.sample(model, state.schedule, x_T, sampler=sampler, steps=steps,
                                eta=eta, spacing="trailing", clip_x0=bool(clip_x0),
                                generator=g):
        if not labels:
            labels.append(f"{step.t} (start: N(0, I))")
        x = step.x_prev
        if step.index in keep:
            frames.append(x[anim])
            labels.append("−1 (final)" if step.t_prev == -1 else str(step.t_prev))
        now = time.perf_counter()
        if now - last >= YIELD_EVERY_S:
            last = now
            yield gr.skip(), f"Sampling ({how}): step {step.index + 1} / {step.num_steps} …"

    q = _quality(state, x, seed)
    finite = x[torch.isfinite(x).all(dim=1)]
    half = _half_range(state.data, finite if len(finite) else state.data, q=0.99)
    half = max(half, min(_half_range(x_T, q=0.98), 3.2))
    fig = AnimatedFigure()
    fig.add_trace(_points_trace(state.data[_subset(len(state.data), SHOW_POINTS,
                                                   state.spec.seed)],
                                "training data", common.DATA_COLOR, size=3.5, opacity=0.35))
    final = x[anim]
    fig.add_trace(_points_trace(torch.nan_to_num(final, nan=0.0), "samples",
                                common.SAMPLE_COLOR, size=4.5, opacity=0.85))
    frame_traces = [[go.Scatter(dict(zip("xy", _xy(f), strict=True)))] for f in frames]
    _scatter_style(fig, half, title=f"Reverse chain: {how}")
    _animate(fig, frame_traces, labels, [1], prefix="points at t = ")
    # Open on the final frame: samples over the data.
    fig.layout.sliders[0].active = len(labels) - 1
    shown = "" if len(anim) == n_samples else f"; the animation moves {len(anim):,} of them"
    md = _quality_md(q, n_samples, how + shown)
    if sampler == "ddim" and not clip_x0 and state.schedule.alpha_bar(T - 1) < 1e-4:
        md += ("\n\n⚠️ This schedule ends at ᾱ_(T−1) = "
               f"{state.schedule.alpha_bar(T - 1):.1e}: DDIM's first step divides by "
               "√ᾱ_t, so small errors in ε̂ blow up. Tick *clip x̂0* or use DDPM.")
    yield fig, md


# ---------------------------------------------------------------------------------------------
# Forward diffusion animation
# ---------------------------------------------------------------------------------------------


def forward_animation(dataset, n, noise, seed, source, kind, T, shared) -> go.Figure:
    """x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε of the data set at ~30 evenly spaced t (one fixed ε)."""
    spec = _data_spec(dataset, n, noise, seed)
    cfg = _schedule_from_ui(source, kind, T, shared)
    schedule = core_schedules.NoiseSchedule(cfg)
    pts = toy_data.make_2d(spec.name, spec.n, noise=spec.noise, seed=spec.seed)
    eps = _fixed_noise(spec.n, spec.seed)
    idx = _subset(spec.n, ANIM_POINTS, spec.seed)
    x0, e = pts[idx], eps[idx]
    ts = sorted({int(round(v)) for v in np.linspace(0, schedule.T - 1, FORWARD_FRAMES)})
    clouds = [x0] + [forward.q_sample(schedule, x0, t, e) for t in ts]  # eq. (4), same ε
    labels = ["−1 (data)"] + [f"{t} (ᾱ = {schedule.alpha_bar(t):.3f})" for t in ts]
    half = max(_half_range(pts), min(_half_range(clouds[-1], q=0.98), 3.2))
    fig = AnimatedFigure()
    fig.add_trace(_points_trace(x0, "x_t", common.DATA_COLOR, size=4, opacity=0.6))
    frame_traces = [[go.Scatter(dict(zip("xy", _xy(c), strict=True)))] for c in clouds]
    _scatter_style(fig, half, title=f"Forward diffusion: {spec.name}, {cfg.kind}, "
                                    f"T = {schedule.T}")
    return _animate(fig, frame_traces, labels, [0], prefix="t = ", duration_ms=150)


# ---------------------------------------------------------------------------------------------
# Explanation
# ---------------------------------------------------------------------------------------------

EXPLANATION_MD = r"""
**What the model learns.** A small MLP $\varepsilon_\theta(x_t, t)$ looks at a noised point
$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ (DDPM eq. 4) and guesses the
noise $\varepsilon$ that was added. Steps are numbered $t = 0,\dots,T-1$ (the paper counts
$1,\dots,T$); $\bar\alpha_t = \prod_{s\le t}(1-\beta_s)$ and $\bar\alpha_{-1} = 1$.

**Algorithm 1 (training)**, one step per batch — what ▶ Train runs:

$$
\begin{aligned}
&x_0 \sim \text{data},\quad t \sim \mathrm{Uniform}\{0,\dots,T-1\},\quad
\varepsilon \sim \mathcal N(0, I)\\
&\text{gradient step on } \nabla_\theta\,\big\|\varepsilon -
\varepsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\ t\big)
\big\|^2 \quad \text{(eq. 14, } L_\text{simple}\text{)}
\end{aligned}
$$

The right-hand loss plot averages this loss over ranges of $t$: it is largest for small $t$,
where little noise was added and it is hard to tell which part of $x_t$ is noise.

**Two changes to Algorithm 1 in this tab's preset**, so that ▶ Train reaches a good model in
about a second (`diffusion_core/presets.py`; measured in `bench/toy2d_time_to_quality.py`):
$t = \lfloor T\,u^{@P@} \rfloor$ with $u \sim \mathrm{Uniform}[0, 1)$, so low-noise steps come up
more often; and the target $\varepsilon$ is replaced by the **Stable Target Field** (Xu et al.
2023), the noise averaged over the batch's clean points $x_0^{(j)}$, each weighted by how likely
it is to have produced $x_t$ (eq. 4):

$$
\varepsilon_\text{STF} =
\frac{x_t - \sqrt{\bar\alpha_t}\,\sum_j w_j\,x_0^{(j)}}{\sqrt{1-\bar\alpha_t}},
\qquad w_j \propto
\exp\!\Big(-\frac{\|x_t - \sqrt{\bar\alpha_t}\,x_0^{(j)}\|^2}{2(1-\bar\alpha_t)}\Big)
$$

Both targets have the same best answer, $\mathbb E[\varepsilon \mid x_t]$, but this one is far
less noisy, so the model learns faster; the plotted loss is measured against it and reads lower
than $\|\varepsilon - \varepsilon_\theta\|^2$ would.

**Algorithm 2 (sampling, DDPM)** — what *Sample* runs with "ddpm" and all $T$ steps:

$$
\begin{aligned}
&x_{T-1} \sim \mathcal N(0, I)\\
&\text{for } t = T-1,\dots,0:\quad z \sim \mathcal N(0, I) \text{ if } t > 0 \text{ else } z = 0\\
&\qquad x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,
\varepsilon_\theta(x_t, t)\Big) + \sigma_t z,\qquad
\sigma_t^2 = \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t \quad
\text{(eqs. 7, 11)}\\
&\text{return } x_{-1}
\end{aligned}
$$

With fewer steps the chain visits a subset of $t$ ("trailing" spacing: it always starts at
$T-1$) and uses the respaced $\beta' = 1 - \bar\alpha_t/\bar\alpha_{t'}$. **DDIM** (Song et al.
2020, eq. 12) instead moves deterministically ($\eta = 0$) from the predicted
$\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta)/\sqrt{\bar\alpha_t}$;
$\eta = 1$ adds DDPM-like noise back.

**The arrows** are $-\varepsilon_\theta(x, t)$ at grid points $x$: the direction in which the
model thinks the noise can be removed. They are proportional to the score,
$\nabla_x \log p_t(x) \approx -\varepsilon_\theta(x, t)/\sqrt{1-\bar\alpha_t}$, so following them
moves a point toward where noised data is dense. At large $t$ they point roughly to the centre
(the model only knows the data's mean); as $t \to 0$ they snap onto the data's shape. Arrow
lengths are normalised (∝ $|\hat\varepsilon|$ up to its 90th percentile over the grid, which is
drawn 0.9 grid cells long); hover shows the true $\hat\varepsilon$.

**Why the data are scaled to about $[-1, 1]$.** The noise has unit size. If the data were much
larger, $x_{T-1}$ would still contain visible data even where $\bar\alpha_{T-1}$ is small, and
sampling from $\mathcal N(0, I)$ would start off the training distribution; if they were much
smaller, the first few steps would already wipe them out and most of the chain would be wasted.
Each toy set is moved into $[-1, 1]$ by one fixed affine map (no standardising, which trained
worse in the 2D-toy experiments this tab is based on).

**Quality numbers.** SW1 is the sliced Wasserstein-1 distance between the samples and a fresh
draw of the data set (average over 256 random directions of the 1-D earth-mover's distance).
Two fresh draws of the same size are not identical either; their SW1 is the **floor** a perfect
model would score. The **NN ratio** compares how far samples sit from their nearest training
point with how far fresh data sits.
""".replace("@P@", f"{PRESET.train.timestep_power:g}")


# ---------------------------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------------------------


def render(shared_schedule: gr.State) -> None:
    """Build the tab's components and wire its events (called inside ``gr.Tab``)."""
    state = gr.State(None)
    init_spec = DataSpec(DEFAULT_DATASET, DEFAULT_POINTS,
                         TOY_SPECS[DEFAULT_DATASET].default_noise, 0)
    p_train, p_model = PRESET.train, PRESET.model

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            with gr.Row():
                dataset = gr.Dropdown(list(DATASETS), value=init_spec.name, label="Data set",
                                      scale=2, min_width=120)
                seed = gr.Number(value=0, label="Seed", precision=0, minimum=0,
                                 maximum=MAX_SEED, scale=1, min_width=70)
            with gr.Row():
                n_points = gr.Slider(100, common.MAX_POINTS, value=init_spec.n, step=100,
                                     label="Points", min_width=120)
                noise = gr.Slider(0.0, MAX_NOISE, value=init_spec.noise, step=0.01,
                                  label="Noise (std)", min_width=120)
            source = gr.Dropdown(_source_choices(shared_schedule.value), value=SOURCE_PRESET,
                                 label="Noise schedule")
            with gr.Row():
                lr = gr.Number(value=p_train.lr, label="lr", min_width=70)
                batch_size = gr.Number(value=p_train.batch_size, label="Batch", precision=0,
                                       minimum=1, maximum=MAX_BATCH, min_width=60)
                steps = gr.Number(value=p_train.steps, label="Steps", precision=0,
                                  minimum=1, maximum=MAX_STEPS, min_width=60)
            with gr.Row():
                train_btn = gr.Button("▶ Train", variant="primary", min_width=80)
                stop_btn = gr.Button("■ Stop", variant="stop", min_width=80)
            progress = gr.Markdown("Press ▶ Train; press it again to keep training the same "
                                   "model.", elem_classes=["dl-health"])
            with gr.Accordion("Model and custom schedule", open=False):
                with gr.Row():
                    hidden = gr.Dropdown(list(WIDTHS), value=p_model.hidden, label="Width",
                                         min_width=80)
                    depth = gr.Slider(1, MAX_DEPTH, value=p_model.depth, step=1,
                                      label="Depth", min_width=100)
                with gr.Row():
                    time_embedding = gr.Dropdown(list(TIME_EMBEDDINGS),
                                                 value=p_model.time_embedding,
                                                 label="Time embedding", min_width=100)
                    activation = gr.Dropdown(list(ACTIVATIONS), value=p_model.activation,
                                             label="Activation", min_width=100)
                with gr.Row():
                    kind = gr.Dropdown(list(BUILTIN_KINDS), value="cosine", label="Kind",
                                       min_width=100)
                    T = gr.Number(value=100, label="T (steps)", precision=0,
                                  minimum=common.T_MIN, maximum=common.T_MAX, min_width=80)
                gr.Markdown("Kind and T apply when the schedule is *Kind and T below*; "
                            "linear-type kinds use β = 1e-4 … 0.02 × 1000/T.",
                            elem_classes=["dl-health"])

        with gr.Column(scale=3):
            with gr.Tabs():
                with gr.Tab("Data & training"):
                    with gr.Row():
                        data_fig = gr.Plot(None, show_label=False, scale=2, min_width=320)
                        loss_fig = gr.Plot(loss_figure(None), show_label=False, scale=3,
                                           min_width=400)
                with gr.Tab("Vector field"):
                    with gr.Row():
                        with gr.Column(scale=1, min_width=220):
                            t_slider = gr.Slider(0, PRESET.schedule.T - 1,
                                                 value=PRESET.schedule.T // 2, step=1,
                                                 label="t")
                            gr.Markdown(
                                "Arrows: $-\\hat\\varepsilon_\\theta(x, t)$ on a "
                                f"{GRID}×{GRID} grid, the way the model would push a point at "
                                "step t. Lengths are normalised (∝ |ε̂| up to its 90th "
                                "percentile, drawn 0.9 cell long); colour "
                                "and hover give $|\\hat\\varepsilon|$. Blue: the data noised "
                                "to $x_t$ with one fixed $\\varepsilon$.",
                                latex_delimiters=LATEX)
                        field_fig = gr.Plot(show_label=False, scale=3)
                with gr.Tab("Sample"):
                    with gr.Row():
                        with gr.Column(scale=1, min_width=220):
                            sampler = gr.Radio(["ddpm", "ddim"], value="ddpm", label="Sampler")
                            with gr.Row():
                                sample_steps = gr.Number(value=PRESET.schedule.T,
                                                         label="Steps", precision=0,
                                                         min_width=70)
                                eta = gr.Number(value=0.0, label="η (DDIM)", minimum=0,
                                                maximum=1, step=0.1, min_width=70)
                            with gr.Row():
                                n_samples = gr.Number(value=1000, label="Samples", precision=0,
                                                      minimum=2, maximum=MAX_SAMPLES,
                                                      min_width=70)
                                sample_seed = gr.Number(value=0, label="Seed", precision=0,
                                                        minimum=0, maximum=MAX_SEED,
                                                        min_width=70)
                            clip_x0 = gr.Checkbox(False, label="clip x̂0 to [−1, 1]")
                            with gr.Row():
                                sample_btn = gr.Button("Sample", variant="primary",
                                                       min_width=80)
                                sample_stop = gr.Button("■ Stop", variant="stop",
                                                        min_width=70)
                        with gr.Column(scale=3):
                            sample_fig = gr.Plot(show_label=False, elem_classes=["dl-anim"])
                            quality = gr.Markdown("Train a model, then sample.",
                                                  elem_classes=["dl-health"])
                with gr.Tab("Forward diffusion") as forward_tab:
                    with gr.Row():
                        with gr.Column(scale=1, min_width=220):
                            forward_btn = gr.Button("Show forward diffusion", variant="primary")
                            gr.Markdown(
                                "The data noised with the schedule chosen on the left: "
                                "$x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + "
                                "\\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon$ (eq. 4) at about "
                                f"{FORWARD_FRAMES} evenly spaced t, the same ε in every "
                                "frame. The model learns to undo this.",
                                latex_delimiters=LATEX)
                        forward_fig = gr.Plot(show_label=False, scale=3,
                                              elem_classes=["dl-anim"])
            with gr.Accordion("How this works: DDPM Algorithms 1 and 2, the arrows, the scaling",
                              open=False):
                gr.Markdown(EXPLANATION_MD, latex_delimiters=LATEX)

    # --- events -------------------------------------------------------------------------------
    data_inputs = [dataset, n_points, noise, seed]
    common.on_load(lambda: data_plot(init_spec.name, init_spec.n, init_spec.noise, init_spec.seed),
                   [data_fig], concurrency_limit=8,
                   concurrency_id="toy_data", show_progress="hidden")
    schedule_inputs = [source, kind, T, shared_schedule]
    dataset.input(dataset_changed, [dataset, n_points, seed], [data_fig, noise],
                  api_name="toy_dataset", concurrency_limit=8, concurrency_id="toy_data")
    gr.on([n_points.release, noise.release, seed.submit, seed.blur], data_plot, data_inputs,
          data_fig, api_name="toy_data_plot", concurrency_limit=8, concurrency_id="toy_data")
    shared_schedule.change(shared_schedule_changed, [shared_schedule, source], source,
                           api_name="toy_shared_schedule", concurrency_limit=8,
                           concurrency_id="toy_cheap")

    train_event = train_btn.click(
        train,
        [state, *data_inputs, *schedule_inputs, hidden, depth, time_embedding, activation, lr,
         batch_size, steps],
        [state, loss_fig, progress, t_slider, sample_steps],
        api_name="toy_train", concurrency_limit=2, concurrency_id="toy_heavy",
        trigger_mode="once", show_progress="minimal",
    )
    # .then runs after success and after Stop (a cancel); it also clears Gradio's "Error"
    # badge on the cancelled event's outputs by writing all of them.
    train_event.then(train_finished, [state, t_slider, progress],
                     [field_fig, loss_fig, progress, t_slider, sample_steps],
                     api_name="toy_train_finished", concurrency_limit=8,
                     concurrency_id="toy_field")
    stop_btn.click(None, None, None, cancels=[train_event], api_name="toy_train_stop",
                   queue=False)

    gr.on([t_slider.release], vector_field, [state, t_slider], field_fig,
          api_name="toy_vector_field", concurrency_limit=8, concurrency_id="toy_field",
          trigger_mode="always_last", show_progress="hidden")

    sample_event = sample_btn.click(
        sample, [state, sampler, sample_steps, eta, n_samples, sample_seed, clip_x0],
        [sample_fig, quality], api_name="toy_sample", concurrency_limit=2,
        concurrency_id="toy_heavy", trigger_mode="once", show_progress="minimal",
    )
    sample_event.then(sample_finished, quality, [sample_fig, quality],
                      api_name="toy_sample_finished", concurrency_limit=8,
                      concurrency_id="toy_cheap")
    sample_stop.click(None, None, None, cancels=[sample_event], api_name="toy_sample_stop",
                      queue=False)
    forward_btn.click(forward_animation, [*data_inputs, *schedule_inputs], forward_fig,
                      api_name="toy_forward", concurrency_limit=4, concurrency_id="toy_forward")
    forward_tab.select(forward_animation, [*data_inputs, *schedule_inputs], forward_fig,
                       api_name="toy_forward_on_select", concurrency_limit=4,
                       concurrency_id="toy_forward")
    # Browser-only: register animation frames with Plotly whenever an animated plot changes.
    for fig in (sample_fig, forward_fig):
        fig.change(None, None, None, js=FRAMES_JS, queue=False, api_visibility="private")
