"""Tab 3's "Sampler lab": several samplers from the same noise, steps vs quality, DDIM inversion.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); t = 0 is one noising step and
ᾱ_{−1} = 1 is the clean data. Every chain starts from one seeded x_T at its first visited t and
ends at t = −1 (the samples).

A view only: the comparison, the sweep, the round trip and the judge are
:mod:`diffusion_core.workflows.sampler_lab`; here are the controls, the Plotly figures and the
handlers (plain module-level functions, generators for anything long, so tests call them):

============================  =================================================================
handler                       what it does
============================  =================================================================
``compare``                   generator: 2–4 samplers from one x_T → final points with ~300
                              particle paths per panel, SW1 / NN ratio / NFE each
``sweep``                     generator: the ticked samplers at several step counts from the
                              same x_T → SW1 and NN ratio against the number of network calls
``invert``                    generator: DDIM inversion round trip of the training points at
                              several step counts → error vs steps, latents, reconstruction
``show_round_trip``           redraws the inversion figure at another step count (no compute)
``slot_changed``              which of η / σ² apply to a slot's sampler
``lab_finished``              after a run ends or is ■ Stopped: says so, clears the badges
============================  =================================================================

:func:`render` builds the controls inside the caller's ``gr.Tab("Sampler lab")`` of tab 3 and
takes that tab's ``gr.State`` (a :class:`~diffusion_core.workflows.toy2d.Toy2DSession`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from diffusion_core.sampling.config import SAMPLERS, SPACINGS, SamplerSettings
from pages import common, jobs, limits, sessions
from pages.toy2d.inputs import is_session
from pages.widgets import inputs as ui
from pages.widgets import sweep as sweeps
from pages.widgets.sweep import COLORS, FIGURE_EVERY_S, RUNNING, YIELD_EVERY_S

# Imported by the first event that needs them, not while the UI is built (see pages.common).
torch = common.LazyModule("torch")
lab = common.LazyModule("diffusion_core.workflows.sampler_lab")
toy_workflow = common.LazyModule("diffusion_core.workflows.toy2d")

__all__ = ["compare", "invert", "lab_finished", "render", "show_round_trip", "slot_changed",
           "sweep"]

SLOTS = 4
MAX_POINTS = 5000
DEFAULT_POINTS = 1000
MAX_PATHS = 500
DEFAULT_PATHS = 300
MAX_SEED = common.MAX_SEED
STEP_CHOICES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
DEFAULT_SWEEP_STEPS = [2, 5, 10, 20, 50, 100, 200]
INVERSION_STEP_CHOICES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
DEFAULT_INVERSION_STEPS = [2, 5, 10, 20, 50, 100, 200]
DEFAULT_FOCUS = 10
TOP_ALPHA_BAR = 1e-3  # the inversion's default end: the last t with ᾱ_t ≥ this
END_NOISE, END_LEADING, END_TRAILING = "noise", "leading", "trailing"
END_CHOICES = [("at ᾱ ≈ 0.001 (same end for every count)", END_NOISE),
               ("leading spacing (as the image tab)", END_LEADING),
               ("trailing spacing (ends at T − 1)", END_TRAILING)]
VARIANCE_CHOICES = [("β̃ (posterior)", "beta_tilde"), ("β", "beta")]
SAMPLER_CHOICES = [(s.label, s.name) for s in SAMPLERS.values()]
# The four default slots: (sampler, steps, η, σ², spacing). DDPM's 200 is the 2D preset's whole
# chain (steps above the model's T are cut to T).
DEFAULT_SLOTS = (
    ("ddpm", 200, 0.0, "beta_tilde", "trailing"),
    ("ddim", 20, 0.0, "beta_tilde", "trailing"),
    ("ddim", 20, 1.0, "beta_tilde", "trailing"),
    ("dpmpp_2m", 10, 0.0, "beta_tilde", "trailing"),
)
SLOT_FIELDS = 6  # on, sampler, steps, η, σ², spacing
DATA_GREY = "#b8c2cc"
SHOW_POINTS = 2000  # points drawn per panel (a fixed subset)
MAX_PATH_POSITIONS = 61  # positions drawn per path (evenly spaced steps; JSON size)
PLOT_HEIGHT = 420
LIMIT_PREFIX = "⏱ Stopped at"
NO_MODEL = "Train a model first: press ▶ Train on the left, then come back here."


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def _session(state):
    """The session, or None after a warning (the handlers then answer :data:`NO_MODEL`)."""
    if is_session(state):
        return state
    gr.Warning(NO_MODEL)
    return None


def _slot_settings(i: int, T: int, on, sampler, steps, eta, variance, spacing, clip_x0
                   ) -> SamplerSettings | None:
    """Slot ``i``'s settings (None when it is not ticked); bad values → :class:`UserError`."""
    if not isinstance(on, bool):
        raise common.UserError(f"Sampler {i + 1}: 'use' must be true or false.")
    if not on:
        return None
    if sampler not in SAMPLERS:
        raise common.UserError(f"Sampler {i + 1} must be one of "
                               f"{', '.join(SAMPLERS)} (got {common.short(sampler)}).")
    info = SAMPLERS[sampler]
    steps = common.number(f"Sampler {i + 1} steps", steps, 1, STEP_CHOICES[-1], integer=True,
                          default=info.default_steps(T))
    eta = common.number(f"Sampler {i + 1} η", eta, 0.0, 1.0, default=0.0)
    if variance not in ("beta_tilde", "beta"):
        raise common.UserError(f"Sampler {i + 1} σ² must be beta_tilde or beta.")
    if spacing not in SPACINGS:
        raise common.UserError(f"Sampler {i + 1} spacing must be one of {', '.join(SPACINGS)}.")
    return SamplerSettings(sampler=sampler, steps=min(steps, T),
                           eta=eta if "eta" in info.options else 0.0, spacing=spacing,
                           variance=variance if "variance" in info.options else "beta_tilde",
                           clip_x0=bool(clip_x0))


def _configs(T: int, slots, clip_x0, *, least: int = 2) -> tuple[list[SamplerSettings],
                                                                  list[int]]:
    """The ticked slots' settings and their slot numbers; at least ``least`` ticked."""
    if len(slots) != SLOTS * SLOT_FIELDS:
        raise common.UserError(f"Expected {SLOTS} samplers of {SLOT_FIELDS} fields each.")
    if not isinstance(clip_x0, bool):
        raise common.UserError("'clip x̂0' must be true or false.")
    configs, which = [], []
    for i in range(SLOTS):
        s = _slot_settings(i, T, *slots[i * SLOT_FIELDS:(i + 1) * SLOT_FIELDS], clip_x0)
        if s is not None:
            configs.append(s)
            which.append(i)
    if len(configs) < least:
        raise common.UserError(f"Tick at least {least} samplers to compare (1 to {SLOTS}).")
    return configs, which


def _step_list(values, what: str, choices) -> list[int]:
    if values is None:
        values = []
    if not isinstance(values, list) or not all(v in choices for v in values):
        raise common.UserError(f"{what}: choose among {', '.join(map(str, choices))}.")
    if not values:
        raise common.UserError(f"{what}: tick at least one step count.")
    return sorted({int(v) for v in values})


def _label(s: SamplerSettings, T: int | None = None) -> str:
    """Short sampler name for legends: ``DDIM η=0 · trailing`` (no spacing on a full chain of
    ``T`` steps, where every spacing visits every t)."""
    parts = [s.info.label]
    if "eta" in s.info.options:
        parts.append(f"η={s.eta:g}")
    if "variance" in s.info.options:
        parts.append("σ²=β" if s.variance == "beta" else "σ²=β̃")
    full = T is not None and s.steps is not None and s.steps >= T
    return " ".join(parts) + ("" if full else f" · {s.spacing}")


def _schedule_warning(state, configs) -> str:
    """A note when a deterministic sampler starts at T − 1 of a schedule ending near ᾱ = 0
    without x̂0 clipping (its first step divides ε̂'s error by √ᾱ_{T−1})."""
    ab = state.schedule.alpha_bar(state.T - 1)
    risky = [s for s in configs if s.sampler != "ddpm" and not (s.sampler == "ddim" and s.eta > 0)
             and s.spacing in ("trailing", "linspace") and not s.clip_x0]
    if ab >= 1e-4 or not risky:
        return ""
    return (f"\n\n⚠️ This schedule ends at ᾱ_(T−1) = {ab:.1e}. A deterministic sampler that "
            "starts there (trailing or linspace spacing) computes x̂0 = (x − √(1−ᾱ) ε̂)/√ᾱ, "
            f"dividing every error of ε̂ by √ᾱ ≈ {math.sqrt(ab):.0e}: points are flung far "
            "away. Tick *clip x̂0* or use leading spacing (it starts below T − 1).")


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _f32(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _subset(n: int, k: int, seed: int = 0) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _square(fig: go.Figure, half: float, rows: int, cols: int, *, skip: set | None = None
            ) -> None:
    """Equal, square axes of ±``half`` for every (row, col) panel except those in ``skip``."""
    k = 0
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            k += 1
            if skip and (r, c) in skip:
                continue
            xa = "x" if k == 1 else f"x{k}"
            fig.update_xaxes(range=[-half, half], zeroline=False, constrain="domain",
                             row=r, col=c)
            fig.update_yaxes(range=[-half, half], zeroline=False, scaleanchor=xa, scaleratio=1,
                             constrain="domain", row=r, col=c)


def _paths_xy(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One polyline for all paths ``[K + 1, P, 2]``: each path, then a NaN gap."""
    k = paths.shape[0]
    keep = np.unique(np.rint(np.linspace(0, k - 1, min(k, MAX_PATH_POSITIONS))).astype(int))
    p = paths[keep]  # [K', P, 2]
    gap = np.full((1, p.shape[1], 2), np.nan, dtype=np.float32)
    seq = np.concatenate([p, gap], axis=0).transpose(1, 0, 2).reshape(-1, 2)
    return np.ascontiguousarray(seq[:, 0]), np.ascontiguousarray(seq[:, 1])


def _caption(run, T: int) -> str:
    """A panel's title: the sampler and steps, then NFE and quality, then path length."""
    s = run.scores or {}
    quality = "" if not s else (
        f" · SW1 {s['sw1']:.3f} ({s['ratio']:.1f}× floor)" if not s.get("bad")
        else f" · {int(s['bad'])} points NaN/inf")
    nn = f"NN ratio {s['nn']:.2f}" if s and not s.get("bad") else ""
    wiggle = (f"path ÷ straight {run.path_length / run.path_chord:.1f}"
              if run.path_chord and math.isfinite(run.path_length) else "")
    third = " · ".join(p for p in (nn, wiggle) if p)
    small = "<span style='font-size:11px'>"
    return (f"<b>{_label(run.settings, T)}</b>, {run.steps} steps<br>{small}NFE {run.nfe}"
            f"{quality}</span><br>{small}{third}</span>")


def comparison_figure(state, comparison, which: list[int], *, note: str = "") -> go.Figure:
    """One panel per finished sampler: the data (grey), the tracked particles' paths from x_T
    (thin lines, one colour per slot) and the final points; the title gives NFE and quality."""
    from plotly.subplots import make_subplots

    runs = comparison.runs
    cols = max(1, len(comparison.configs))
    titles = [_caption(r, comparison.T) for r in runs] + [""] * (cols - len(runs))
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles, horizontal_spacing=0.03)
    data = state.data[_subset(len(state.data), SHOW_POINTS, 1)]
    idx = comparison.path_index
    half = toy_workflow.half_width(state.data, comparison.x_T[idx] if len(idx) else state.data,
                                   q=0.98)
    shown = _subset(comparison.x_T.shape[0], SHOW_POINTS, 2)
    for j, run in enumerate(runs):
        color = COLORS[which[run.index]]
        first = j == 0
        fig.add_trace(go.Scatter(x=_f32(data[:, 0]), y=_f32(data[:, 1]), mode="markers",
                                 name="training data", legendgroup="data", showlegend=first,
                                 marker=dict(color=DATA_GREY, size=3, opacity=0.5),
                                 hoverinfo="skip"), row=1, col=j + 1)
        if run.paths is not None:
            px, py = _paths_xy(_f32(run.paths))
            # long jittering chains would hide everything: fainter the more steps are drawn
            drawn = min(run.paths.shape[0], MAX_PATH_POSITIONS)
            opacity = float(np.clip(0.5 * math.sqrt(20 / drawn), 0.12, 0.5))
            fig.add_trace(go.Scatter(x=px, y=py, mode="lines", name="paths from x_T",
                                     legendgroup="paths", showlegend=first,
                                     line=dict(color=color, width=0.7), opacity=opacity,
                                     hoverinfo="skip"), row=1, col=j + 1)
            start = _f32(run.paths[0])
            fig.add_trace(go.Scatter(x=start[:, 0], y=start[:, 1], mode="markers",
                                     name="x_T (start)", legendgroup="start", showlegend=first,
                                     marker=dict(color="#444", size=3, symbol="x-thin",
                                                 line=dict(width=1)),
                                     hoverinfo="skip"), row=1, col=j + 1)
        pts = _f32(run.samples[shown])
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers",
                                 name=f"samples ({_label(run.settings)})", showlegend=False,
                                 marker=dict(color=color, size=4, opacity=0.85,
                                             line=dict(color="white", width=0.3)),
                                 hovertemplate="x₁ %{x:.3f}<br>x₂ %{y:.3f}<extra></extra>"),
                      row=1, col=j + 1)
    common.style_figure(fig, height=PLOT_HEIGHT)
    fig.update_layout(hovermode="closest", margin=dict(l=40, r=10, t=85, b=35),
                      legend=dict(orientation="h", x=0, y=-0.08, yanchor="top"))
    fig.update_annotations(font_size=13)
    _square(fig, half, 1, cols)
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(dtick=1)
    if not runs:
        fig.add_annotation(text=note or "no sampler finished", showarrow=False,
                           xref="x domain", yref="y domain", x=0.5, y=0.5)
    return fig


def empty_figure(text: str, height: int = 300) -> go.Figure:
    """A blank figure with one line of text (before the first run)."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                       font=dict(size=14))
    common.style_figure(fig, height=height)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def sweep_figure(sweep, which: list[int], labels: list[str]) -> go.Figure:
    """One panel per metric of the sweep's judge (:func:`pages.widgets.sweep.sweep_figure`,
    log y)."""
    return sweeps.sweep_figure(sweep, labels, which, log_y=True, height=PLOT_HEIGHT + 40)


def inversion_figure(data: InversionRecord, focus: int) -> go.Figure:
    """Left: round-trip RMS error against the number of steps (log–log; NFE = 2 × steps).
    Middle: the inverted latents x_T at ``focus`` steps (with the N(0, I) 1σ/2σ circles).
    Right: the data and its reconstruction at ``focus`` steps, each pair joined by a segment."""
    from plotly.subplots import make_subplots

    trips = data.trips
    trip = min(trips, key=lambda tr: (abs(tr.steps - focus), tr.steps))
    fig = make_subplots(rows=1, cols=3, column_widths=[0.36, 0.32, 0.32],
                        horizontal_spacing=0.07,
                        subplot_titles=(
                            "round-trip error x0 → x_T → x̂0",
                            f"latents x_T at {trip.steps} steps (t = {trip.t_top})",
                            f"data and reconstruction at {trip.steps} steps"))
    steps = np.array([tr.steps for tr in trips])
    err = np.array([tr.rms for tr in trips])
    ok = np.isfinite(err) & (err > 0)
    fig.add_trace(go.Scatter(x=steps[ok], y=err[ok], mode="lines+markers",
                             name="RMS error", showlegend=False,
                             line=dict(color=COLORS[1], width=2.5), marker=dict(size=8),
                             hovertemplate="%{x} steps<br>RMS error %{y:.4g}<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=[trip.steps], y=[trip.rms] if math.isfinite(trip.rms) else [],
                             mode="markers", showlegend=False, hoverinfo="skip",
                             marker=dict(size=15, color="rgba(0,0,0,0)",
                                         line=dict(color="#222", width=2))), row=1, col=1)
    if ok.sum() >= 2:  # a 1/steps guide through the first finite point
        s0, e0 = steps[ok][0], err[ok][0]
        guide = np.array([steps[ok][0], steps[ok][-1]], dtype=np.float64)
        fig.add_trace(go.Scatter(x=guide, y=e0 * s0 / guide, mode="lines",
                                 name="∝ 1/steps", showlegend=True,
                                 line=dict(color="#888", dash="dot", width=1.5),
                                 hoverinfo="skip"), row=1, col=1)
    fig.update_xaxes(type="log", title_text="steps each way (NFE = 2 × steps)",
                     tickvals=[int(v) for v in steps], row=1, col=1)
    fig.update_yaxes(type="log", title_text="RMS error (log)", dtick="D2", row=1, col=1)

    shown = _subset(len(data.x0), SHOW_POINTS, 3)
    z = _f32(trip.x_T[shown])
    theta = np.linspace(0, 2 * np.pi, 121)
    for r in (1.0, 2.0):
        fig.add_trace(go.Scatter(x=r * np.cos(theta), y=r * np.sin(theta), mode="lines",
                                 showlegend=False, hoverinfo="skip",
                                 line=dict(color="#999", dash="dot", width=1)), row=1, col=2)
    fig.add_trace(go.Scatter(x=z[:, 0], y=z[:, 1], mode="markers", name="latent x_T",
                             showlegend=False, marker=dict(color=COLORS[2], size=3.5,
                                                           opacity=0.6),
                             hovertemplate="x₁ %{x:.3f}<br>x₂ %{y:.3f}<extra></extra>"),
                  row=1, col=2)
    x0, xh = _f32(data.x0[shown]), _f32(trip.x0_hat[shown])
    finite = np.isfinite(xh).all(axis=1)
    seg = np.stack([x0, np.where(finite[:, None], xh, np.nan),
                    np.full_like(x0, np.nan)], axis=1).reshape(-1, 2)
    fig.add_trace(go.Scatter(x=seg[:, 0], y=seg[:, 1], mode="lines", name="error",
                             line=dict(color="#444", width=0.8), hoverinfo="skip"),
                  row=1, col=3)
    fig.add_trace(go.Scatter(x=x0[:, 0], y=x0[:, 1], mode="markers", name="data x0",
                             marker=dict(color=COLORS[0], size=3.5, opacity=0.6),
                             hoverinfo="skip"), row=1, col=3)
    fig.add_trace(go.Scatter(x=xh[finite, 0], y=xh[finite, 1], mode="markers",
                             name="reconstruction x̂0",
                             marker=dict(color=COLORS[1], size=3.5, opacity=0.6),
                             hovertemplate="x̂0 %{x:.3f}, %{y:.3f}<extra></extra>"),
                  row=1, col=3)
    common.style_figure(fig, height=PLOT_HEIGHT)
    fig.update_layout(hovermode="closest", margin=dict(l=60, r=10, t=50, b=50),
                      legend=dict(orientation="h", x=1.0, xanchor="right", y=-0.12,
                                  yanchor="top"))
    fig.update_annotations(font_size=13)
    half_z = max(3.0, float(np.nanquantile(np.abs(z), 0.99)) * 1.1) if len(z) else 3.0
    _square_panel(fig, min(half_z, 8.0), 2)
    _square_panel(fig, toy_workflow.half_width(data.x0), 3)
    return fig


def _square_panel(fig: go.Figure, half: float, col: int) -> None:
    xa = "x" if col == 1 else f"x{col}"
    fig.update_xaxes(range=[-half, half], zeroline=False, constrain="domain", row=1, col=col)
    fig.update_yaxes(range=[-half, half], zeroline=False, scaleanchor=xa, scaleratio=1,
                     constrain="domain", row=1, col=col)


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


def slot_changed(sampler):
    """A slot's sampler changed: η applies to DDIM only, σ² to DDPM only."""
    if sampler not in SAMPLERS:
        raise common.UserError(f"Sampler must be one of {', '.join(SAMPLERS)}.")
    info = SAMPLERS[sampler]
    return (gr.update(interactive="eta" in info.options),
            gr.update(interactive="variance" in info.options))


lab_finished = sweeps.run_finished  # says "■ Stopped during: …" after a ■ Stop


def _common_inputs(n_points, seed):
    n = common.number("Points", n_points, 10, MAX_POINTS, integer=True, default=DEFAULT_POINTS)
    seed = common.number("Seed", seed, 0, MAX_SEED, integer=True, default=0)
    return n, seed


@jobs.heavy("sampling")
def compare(state, use1, sampler1, steps1, eta1, variance1, spacing1,
            use2, sampler2, steps2, eta2, variance2, spacing2,
            use3, sampler3, steps3, eta3, variance3, spacing3,
            use4, sampler4, steps4, eta4, variance4, spacing4,
            clip_x0=True, n_points=DEFAULT_POINTS, n_paths=DEFAULT_PATHS, seed=0,
            request: gr.Request | None = None):
    """Run the ticked samplers (2–4) from one x_T; a generator for the Compare button.

    Each of the :data:`SLOTS` slots is (use, sampler, steps, η, σ², spacing); then
    ``clip_x0``, the number of points, the number of paths drawn and the seed. Steps above the
    model's T are cut to T. The run may take the server's sampling budget; a run that spends
    it shows the samplers that finished.

    Yields ``(figure | no-change, status Markdown)``: progress at least every 0.1 s, the figure
    after each sampler finishes (at most every 0.5 s) and at the end.
    """
    state = _session(state)
    if state is None:
        yield gr.skip(), NO_MODEL
        return
    slots = (use1, sampler1, steps1, eta1, variance1, spacing1,
             use2, sampler2, steps2, eta2, variance2, spacing2,
             use3, sampler3, steps3, eta3, variance3, spacing3,
             use4, sampler4, steps4, eta4, variance4, spacing4)
    configs, which = _configs(state.T, slots, clip_x0)
    n, seed = _common_inputs(n_points, seed)
    n_paths = common.number("Paths", n_paths, 0, MAX_PATHS, integer=True,
                            default=DEFAULT_PATHS)
    budget = limits.ACTIVE.sampling_budget()
    judge = lab.toy2d_judge(state, n, projection_seed=seed)
    run = lab.SamplerComparison(state.model, state.schedule, configs, n, seed, shape=(2,),
                                path_points=min(n_paths, n), judge=judge)
    total = run.planned_nfe
    yield gr.skip(), (f"{RUNNING} Sampling {len(configs)} samplers from one x_T ({total} "
                      "network calls) …")
    start = last = last_fig = time.perf_counter()
    done_nfe = 0
    spent = None
    chain = jobs.paced(run)
    try:
        for p in chain:
            done_nfe += 1
            now = time.perf_counter()
            if p.finished is None:
                spent = sweeps.stop_reason(budget, start, done_nfe, chain)
                if spent is not None:
                    break
            if p.finished is not None and now - last_fig >= FIGURE_EVERY_S \
                    and len(run.runs) < len(configs):
                last_fig = last = now
                yield (comparison_figure(state, run, which),
                       f"{RUNNING} Sampler {p.run + 1} of {p.num_runs} done …")
            elif now - last >= YIELD_EVERY_S:
                last = now
                yield gr.skip(), (f"{RUNNING} Sampler {p.run + 1} of {p.num_runs}: "
                                  f"{_label(configs[p.run])}, step {p.step.index + 1} / "
                                  f"{p.step.num_steps} ({done_nfe} / {total} network calls) …")
    finally:
        chain.close()
    fig = comparison_figure(state, run, which)
    md = _comparison_md(state, run, which, n)
    if spent is not None:
        gr.Warning(f"Sampling stopped at {spent}.")
        md = (f"{LIMIT_PREFIX} {spent}** (this server's limit): {len(run.runs)} of "
              f"{len(configs)} samplers finished. Use fewer steps or fewer points.\n\n" + md)
    yield fig, md + _schedule_warning(state, configs)


def _comparison_md(state, run, which, n: int) -> str:
    rows = ["| # | sampler | NFE | SW1 (floor) | NN ratio | path length ÷ straight | s |",
            "|---|---|---|---|---|---|---|"]
    for r in run.runs:
        s = r.scores or {}
        sw = ("NaN/inf" if s.get("bad") else f"{s['sw1']:.4f} ({s['floor']:.4f})") if s else "—"
        nn = f"{s['nn']:.2f}" if s and not s.get("bad") else "—"
        ratio = (f"{r.path_length / r.path_chord:.2f}" if r.path_chord
                 and math.isfinite(r.path_length) else "—")
        rows.append(f"| {which[r.index] + 1} | {r.label} | {r.nfe} | {sw} | {nn} | {ratio} | "
                    f"{r.seconds:.2f} |")
    return (f"All samplers started from the **same x_T** ({n:,} points, seed {run.seed}); "
            "the stochastic ones also drew the same noise. SW1: lower is better, the floor is "
            "two fresh draws of the data; NN ratio: 1 is ideal. Path length ÷ straight: how "
            "much longer each tracked point's path is than the straight line from x_T to its "
            "sample (ODE paths are smooth, ancestral paths jitter).\n\n" + "\n".join(rows))


@jobs.heavy("sampling")
def sweep(state, use1, sampler1, steps1, eta1, variance1, spacing1,
            use2, sampler2, steps2, eta2, variance2, spacing2,
            use3, sampler3, steps3, eta3, variance3, spacing3,
            use4, sampler4, steps4, eta4, variance4, spacing4,
          clip_x0=True, n_points=DEFAULT_POINTS, seed=0, counts=None,
          request: gr.Request | None = None):
    """Steps vs quality: the ticked samplers at each ticked step count, all from one x_T; a
    generator for the "Steps vs quality" button.

    The slots are as in :func:`compare`; then ``clip_x0``, the number of points, the seed and
    the list of step counts (counts above T are dropped). Each slot keeps its
    sampler, η, σ² and spacing; only its step count varies. Within the sampling budget; a
    sweep that spends it keeps the curves so far (the counts run from small to large).

    Yields ``(figure | no-change, status Markdown)``.
    """
    state = _session(state)
    if state is None:
        yield gr.skip(), NO_MODEL
        return
    slots = (use1, sampler1, steps1, eta1, variance1, spacing1,
             use2, sampler2, steps2, eta2, variance2, spacing2,
             use3, sampler3, steps3, eta3, variance3, spacing3,
             use4, sampler4, steps4, eta4, variance4, spacing4)
    configs, which = _configs(state.T, slots, clip_x0, least=1)
    n, seed = _common_inputs(n_points, seed)
    counts = _step_list(counts, "Step counts", STEP_CHOICES)
    usable = [c for c in counts if c <= state.T]
    if not usable:
        raise common.UserError(f"Every step count is above this model's T = {state.T}; tick "
                               "a smaller one.")
    judge = lab.toy2d_judge(state, n, projection_seed=seed)
    run = lab.QualitySweep(state.model, state.schedule, configs, usable, judge, n, seed,
                           shape=(2,))
    labels = [f"{which[i] + 1}: {_label(s)}" for i, s in enumerate(configs)]
    dropped = sorted(set(counts) - set(usable))
    note = (f" Step counts above T = {state.T} were left out: "
            f"{', '.join(map(str, dropped))}." if dropped else "")
    yield gr.skip(), (f"{RUNNING} {len(run.plan)} runs, {run.nfe_total:,} network calls of "
                      f"{n:,} points …")
    start = time.perf_counter()
    spent = yield from sweeps.stream_sweep(run, lambda: sweep_figure(run, which, labels), labels)
    md = (f"**Steps vs quality**, {n:,} points from the same x_T (seed {seed}); x = network "
          "evaluations (one per step for DDPM, DDIM and DPM-Solver++ 2M). "
          f"{len(run.points)} of {len(run.plan)} runs in "
          f"{time.perf_counter() - start:.1f} s.{note}")
    if spent is not None:
        gr.Warning(f"The sweep stopped at {spent}.")
        md = (f"{LIMIT_PREFIX} {spent}** (this server's limit): the curves show the runs that "
              "finished. Fewer points or step counts fit.\n\n" + md)
    yield sweep_figure(run, which, labels), md + _schedule_warning(state, configs)


@dataclass(frozen=True)
class InversionRecord:
    """The last inversion run of a session (for redrawing at another step count)."""

    x0: object  # torch.Tensor [n, 2]
    trips: tuple
    end: str
    T: int


@jobs.heavy("sampling")
def invert(state, n_points, counts, end, focus, request: gr.Request | None = None):
    """DDIM inversion round trip x0 → x_T → x̂0 of ``n_points`` training points at each ticked
    step count; a generator for the Invert button.

    ``end``: ``"noise"`` (default) runs every count to the same timestep, the last with
    ᾱ_t ≥ 0.001, with evenly spaced steps (trailing spacing on the schedule cut there);
    ``"leading"`` / ``"trailing"`` use that spacing on the whole schedule (trailing ends at
    T − 1, where a cosine schedule's ᾱ ≈ 0 makes the round trip blow up). ``focus``: the
    step count whose latents and reconstruction are drawn.

    Yields ``(figure | no-change, status Markdown, InversionRecord | no-change)``.
    """
    state = _session(state)
    if state is None:
        yield gr.skip(), NO_MODEL, gr.skip()
        return
    n = common.number("Points", n_points, 10, MAX_POINTS, integer=True, default=DEFAULT_POINTS)
    counts = _step_list(counts, "Step counts", INVERSION_STEP_CHOICES)
    if end not in (END_NOISE, END_LEADING, END_TRAILING):
        raise common.UserError(f"Where the inversion ends must be one of {END_NOISE}, "
                               f"{END_LEADING}, {END_TRAILING}.")
    focus = common.number("Show the round trip at", focus, 1, INVERSION_STEP_CHOICES[-1],
                          integer=True, default=DEFAULT_FOCUS)
    x0 = state.data[torch.from_numpy(_subset(len(state.data), n, 4))]
    n = len(x0)  # at most the training set
    if end == END_NOISE:
        top = lab.noisy_top(state.schedule, TOP_ALPHA_BAR)
        kw = dict(spacing="trailing", top=top)
        where = (f"every count ends at t = {top} (the last t with ᾱ_t ≥ {TOP_ALPHA_BAR:g}; "
                 "evenly spaced steps)")
        limit_T = top + 1
    else:
        kw = dict(spacing=end)
        where = f"{end} spacing on the whole schedule (T = {state.T})"
        limit_T = state.T
    usable = [c for c in counts if c <= limit_T]
    if not usable:
        raise common.UserError(f"Every step count is above {limit_T}; tick a smaller one.")
    run = lab.InversionSweep(state.model, state.schedule, x0, usable, **kw)
    total = 2 * sum(usable)
    budget = limits.ACTIVE.sampling_budget()
    yield gr.skip(), f"{RUNNING} Inverting {n:,} points ({total:,} network calls) …", gr.skip()
    start = last = time.perf_counter()
    spent = None
    calls = 0
    chain = jobs.paced(run)
    try:
        for p in chain:
            if p.trip is None:
                calls += 1
                spent = sweeps.stop_reason(budget, start, calls, chain)
                if spent is not None:
                    break
            now = time.perf_counter()
            if now - last >= YIELD_EVERY_S:
                last = now
                yield gr.skip(), (f"{RUNNING} {p.steps} steps ({p.index + 1} / "
                                  f"{p.num_counts}): {p.phase} … ({calls:,} / {total:,} "
                                  "network calls)"), gr.skip()
    finally:
        chain.close()
    if not run.trips:
        yield gr.skip(), (f"{LIMIT_PREFIX} {spent}**: no round trip finished. Use fewer "
                          "points or smaller step counts."), gr.skip()
        return
    record = InversionRecord(x0=x0, trips=tuple(run.trips), end=end, T=state.T)
    md = _inversion_md(record, where, n)
    dropped = sorted(set(counts) - set(usable))
    if dropped:
        md += (f" Left out (more steps than the {limit_T} timesteps up to there): "
               f"{', '.join(map(str, dropped))}.")
    if spent is not None:
        gr.Warning(f"The inversion stopped at {spent}.")
        md = f"{LIMIT_PREFIX} {spent}** (this server's limit).\n\n" + md
    yield inversion_figure(record, focus), md, record


def _inversion_md(record: InversionRecord, where: str, n: int) -> str:
    cells = " · ".join(
        f"{tr.steps}: {tr.rms:.3g}" if math.isfinite(tr.rms) else f"{tr.steps}: blew up"
        for tr in record.trips)
    return (f"**Round trip** of {n:,} training points: DDIM (η = 0) run upwards to x_T, then "
            f"sampled back with the same steps; {where}. RMS error by steps: {cells}. "
            "Each step evaluates ε̂ at the point it has, not at the one it is going to, so the "
            "round trip is exact only in the limit of many steps.")


def show_round_trip(record, focus):
    """Redraw the inversion figure at another step count (the last run's results)."""
    focus = common.number("Show the round trip at", focus, 1, INVERSION_STEP_CHOICES[-1],
                          integer=True, default=DEFAULT_FOCUS)
    if not isinstance(record, InversionRecord):
        gr.Info("Press ▶ Invert and reconstruct first; then this picks the step count drawn.")
        return gr.skip()
    return inversion_figure(record, focus)


# ---------------------------------------------------------------------------------------------
# Layout and wiring
# ---------------------------------------------------------------------------------------------


def render(state: gr.State) -> None:
    """Build the "Sampler lab" inside the caller's ``gr.Tab`` of tab 3 and wire its events.

    ``state`` is tab 3's ``gr.State`` holding the user's
    :class:`~diffusion_core.workflows.toy2d.Toy2DSession` (None before ▶ Train).
    """
    lim = limits.ACTIVE
    heavy = dict(concurrency_limit=lim.sample_slots, concurrency_id=jobs.SAMPLE_QUEUE,
                 trigger_mode="once", show_progress="minimal")
    cheap = dict(concurrency_limit=8, concurrency_id="toy_lab_cheap", show_progress="hidden")
    inv_state = gr.State(None, time_to_live=lim.state_ttl_s,
                         delete_callback=sessions.on_free("2D inversion"))

    gr.Markdown(
        "Several samplers from **the same starting noise** $x_T$: the same points start in "
        "every panel, so the differences are the samplers'. Untick a sampler to leave it "
        "out. Steps above the model's T are cut to T.", latex_delimiters=common.LATEX)
    slots: list = []
    with gr.Row(equal_height=False):
        for i, (name, steps0, eta0, var0, spacing0) in enumerate(DEFAULT_SLOTS):
            info = SAMPLERS[name]
            with gr.Column(min_width=190):
                on = ui.Checkbox(True, label=f"Sampler {i + 1}")
                sampler = ui.Dropdown(SAMPLER_CHOICES, value=name, label=f"Sampler {i + 1}",
                                      show_label=False)
                with gr.Row():
                    steps = ui.Number(steps0, label="Steps", precision=0, minimum=1,
                                      maximum=STEP_CHOICES[-1], min_width=70)
                    eta = ui.Number(eta0, label="η (DDIM)", minimum=0, maximum=1, step=0.1,
                                    min_width=70, interactive="eta" in info.options)
                with gr.Row():
                    variance = ui.Dropdown(VARIANCE_CHOICES, value=var0, label="σ² (DDPM)",
                                           min_width=80,
                                           interactive="variance" in info.options)
                    spacing = ui.Dropdown(list(SPACINGS), value=spacing0, label="Spacing",
                                          min_width=90)
            slots += [on, sampler, steps, eta, variance, spacing]
            sampler.input(slot_changed, sampler, [eta, variance],
                          api_name=f"toy_lab_slot{i + 1}", api_visibility="private", **cheap)
    with gr.Row(equal_height=True):
        clip_x0 = ui.Checkbox(True, label="clip x̂0 to [−1, 1]", min_width=150)
        n_points = ui.Number(DEFAULT_POINTS, label="Points", precision=0, minimum=10,
                             maximum=MAX_POINTS, min_width=80)
        n_paths = ui.Number(DEFAULT_PATHS, label="Paths drawn", precision=0, minimum=0,
                            maximum=MAX_PATHS, min_width=80)
        seed = ui.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED,
                         min_width=80)
        compare_btn = gr.Button("▶ Compare", variant="primary", min_width=100)
        compare_stop = gr.Button("■ Stop", variant="stop", min_width=80)
    compare_fig = gr.Plot(show_label=False)
    compare_md = gr.Markdown("Train a model, then press ▶ Compare.",
                             elem_classes=["dl-health"])

    gr.Markdown("### Steps vs quality\nEach ticked sampler above (its η, σ², spacing) at "
                "several step counts, all from the same $x_T$; x = network evaluations.",
                latex_delimiters=common.LATEX)
    with gr.Row(equal_height=True):
        counts = ui.CheckboxGroup(list(STEP_CHOICES), value=DEFAULT_SWEEP_STEPS,
                                  label="Step counts", scale=4)
        sweep_btn = gr.Button("▶ Steps vs quality", variant="primary", min_width=120, scale=1)
        sweep_stop = gr.Button("■ Stop", variant="stop", min_width=80, scale=1)
    sweep_fig = gr.Plot(show_label=False)
    sweep_md = gr.Markdown(f"Runs within this server's {lim.sample_seconds:g} s sampling "
                           "limit; the step counts go from small to large.",
                           elem_classes=["dl-health"])

    gr.Markdown(
        "### DDIM inversion round trip\nRun DDIM (η = 0) *upwards* from the training points "
        "to latents $x_T$, then sample back down with the same steps. By default every step "
        "count stops at the same noise level, the last t with $\\bar\\alpha_t \\ge 0.001$: the "
        "cosine schedule's final steps ($\\bar\\alpha_{T-1} \\approx 10^{-7}$) multiply each "
        "error of $\\hat\\varepsilon$ by $\\sigma/\\alpha \\approx 4000$, so *trailing* "
        "(ends at T − 1) blows up and *leading* (used by the image tab: it stops short of "
        "T − 1) goes to a different noise level at each count, less far at few steps.",
        latex_delimiters=common.LATEX)
    with gr.Row(equal_height=True):
        inv_points = ui.Number(DEFAULT_POINTS, label="Points", precision=0, minimum=10,
                               maximum=MAX_POINTS, min_width=80, scale=1)
        inv_counts = ui.CheckboxGroup(list(INVERSION_STEP_CHOICES),
                                      value=DEFAULT_INVERSION_STEPS, label="Step counts",
                                      scale=4)
        end = ui.Radio(END_CHOICES, value=END_NOISE, label="Where the inversion ends",
                       scale=3)
        focus = ui.Dropdown(list(INVERSION_STEP_CHOICES), value=DEFAULT_FOCUS,
                            label="Draw the round trip at (steps)", min_width=110, scale=1)
    with gr.Row():
        invert_btn = gr.Button("▶ Invert and reconstruct", variant="primary", min_width=150)
        invert_stop = gr.Button("■ Stop", variant="stop", min_width=80)
    inv_fig = gr.Plot(show_label=False)
    inv_md = gr.Markdown("", elem_classes=["dl-health"])
    with gr.Accordion("How this works: same noise, NFE, ODE vs SDE paths, inversion",
                      open=False):
        gr.Markdown(common.explanation("sampler_lab"), latex_delimiters=common.LATEX)

    # --- events -------------------------------------------------------------------------------
    cmp_event = compare_btn.click(compare, [state, *slots, clip_x0, n_points, n_paths, seed],
                                  [compare_fig, compare_md], api_name="toy_lab_compare",
                                  **heavy)
    cmp_event.then(lab_finished, compare_md, [compare_fig, compare_md],
                   api_name="toy_lab_compare_finished", api_visibility="private", **cheap)
    compare_stop.click(None, None, None, cancels=[cmp_event], api_name="toy_lab_compare_stop",
                       api_visibility="private", queue=False)

    sw_event = sweep_btn.click(sweep, [state, *slots, clip_x0, n_points, seed, counts],
                               [sweep_fig, sweep_md], api_name="toy_lab_sweep", **heavy)
    sw_event.then(lab_finished, sweep_md, [sweep_fig, sweep_md],
                  api_name="toy_lab_sweep_finished", api_visibility="private", **cheap)
    sweep_stop.click(None, None, None, cancels=[sw_event], api_name="toy_lab_sweep_stop",
                     api_visibility="private", queue=False)

    inv_event = invert_btn.click(invert, [state, inv_points, inv_counts, end, focus],
                                 [inv_fig, inv_md, inv_state], api_name="toy_lab_invert",
                                 **heavy)
    inv_event.then(lab_finished, inv_md, [inv_fig, inv_md],
                   api_name="toy_lab_invert_finished", api_visibility="private", **cheap)
    invert_stop.click(None, None, None, cancels=[inv_event], api_name="toy_lab_invert_stop",
                      api_visibility="private", queue=False)
    focus.input(show_round_trip, [inv_state, focus], inv_fig, api_name="toy_lab_show",
                trigger_mode="always_last", **cheap)
