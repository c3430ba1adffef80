"""What tab 3's and tab 4's sampler labs share (tabs do not import each other): one colour,
marker and dash per sampler slot, the steps-vs-quality figure, and the loop that runs a sweep
in a handler under the server's budget and turns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from pages import common, jobs, limits

COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")  # Okabe–Ito, one per slot
SYMBOLS = ("circle", "square", "diamond", "triangle-up")
DASHES = ("solid", "dash", "dot", "dashdot")


def sweep_figure(sweep, labels: list[str], slots: list[int], *, log_y: bool,
                 height: int) -> go.Figure:
    """One panel per metric of ``sweep``'s judge (a
    :class:`~diffusion_core.workflows.sampler_lab.QualitySweep`): one line per sampler against
    NFE (log x), the metric's reference (real data at the same N) dashed.

    ``labels[c]`` names the sweep's c-th sampler and ``slots[c]`` its slot in the controls
    (its colour, marker and dash: curves that coincide, such as DDIM η = 1 and DDPM β̃, stay
    visible). ``log_y`` puts the metrics on a log axis (then values ≤ 0 are not drawn).
    """
    from plotly.subplots import make_subplots

    metrics = sweep.judge.metrics
    fig = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.1,
                        subplot_titles=[f"{m.label} ({m.hint})" for m in metrics])
    for c, label in enumerate(labels):
        k = slots[c] % len(COLORS)
        for j, m in enumerate(metrics):
            x, y = sweep.curve(c, m.key)
            if not len(x):
                continue
            shown = np.isfinite(y) & (y > 0) if log_y else np.isfinite(y)
            fig.add_trace(go.Scatter(
                x=x, y=np.where(shown, y, None), mode="lines+markers", name=label,
                legendgroup=label, showlegend=j == 0,
                line=dict(color=COLORS[k], width=2.5 if k == 0 else 2, dash=DASHES[k]),
                marker=dict(size=11 - 2 * k, symbol=SYMBOLS[k]),
                hovertemplate=f"{label}<br>NFE %{{x}}<br>{m.label} %{{y:.4g}}<extra></extra>"),
                row=1, col=j + 1)
    for j, m in enumerate(metrics):
        ref = m.reference
        if ref is not None and math.isfinite(ref) and (ref > 0 or not log_y):
            fig.add_hline(y=ref, line=dict(color="#555", dash="dash", width=1.2),
                          annotation_text=m.reference_label, annotation_position="top left",
                          annotation_font_size=11, row=1, col=j + 1)
        fig.update_xaxes(type="log", title_text="network evaluations (NFE = steps)",
                         tickvals=list(sweep.step_counts), row=1, col=j + 1)
        if log_y:
            fig.update_yaxes(type="log", title_text=m.label + " (log)", dtick="D2",
                             row=1, col=j + 1)
        else:
            fig.update_yaxes(title_text=m.label, row=1, col=j + 1)
    common.style_figure(fig, height=height)
    fig.update_layout(hovermode="closest", margin=dict(l=60, r=15, t=40, b=40),
                      legend=dict(orientation="h", x=0, y=-0.2, yanchor="top"))
    fig.update_annotations(font_size=13)
    return fig


# ---------------------------------------------------------------------------------------------
# Running a sweep in a handler
# ---------------------------------------------------------------------------------------------

YIELD_EVERY_S = 0.1  # status text at least this often (■ Stop reacts within ~0.1 s)
FIGURE_EVERY_S = 0.5  # redraw a growing figure at most this often
RUNNING = "Running ·"  # a status that starts with this is a run in progress (lab_finished)


def run_finished(text):
    """After a streamed run ends or is ■ Stopped (a ``.then`` of its event): a status still
    "in progress" (:data:`RUNNING`) means it was stopped, and says so.

    Returns ``(output, status)``; writing both clears the badge Gradio puts on the outputs of
    a cancelled event.
    """
    if isinstance(text, str) and text.startswith(RUNNING):
        return gr.skip(), "■ Stopped during: " + text.removeprefix(RUNNING).strip()
    return gr.skip(), gr.skip()


def stop_reason(budget, start: float, steps_done: int, paced) -> str | None:
    """Why a lab run should stop now: the sampling budget spent, or its turn over while
    someone waits (:func:`pages.jobs.turn_over`); None to go on."""
    return (budget.stop_reason(steps_done, time.perf_counter() - start)
            or jobs.turn_over(jobs.SAMPLE_QUEUE, paced.turn_s))


def stream_sweep(run, figure: Callable[[], go.Figure], labels: list[str], *,
                 show_elapsed: bool = False) -> Iterator[tuple]:
    """Drive ``run`` (a :class:`~diffusion_core.workflows.sampler_lab.QualitySweep`) under the
    server's sampling budget and turns (:func:`pages.jobs.paced`), yielding ``(figure or
    gr.skip(), status)``: the growing ``figure()`` at most every :data:`FIGURE_EVERY_S`, a
    status line at least every :data:`YIELD_EVERY_S`. Returns (``yield from``'s value) why it
    stopped early, or None when every run finished. ■ Stop closes the sweep."""
    budget = limits.ACTIVE.sampling_budget()
    start = last = last_fig = time.perf_counter()
    spent = None
    steps_done = 0
    chain = jobs.paced(run)
    try:
        for p in chain:
            now = time.perf_counter()
            if p.step is not None:
                steps_done += 1
                spent = stop_reason(budget, start, steps_done, chain)
                if spent is not None:
                    break
            if p.point is not None and now - last_fig >= FIGURE_EVERY_S:
                last_fig = last = now
                yield (figure(), f"{RUNNING} {p.index + 1} / {p.num_points} runs "
                                 f"({p.nfe_done:,} / {p.nfe_total:,} network calls) …")
            elif now - last >= YIELD_EVERY_S:
                last = now
                elapsed = f", {now - start:.0f} s" if show_elapsed else ""
                yield gr.skip(), (f"{RUNNING} run {p.index + 1} / {p.num_points}: "
                                  f"{labels[p.config]} at {p.steps} steps "
                                  f"({p.nfe_done:,} / {p.nfe_total:,} network calls"
                                  f"{elapsed}) …")
    finally:
        chain.close()
    return spent
