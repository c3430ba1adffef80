"""Tab 3's "why" views: the network against the exact ideal denoiser, and the likelihood bound.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. The work is in
:mod:`diffusion_core.workflows.toy2d_why`; here are the handlers (plain functions and Stop-able
generators, callable directly from tests), their messages and the figures' wiring.

=========================  ======================================================================
handler                    what it does
=========================  ======================================================================
``error_by_t``             after ▶ Train: mean ‖ε̂_θ − ε*‖² over the noised training cloud by t
``bound``                  generator for "Compute the bound": L_t over t, L_0, L_T and the total
                           in nats per point and bits per dimension, for the network and the
                           ideal denoiser, beside their last sample scores
``bound_finished``         after the bound ends or is stopped: says so after a Stop
=========================  ======================================================================
"""

from __future__ import annotations

import time

import gradio as gr
import plotly.graph_objects as go

from pages import common, jobs, limits
from pages.toy2d.figures import bound_figure, error_by_t_figure
from pages.toy2d.handlers import LIMIT_PREFIX, YIELD_EVERY_S
from pages.toy2d.inputs import (
    BOUND_N_DEFAULT,
    BOUND_N_MAX,
    BOUND_N_MIN,
    BOUND_POINTS_CHOICES,
    PREDICTION_NAMES,
    VARIANCE_CHOICES,
    check_choice,
    is_session,
    need_model,
)

why = common.LazyModule("diffusion_core.workflows.toy2d_why")

__all__ = ["bound", "bound_finished", "bound_md", "error_by_t"]

COMPUTING = "Computing the bound"  # a running bound's text starts with this


def error_by_t(state) -> go.Figure:
    """The network-vs-ideal error by t, refreshed after training (skipped without a model)."""
    if not is_session(state):
        return gr.skip()
    return error_by_t_figure(why.eps_error_by_t(state))


# ---------------------------------------------------------------------------------------------
# The likelihood bound
# ---------------------------------------------------------------------------------------------


def _score_text(score, step: int | None) -> str:
    """One denoiser's last sample score in a few words ("–" when it has not sampled)."""
    if score is None:
        return "– (not sampled yet)"
    q, c = score.quality, score.copies
    if q.bad:
        return f"{q.bad} of {q.n} samples NaN/inf"
    text = f"SW1 {q.ratio:.1f}× floor · NN {q.nn:.2f}"
    if c is not None:
        text += f" · {c.share:.0%} on a training point"
    if step is not None and score.step != step:
        text += f" (sampled at step {score.step:,})"
    return text


def bound_md(state, result) -> str:
    """The totals in nats per point and bits per dimension beside each denoiser's last sample
    score, and what the comparison means."""
    net, ideal = result.network, result.ideal
    scores = result.scores
    where = ("training points" if result.points == "train"
             else "fresh points of the same data set (never trained on)")
    pred = PREDICTION_NAMES[result.prediction]
    rows = [
        "| denoiser | bound, nats per point | bits per dim | L_0 · Σ L_t (t ≥ 1) · L_T | "
        "its last samples |",
        "|---|---|---|---|---|",
    ]
    for name, terms, score, step in (
            (f"network ({pred}-prediction, {result.step:,} steps)", net, scores.get("network"),
             result.step),
            ("ideal denoiser", ideal, scores.get("ideal"), None)):
        rows.append(
            f"| {name} | **{terms.total:.3f}** ± {terms.total_stderr:.3f} | "
            f"{terms.bits_per_dim:.3f} | {float(terms.terms[0]):.2f} · "
            f"{float(terms.terms[1:].sum()):.2f} · {terms.prior:.1g} | "
            f"{_score_text(score, step)} |")
    diff, se = result.difference
    head = (f"Bound on {result.n:,} {where}, σ_t² = "
            f"{'β̃_t' if result.variance == 'beta_tilde' else 'β_t'} (± one standard error). "
            "Bits per dimension = nats / (2 ln 2); a density's bound can be negative.")
    largest = ", ".join(f"{'L_0' if t == 0 else f't = {t}'}: {d:+.3g}"
                        for t, d in result.largest_differences())
    gap = (f"**Network − ideal: {diff:+.2f} ± {se:.2f} nats per point** (the same points and "
           f"noise for both); the terms that differ most: {largest}.")
    lower, higher = abs(diff) > 2 * se and diff > 0, abs(diff) > 2 * se and diff < 0
    if result.points == "train" and lower:
        what = ("The ideal denoiser is lower on its own training points. It is the exact "
                "optimum of every ε-error term on these points, so (with these fixed variances) "
                "no ε-predictor can do better here on average; the network's excess is how far "
                "it is from that optimum. Lower is not better generalisation: that optimum "
                "**copies the training set** (Sample, Denoiser: ideal). Score *fresh points* "
                "to see how each does on points it never saw.")
    elif result.points == "train":
        what = ("On these training points the two are not clearly apart (within two standard "
                "errors, or the network ahead): the ideal denoiser is the optimum only on "
                "average over all training points and noise. Use more points.")
    elif higher:
        what = ("On points it never saw, the ideal denoiser is **worse** than the network: it "
                "explains its own training points and little else (memorisation), while the "
                "network learned the shape (generalisation).")
    elif lower:
        what = ("Even on points it never saw, the ideal denoiser scores lower here: copying "
                f"these {len(state.data):,} training points is still a fair density model of "
                "new ones, and the network has not reached it.")
    else:
        what = "On fresh points the two are equal within the noise of the estimate."
    other_points = "fresh" if result.points == "train" else "train"
    other = state.last_bounds.get((other_points, result.variance))
    if other is not None and other.step == result.step:
        fresh, train = (result, other) if result.points == "fresh" else (other, result)
        what += (f"\n\n**Fresh − training points** (the same σ_t²): network "
                 f"{fresh.network.total - train.network.total:+.2f}, ideal denoiser "
                 f"{fresh.ideal.total - train.ideal.total:+.2f} nats per point. A model that "
                 "memorises scores new points much worse than its training points; one that "
                 "generalises scores them about the same.")
    w = why.eps_weights(state.schedule, result.variance)
    T = len(w)
    picks = sorted({1, 2, T // 2, T - 1} & set(range(1, T)))
    weights = ("Weights $w_t$ of the ε-error in $L_t$ (DDPM eq. 12) for this schedule: "
               + ", ".join(f"t = {t}: {w[t]:.3g}" for t in picks)
               + "; $L_{\\text{simple}}$ gives every t the weight 1.")
    return "\n".join([head, "", *rows, "", gap, "", what, "", weights])


@jobs.heavy("computing the likelihood bound")
def bound(state, variance, points, n, request: gr.Request | None = None):
    """The variational bound of the network and of the ideal denoiser; a generator for the
    "Compute the bound" button.

    ``variance``: ``"beta_tilde"`` or ``"beta"`` (σ_t² of the reverse steps); ``points``:
    ``"train"`` (the first n training points) or ``"fresh"`` (n new points); ``n``: how many
    (an empty box: 1,000). Runs in pieces of ≈ 30 ms (:class:`~diffusion_core.workflows.
    toy2d_why.BoundRun`), so ■ Stop ends it at once; it may take the server's sampling budget
    and takes turns with sampling jobs (the same queue). Yields ``(figure | no-change,
    Markdown)``: progress, then the figure and the totals.
    """
    variance = check_choice("Reverse variance", variance, VARIANCE_CHOICES)
    points = check_choice("Points", points, BOUND_POINTS_CHOICES)
    n = common.number("Points scored", n, BOUND_N_MIN, BOUND_N_MAX, integer=True,
                      default=BOUND_N_DEFAULT)
    state = need_model(state)
    if state is None:
        yield gr.skip(), "Train a model first."
        return
    budget = limits.ACTIVE.sampling_budget()
    run = why.BoundRun(state, variance=variance, points=points, n=n)
    yield gr.skip(), f"{COMPUTING} ({len(run.x0):,} points × T = {state.T}) …"
    start = last = time.perf_counter()
    chain = jobs.paced(run)
    try:
        for done, total in chain:
            now = time.perf_counter()
            spent = (budget.stop_reason(done, now - start)
                     or jobs.turn_over(jobs.SAMPLE_QUEUE, chain.turn_s))
            if spent is not None and done < total:
                gr.Warning(f"The bound stopped at {spent}.")
                yield gr.skip(), (
                    f"{LIMIT_PREFIX} {spent}** (this server's limit) after {done} of {total} "
                    "pieces: no bound (part of the points is not the bound). Use fewer points.")
                return
            if now - last >= YIELD_EVERY_S:
                last = now
                yield gr.skip(), f"{COMPUTING}: {done} / {total} pieces …"
    except ValueError as e:  # a network that returns NaN/inf
        raise common.UserError(f"The bound cannot be computed: {e}. Train the model again "
                               "(a lower learning rate).") from None
    finally:
        chain.close()
    result = run.result()
    seconds = time.perf_counter() - start
    yield bound_figure(result), bound_md(state, result) + f"\n\nComputed in {seconds:.1f} s."


def bound_finished(text):
    """Runs after the bound ends or is stopped; says so after a Stop (and clears its badges).

    Returns ``(figure, Markdown)``.
    """
    if isinstance(text, str) and text.startswith(COMPUTING):
        return gr.skip(), ("Stopped: no bound (part of the points is not the bound). Press "
                           "“Compute the bound” again.")
    return gr.skip(), gr.skip()

