"""Tab 1 · Noise schedules: overlay β schedules, see ᾱ, signal/noise scales and log-SNR.

The "primary" schedule chosen here is written into the app-wide ``shared_schedule`` state
(``ScheduleConfig.to_dict()``), which the other tabs use as their default.

Handlers are plain module-level functions (tests call them directly):

* :func:`update_schedules` — controls → (figure, health table, shared schedule dict)
* :func:`export_csv` — controls → path of a CSV file with every plotted quantity
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from diffusion_core.schedule.config import BUILTIN_KINDS, TERMINAL_SIGNAL_WARN, ScheduleConfig
from pages import common, layout, links, sessions
from pages.widgets import inputs as ui

if TYPE_CHECKING:
    from diffusion_core.schedule import NoiseSchedule

core_schedules = common.LazyModule("diffusion_core.schedule")  # torch: first use, not build

X_AXIS_CHOICES = ("t", "t / T")
DEFAULT_OVERLAYS = ("linear", "cosine")
FIG_HEIGHT = 430
# Points per curve at most: above it a curve keeps every k-th t (and the last), which draws the
# same at any screen width (a panel is ~450 px wide) and keeps T = 4000 from sending 100k points.
MAX_POINTS = 1000

# (buffer name, subplot row, subplot col, line dash, hover label)
_PANELS = (
    ("betas", 1, 1, None, "β"),
    ("alphas_cumprod", 1, 2, None, "ᾱ"),
    ("sqrt_alphas_cumprod", 2, 1, None, "√ᾱ (signal)"),
    ("sqrt_one_minus_alphas_cumprod", 2, 1, "dash", "√(1−ᾱ) (noise)"),
    ("log_snr", 2, 2, None, "log-SNR"),
)
_SUBPLOT_TITLES = (
    "β<sub>t</sub> (log scale)",
    "ᾱ<sub>t</sub> = ∏<sub>s≤t</sub>(1 − β<sub>s</sub>)",
    "signal √ᾱ<sub>t</sub> (solid) · noise √(1−ᾱ<sub>t</sub>) (dashed)",
    "log-SNR = ln(ᾱ<sub>t</sub> / (1 − ᾱ<sub>t</sub>))",
)
# CSV column suffix ↔ NoiseSchedule buffer
_CSV_COLUMNS = (
    ("beta", "betas"),
    ("alpha_bar", "alphas_cumprod"),
    ("sqrt_alpha_bar", "sqrt_alphas_cumprod"),
    ("sqrt_one_minus_alpha_bar", "sqrt_one_minus_alphas_cumprod"),
    ("log_snr", "log_snr"),
)


def explanation_md() -> str:
    """The "What am I looking at?" text (``pages/explanations/schedules.md``) with the health
    threshold filled in."""
    return common.explanation("schedules").replace("@WARN@", f"{TERMINAL_SIGNAL_WARN:g}")


# ---------------------------------------------------------------------------------------------
# Figure
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _layout_json(x_title: str) -> str:
    """The styled 2×2 layout as JSON, built once per x-axis title.

    ``make_subplots`` and validating the full ``plotly_white`` template cost ~15–20 ms per
    figure, so we build the layout once (with :func:`common.style_figure`) and keep only the
    parts of the template that 2D cartesian plots use. Cached as a string, so each call gets a
    fresh copy.
    """
    fig = make_subplots(rows=2, cols=2, subplot_titles=_SUBPLOT_TITLES,
                        horizontal_spacing=0.08, vertical_spacing=0.13)
    common.style_figure(fig, height=FIG_HEIGHT)
    fig.update_layout(margin=dict(l=55, r=15, t=45, b=45),
                      legend=dict(y=1.07, font=dict(size=15)))
    fig.update_xaxes(title_text=x_title, title_standoff=2, row=2)
    # The hover box's title names the x value it shows (Plotly prints a bare number otherwise).
    fig.update_xaxes(unifiedhovertitle=dict(text=HOVER_TITLES[x_title]))
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=2)
    fig.update_yaxes(range=[-0.02, 1.02], row=2, col=1)
    for ann in fig.layout.annotations:  # subplot titles
        ann.font = dict(size=14)
    return common.compact_layout_json(fig)


def _axis_suffix(row: int, col: int) -> str:
    n = (row - 1) * 2 + col
    return "" if n == 1 else str(n)


X_TITLES = {"t": "t (step, 0 … T−1)", "t / T": "t / T"}
HOVER_TITLES = {X_TITLES["t"]: "t = %{x}", X_TITLES["t / T"]: "t / T = %{x:.3f}"}


def kept_steps(T: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """The t drawn on a curve of T steps: all of 0..T−1 when T ≤ ``max_points``, else
    ``max_points`` evenly spaced ones, always with 0 and T−1: ⌊i·(T−1)/(n−1) + ½⌋, i = 0..n−1
    (the browser's fast path, :data:`FAST_JS`, keeps the same ones)."""
    if T <= max_points:
        return np.arange(T)
    return np.floor(np.arange(max_points) * ((T - 1) / (max_points - 1)) + 0.5).astype(int)


def schedules_figure(schedules: dict[str, NoiseSchedule], x_axis: str = "t") -> go.Figure:
    """2×2 plotly figure: β_t, ᾱ_t, √ᾱ_t & √(1−ᾱ_t), log-SNR for each schedule.

    Each curve holds the schedule's exact float32 values at :func:`kept_steps` (every t up to
    ``MAX_POINTS``). Each trace's ``meta`` names its buffer and the layout's ``meta`` holds the
    shared settings, so the browser can redraw a new T at once (:data:`FAST_JS`) before this
    figure, the source of truth, comes back.

    Args:
        schedules: kind → schedule (all with the same T); colours from ``SCHEDULE_COLORS``.
        x_axis: ``"t"`` (0..T−1) or ``"t / T"``.
    """
    x_title = X_TITLES["t" if x_axis == "t" else "t / T"]
    traces = []
    meta = {"x_axis": x_axis, "max_points": MAX_POINTS}
    for kind, sched in schedules.items():
        keep = kept_steps(sched.T)
        # float32 (the schedule's own float32 buffers) halves the JSON sent on every change.
        x = keep.astype(np.float32)
        if x_axis != "t":
            x = x / np.float32(sched.T)
        cfg = sched.config
        meta.update(beta_start=cfg.beta_start, beta_end=cfg.beta_end,
                    scale_to_T=cfg.scale_to_T, cosine_s=cfg.cosine_s, power=cfg.power)
        color = common.SCHEDULE_COLORS.get(kind, "#333333")
        for i, (name, row, col, dash, label) in enumerate(_PANELS):
            suffix = _axis_suffix(row, col)
            y = getattr(sched, name).numpy()
            traces.append(dict(
                type="scatter", mode="lines", x=x, y=y if len(keep) == sched.T else y[keep],
                name=kind, legendgroup=kind, showlegend=i == 0, meta=name,
                line=dict(color=color, width=2.5, dash=dash),
                xaxis="x" + suffix, yaxis="y" + suffix,
                hovertemplate=f"{label} = %{{y:.4g}}",
            ))
    fig = go.Figure(data=traces, layout=json.loads(_layout_json(x_title)))
    fig.layout.meta = meta
    if not schedules:
        fig.add_annotation(text="Tick at least one schedule to plot it.", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=18))
    return fig


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------


def _check_kinds(kinds) -> list[str]:
    if kinds is None:
        kinds = []
    if not isinstance(kinds, list | tuple):
        raise common.UserError(f"Schedules to overlay must be a list of names from "
                               f"{', '.join(BUILTIN_KINDS)} (got {common.short(kinds)}).")
    kinds = list(kinds)
    bad = [k for k in kinds if k not in BUILTIN_KINDS]
    if bad:
        raise common.UserError(f"Unknown schedule(s) {common.short(bad)}; choose from "
                               f"{', '.join(BUILTIN_KINDS)}.")
    return [k for k in BUILTIN_KINDS if k in kinds]  # fixed order → stable colours/legend


def _build(kinds: list[str], primary: str, T, beta_start, beta_end, scale_to_T, cosine_s, power
           ) -> tuple[dict[str, NoiseSchedule], ScheduleConfig | None, list[str]]:
    """Validate the controls and build each schedule.

    Bad numbers raise ``gr.Error`` (via :func:`common.schedule_config`). A schedule the core
    refuses (the 1000/T scaling pushing β_end ≥ 1) is skipped with a note, not an error.

    Returns:
        (kind → NoiseSchedule for the overlays that could be built, primary config or None,
        notes for the skipped ones).
    """
    if primary not in BUILTIN_KINDS:
        raise common.UserError(f"Primary schedule must be one of {', '.join(BUILTIN_KINDS)}.")
    # Validate every number once, without the scaling (which may legitimately fail per kind).
    # Cosine ignores β_start/β_end, so only insist on β_end > β_start when a β-kind is in use.
    needs_betas = any(k != "cosine" for k in [*kinds, primary])
    base = common.schedule_config("linear" if needs_betas else "cosine", T, beta_start,
                                  beta_end, False, cosine_s, power)
    fields = base.to_dict()
    fields["scale_to_T"] = bool(scale_to_T)
    failures: dict[str, list[str]] = {}  # message → kinds (the scaling fails alike for all)
    configs: dict[str, ScheduleConfig | None] = {}
    for kind in dict.fromkeys([*kinds, primary]):
        try:
            configs[kind] = ScheduleConfig.from_dict({**fields, "kind": kind})
        except ValueError as e:
            configs[kind] = None
            failures.setdefault(str(e), []).append(kind)
    notes = [f"{', '.join(ks)} skipped: {msg}" for msg, ks in failures.items()]
    schedules = {k: core_schedules.NoiseSchedule(configs[k]) for k in kinds
                 if configs[k] is not None}
    return schedules, configs[primary], notes


def health_html(schedules: dict[str, NoiseSchedule], primary: str,
                notes: list[str] = ()) -> str:
    """A compact HTML table of terminal statistics, a ⚠ line per chain that does not end near
    pure noise (the core's ``health().warning`` in a details box), and the skip notes."""
    if not schedules and not notes:
        return "<p><em>No schedule selected.</em></p>"
    td = "padding:2px 10px;border-bottom:1px solid #e2e8f0;white-space:nowrap;"
    num = td + "text-align:right;font-variant-numeric:tabular-nums;"
    parts = []
    if schedules:
        head = "".join(
            f"<th style='{td}text-align:{al}'>{h}</th>" for h, al in (
                ("schedule", "left"), ("ᾱ<sub>T−1</sub>", "right"),
                ("√ᾱ<sub>T−1</sub>", "right"), ("SNR<sub>T−1</sub>", "right"),
                ("ends in pure noise?", "left")))
        rows, warns = [], []
        for kind, sched in schedules.items():
            h = sched.health()
            color = common.SCHEDULE_COLORS.get(kind, "#333")
            star = " ★" if kind == primary else ""
            ok = "yes" if h.warning is None else "<span class='dl-warn'>⚠ no</span>"
            rows.append(
                f"<tr><td style='{td}'><b style='color:{color}'>{kind}</b>{star}</td>"
                f"<td style='{num}'>{h.alpha_bar_last:.3g}</td>"
                f"<td style='{num}'>{h.signal_last:.3g}</td>"
                f"<td style='{num}'>{h.snr_last:.3g}</td><td style='{td}'>{ok}</td></tr>")
            if h.warning:
                warns.append(
                    f"<details><summary class='dl-warn'>⚠ {kind}: x<sub>T−1</sub> still keeps "
                    f"{100 * h.signal_last:.1f}% of x<sub>0</sub> (√ᾱ<sub>T−1</sub> = "
                    f"{h.signal_last:.3f} &gt; {TERMINAL_SIGNAL_WARN:g})</summary>"
                    f"{h.warning}</details>")
        parts.append(f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(rows)}"
                     "</table>")
        parts += warns
    parts += [f"<div class='dl-warn'>⚠ {n}</div>" for n in notes]
    if primary in schedules:
        parts.append("<div style='opacity:0.8'>★ primary schedule (the other tabs' default)"
                     "</div>")
    return "\n".join(parts)


def update_schedules(kinds, primary, T, beta_start, beta_end, scale_to_T, cosine_s, power,
                     x_axis="t"):
    """Controls → (figure, health HTML, shared schedule dict).

    The shared dict is the primary schedule's ``ScheduleConfig.to_dict()``; when that schedule
    cannot be built (scaling pushes β_end ≥ 1) a warning is shown and the shared state is left
    unchanged (``gr.skip()``).
    """
    if x_axis not in X_AXIS_CHOICES:
        raise common.UserError(f"x axis must be one of {X_AXIS_CHOICES}.")
    kinds = _check_kinds(kinds)
    schedules, primary_cfg, notes = _build(kinds, primary, T, beta_start, beta_end, scale_to_T,
                                           cosine_s, power)
    for n in notes:
        gr.Warning(n)
    fig = schedules_figure(schedules, x_axis)
    shared = primary_cfg.to_dict() if primary_cfg is not None else gr.skip()
    return fig, health_html(schedules, primary, notes), shared


def export_csv(kinds, primary, T, beta_start, beta_end, scale_to_T, cosine_s, power) -> str:
    """Write the plotted schedules to a CSV file and return its path.

    Columns: ``t`` (0..T−1), then for each schedule ``<kind>_beta``, ``<kind>_alpha_bar``,
    ``<kind>_sqrt_alpha_bar``, ``<kind>_sqrt_one_minus_alpha_bar``, ``<kind>_log_snr``
    (float64 values, 10 significant digits).
    """
    kinds = _check_kinds(kinds)
    if not kinds:
        raise common.UserError("Tick at least one schedule to export.")
    schedules, _, notes = _build(kinds, primary, T, beta_start, beta_end, scale_to_T, cosine_s,
                                 power)
    for n in notes:
        gr.Warning(n)
    if not schedules:
        raise common.UserError("None of the ticked schedules can be built with these settings.")
    T = next(iter(schedules.values())).T
    header = ["t"]
    cols = [np.arange(T, dtype=np.float64)]
    for kind, sched in schedules.items():
        for suffix, name in _CSV_COLUMNS:
            header.append(f"{kind}_{suffix}")
            cols.append(sched.float64[name].numpy())
    path = sessions.output_dir("csv") / f"diffusion_schedules_T{T}.csv"
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=",".join(header), comments="",
               fmt=["%d"] + ["%.10g"] * (len(cols) - 1))
    return str(path)


def export_csv_shown(*args):
    """:func:`export_csv` for the ⬇ Export CSV button: the file goes into the page's off-screen
    download button, which the browser then clicks (:data:`CLICK_DOWNLOAD_JS`), so one click
    downloads ``diffusion_schedules_T<T>.csv``."""
    return gr.update(value=export_csv(*args), visible=True)


CSV_ELEM_ID = "dl-schedules-csv"
# Runs in the browser after the export succeeded: "click" the off-screen download button that
# now holds the file (a DownloadButton downloads the value it holds when clicked).
CLICK_DOWNLOAD_JS = f"""
() => {{
  const b = document.querySelector('#{CSV_ELEM_ID}');
  if (b) setTimeout(() => b.click(), 50);
  return [];
}}
"""


# ---------------------------------------------------------------------------------------------
# The T slider's fast path, in the browser
# ---------------------------------------------------------------------------------------------

PLOT_ELEM_ID = "dl-schedules-plot"
T_ELEM_ID = "dl-schedules-T"
# Installed once per page (a load event). Moving the T slider (keys, drag, typing) redraws the
# curves at once: the schedules are closed-form, so the browser computes them (float64, as
# diffusion_core.schedule.betas and NoiseSchedule do) for the kinds the plot shows, with the
# settings the server wrote into the figure's layout.meta, keeps the same steps as
# kept_steps() and restyles the existing plot. Gradio's own round trip (a Plotly redraw of the
# server's figure, the health table, the shared schedule) follows ~0.3–1 s later and replaces
# it: the server stays the source of truth (Gradio hears the slider once the redraw is on
# screen: assets/paint_first.js). Anything unusual (a kind the scaling would refuse
# at this T, a T out of range, no plot yet) leaves the redraw to the server.
FAST_JS = f"""
() => {{
  if (window.__dlSchedulesFast) return [];
  window.__dlSchedulesFast = true;
  const T_MIN = {common.T_MIN}, T_MAX = {common.T_MAX}, COSINE_MAX_BETA = 0.999;
  // β_t, t = 0..T−1 (diffusion_core/schedule/betas.py; u = t/(T−1)); null: refused.
  const betas = (kind, T, m) => {{
    const b = new Float64Array(T), u = (i) => (T > 1 ? i / (T - 1) : 0);
    if (kind === 'cosine') {{  // Nichol & Dhariwal eq. 17, β clipped at 0.999
      const f = (k) => Math.cos((k / T + m.cosine_s) / (1 + m.cosine_s) * Math.PI / 2) ** 2;
      for (let i = 0; i < T; i++) b[i] = Math.min(1 - f(i + 1) / f(i), COSINE_MAX_BETA);
      return b;
    }}
    let bs = m.beta_start, be = m.beta_end;
    if (!(be >= bs)) return null;
    if (m.scale_to_T) {{ bs *= 1000 / T; be *= 1000 / T; if (be >= 1) return null; }}
    const rs = Math.sqrt(bs), re = Math.sqrt(be);
    for (let i = 0; i < T; i++) {{
      const x = u(i);
      if (kind === 'linear') b[i] = bs + x * (be - bs);
      else if (kind === 'quadratic') b[i] = (rs + x * (re - rs)) ** 2;
      else if (kind === 'sigmoid') b[i] = bs + (be - bs) / (1 + Math.exp(6 - 12 * x));
      else if (kind === 'polynomial') b[i] = bs + (be - bs) * x ** m.power;
      else return null;
    }}
    return b;
  }};
  // The plotted buffers (NoiseSchedule): ᾱ_t = ∏_(s≤t) (1 − β_s), DDPM eq. 4.
  const buffers = (b) => {{
    const T = b.length, o = {{betas: b}};
    for (const k of ['alphas_cumprod', 'sqrt_alphas_cumprod', 'sqrt_one_minus_alphas_cumprod',
                     'log_snr']) o[k] = new Float64Array(T);
    let ac = 1;
    for (let i = 0; i < T; i++) {{
      ac *= 1 - b[i];
      o.alphas_cumprod[i] = ac;
      o.sqrt_alphas_cumprod[i] = Math.sqrt(ac);
      o.sqrt_one_minus_alphas_cumprod[i] = Math.sqrt(1 - ac);
      o.log_snr[i] = Math.log(ac) - Math.log(1 - ac);
    }}
    return o;
  }};
  const kept = (T, M) => {{  // kept_steps()
    const n = Math.min(T, M), k = new Int32Array(n), q = (T - 1) / (M - 1);
    for (let i = 0; i < n; i++) k[i] = T <= M ? i : Math.floor(i * q + 0.5);
    return k;
  }};
  window.__dlSchedulesCurves = (gd, T) => {{  // → [x arrays, y arrays] or null
    const m = gd.layout.meta, cache = {{}}, xs = [], ys = [];
    const keep = kept(T, m.max_points);
    const x = Float32Array.from(keep, (t) => (m.x_axis === 't' ? t : Math.fround(t) / T));
    for (const tr of gd.data) {{
      const kind = tr.legendgroup;
      if (!(kind in cache)) {{ const b = betas(kind, T, m); cache[kind] = b && buffers(b); }}
      const buf = cache[kind] && cache[kind][tr.meta];
      if (!buf) return null;
      xs.push(x);
      ys.push(Float32Array.from(keep, (t) => buf[t]));
    }}
    return [xs, ys];
  }};
  // A small step (the axes' x range would move < 1 %, ≤ ~4 px) redraws only the lines, on the
  // current axes: each trace's SVG path, through Plotly's own axis mappings (c2p). That is a
  // few ms where a Plotly restyle of four panels costs 3–5× a bare one-trace redraw. The
  // axes themselves follow with the server's figure. false: not possible here.
  const redrawLines = (gd, T, curves) => {{
    const fl = gd._fullLayout, groups = gd.querySelectorAll('.scatterlayer g.trace');
    if (!fl || groups.length !== gd.data.length) return false;
    const xa0 = fl.xaxis, last = gd.layout.meta.x_axis === 't' ? T - 1 : (T - 1) / T;
    if (!xa0 || !xa0.range || Math.abs(last - xa0.range[1]) > 0.01 * (xa0.range[1] - xa0.range[0]))
      return false;
    const paths = [];
    for (const g of groups) {{
      const tr = g.__data__ && g.__data__[0] && g.__data__[0].trace;
      const path = g.querySelector('path.js-line');
      if (!tr || !path || !(tr.index < curves[0].length)) return false;
      const xa = fl[tr.xaxis.replace('x', 'xaxis')], ya = fl[tr.yaxis.replace('y', 'yaxis')];
      const xs = curves[0][tr.index], ys = curves[1][tr.index], parts = new Array(xs.length);
      for (let i = 0; i < xs.length; i++)
        parts[i] = xa.c2p(xs[i]).toFixed(1) + ',' + ya.c2p(ys[i]).toFixed(1);
      paths.push([path, 'M' + parts.join('L')]);
    }}
    for (const [path, d] of paths) path.setAttribute('d', d);
    return true;
  }};
  // Redraw the plot for T at once → 'lines' (paths on the current axes), 'restyle', or null
  // (left to the server).
  window.__dlSchedulesFastDraw = (T) => {{
    const gd = document.querySelector('#{PLOT_ELEM_ID} .js-plotly-plot');
    if (!Number.isInteger(T) || T < T_MIN || T > T_MAX || !window.Plotly || !gd || !gd.data ||
        !gd.data.length || !gd.layout || !gd.layout.meta) return null;
    const curves = window.__dlSchedulesCurves(gd, T);
    if (!curves) return null;
    if (redrawLines(gd, T, curves)) return 'lines';
    window.Plotly.restyle(gd, {{x: curves[0], y: curves[1]}});
    return 'restyle';
  }};
  const paintFirst = {layout.paint_first_js()};
  document.addEventListener('input', (ev) => {{
    const el = ev.target;
    if (!el || el.tagName !== 'INPUT' || !el.closest('#{T_ELEM_ID}') || el.__dlReplay) return;
    try {{
      if (window.__dlSchedulesFastDraw(Number(el.value))) paintFirst(ev, el);
    }} catch (e) {{ console.warn('schedules fast path:', e); }}
  }}, true);
  return [];
}}
"""


# ---------------------------------------------------------------------------------------------
# UI
# ---------------------------------------------------------------------------------------------


def _initial_config(shared_schedule: gr.State) -> ScheduleConfig:
    try:
        cfg = ScheduleConfig.from_dict(dict(shared_schedule.value))
    except (TypeError, ValueError):
        cfg = ScheduleConfig(kind="cosine")
    if cfg.kind not in BUILTIN_KINDS:
        cfg = ScheduleConfig(kind="cosine")
    return cfg


def render(shared_schedule: gr.State) -> links.TabLinks:
    """Build the tab inside the caller's ``gr.Tab``; writes the primary schedule to
    ``shared_schedule``. Returns its shareable controls (:mod:`pages.links`)."""
    cfg = _initial_config(shared_schedule)
    overlays = list(dict.fromkeys([*DEFAULT_OVERLAYS, cfg.kind]))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=290):
            kinds = ui.CheckboxGroup(list(BUILTIN_KINDS), value=overlays,
                                     label="Schedules to overlay")
            primary = ui.Dropdown(list(BUILTIN_KINDS), value=cfg.kind,
                                  label="Primary (the other tabs' default)")
            T = ui.Slider(min(10, cfg.T), common.T_MAX, value=cfg.T, step=1, label="T (steps)",
                          elem_id=T_ELEM_ID)
            with gr.Row():
                beta_range = dict(minimum=common.BETA_MIN, maximum=common.BETA_MAX)
                beta_start = ui.Number(cfg.beta_start, label="β_start", step=1e-4,
                                       min_width=100, **beta_range)
                beta_end = ui.Number(cfg.beta_end, label="β_end", step=1e-3, min_width=100,
                                     **beta_range)
            scale = ui.Checkbox(cfg.scale_to_T, label="Scale β_start, β_end by 1000/T")
            with gr.Accordion("cosine s, polynomial p", open=False), gr.Row():
                cosine_s = ui.Number(cfg.cosine_s, label="cosine offset s", step=0.001,
                                     minimum=0, maximum=common.COSINE_S_MAX, min_width=100)
                power = ui.Slider(0.5, 5.0, value=cfg.power, step=0.1,
                                  label="polynomial power p", min_width=100)
        with gr.Column(scale=3):
            plot = gr.Plot(None, label="Schedules (hover for values)", show_label=False,
                           elem_id=PLOT_ELEM_ID)
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=360):
                    health = gr.HTML("", elem_classes=["dl-health"])
                with gr.Column(scale=1, min_width=180):
                    x_axis = ui.Radio(list(X_AXIS_CHOICES), value="t", label="x axis")
                    csv_btn = gr.Button("⬇ Export CSV", size="sm")
                    # Holds the written file; off screen: csv_btn's follow-up clicks it.
                    csv_file = gr.DownloadButton("CSV", elem_id=CSV_ELEM_ID,
                                                 elem_classes=["dl-offscreen"])
            with gr.Accordion("What am I looking at? (definitions and equations)", open=False):
                gr.Markdown(explanation_md() + "\n\n" + common.INDEX_CONVENTION_MD,
                            latex_delimiters=common.LATEX)

    def first_view():
        fig, html, _ = update_schedules(overlays, cfg.kind, cfg.T, cfg.beta_start, cfg.beta_end,
                                        cfg.scale_to_T, cfg.cosine_s, cfg.power, "t")
        return fig, html

    common.on_load(first_view, [plot, health], concurrency_limit=8,
                   concurrency_id="schedules_plot", show_progress="hidden")
    gr.context.Context.root_block.load(None, js=FAST_JS)  # the T slider's fast path
    inputs = [kinds, primary, T, beta_start, beta_end, scale, cosine_s, power]
    # Numbers update on Enter / leaving the box (not per keystroke: "0." would be invalid).
    gr.on(
        triggers=[kinds.change, primary.change, T.change, scale.change, power.change,
                  x_axis.change, beta_start.submit, beta_start.blur, beta_end.submit,
                  beta_end.blur, cosine_s.submit, cosine_s.blur],
        fn=update_schedules,
        inputs=[*inputs, x_axis],
        outputs=[plot, health, shared_schedule],
        api_name="schedules_plot",
        concurrency_limit=8,
        concurrency_id="schedules_plot",
        trigger_mode="always_last",
        show_progress="hidden",
    )
    csv_btn.click(export_csv_shown, inputs=inputs, outputs=csv_file, api_name="schedules_csv",
                  concurrency_limit=4, concurrency_id="schedules_csv").success(
        None, None, None, js=CLICK_DOWNLOAD_JS, api_visibility="private")

    def link_view(v, given):  # a link or a lesson: the plot from its settings
        fig, html, shared = update_schedules(v["schedules"], v["primary"], v["T"],
                                             v["beta_start"], v["beta_end"], v["scale_to_T"],
                                             v["cosine_s"], v["power"], v["x_axis"])
        return {plot: fig, health: html, shared_schedule: shared}

    return links.TabLinks(
        links.controls(schedules=kinds, primary=primary, T=T, beta_start=beta_start,
                       beta_end=beta_end, scale_to_T=scale, cosine_s=cosine_s, power=power,
                       x_axis=x_axis),
        view=links.View(link_view, outputs=(plot, health, shared_schedule)))

