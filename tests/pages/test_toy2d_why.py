"""Tab 3's views of the ideal denoiser, the likelihood bound and the prediction type, called as
handlers: the Show choice of the vector field, the error-by-t plot, sampling with the ideal
denoiser, the bound, and the Prediction control with its per-t comparison. The workflow
underneath is tested in ``tests/core/workflows/test_toy2d_why.py``."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import re  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diffusion_core.oracles.ideal import IdealDenoiser  # noqa: E402
from diffusion_core.workflows import toy2d_why  # noqa: E402
from pages import toy2d as tab  # noqa: E402
from pages.toy2d.figures import GRID, IDEAL_COLOR, LEARNED_COLOR  # noqa: E402
from pages.toy2d.inputs import PRESET  # noqa: E402
from pages.toy2d.why import COMPUTING  # noqa: E402
from pages.widgets.animated import AnimatedFigure  # noqa: E402

BASE = dict(dataset="moons", n=400, noise=0.05, seed=0, source="preset", kind="cosine", T=100,
            shared={}, hidden=64, depth=2, time_embedding="sinusoidal", activation="silu",
            lr=3e-3, batch_size=128, steps=120)


def run_train(state=None, **overrides):
    return list(tab.train(state, **{**BASE, **overrides}))[-1]


@pytest.fixture(scope="module")
def trained():
    return run_train()[0]


def _xy(trace):
    return np.asarray(trace.x, dtype=np.float64), np.asarray(trace.y, dtype=np.float64)


def _shafts(trace):
    lx, ly = _xy(trace)
    return np.stack([lx[1::7] - lx[0::7], ly[1::7] - ly[0::7]], 1)


def _cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --- the vector field: learned, ideal, both --------------------------------------------------


def test_ideal_field_shows_the_ideal_denoisers_eps(trained):
    t = 10
    fig = tab.vector_field(trained, t, "ideal")
    cloud, lines, bases = fig.data
    assert lines.line.color == IDEAL_COLOR and "ideal" in fig.layout.title.text
    grid = np.stack(_xy(bases), 1)
    assert len(grid) == GRID**2
    eps = IdealDenoiser(trained.data, trained.schedule)(
        torch.tensor(grid, dtype=torch.float32), torch.full((GRID**2,), t)).double().numpy()
    np.testing.assert_allclose(np.asarray(bases.customdata)[:, :2], eps, atol=1e-3)
    assert np.all(_cos(_shafts(lines), -eps) > 0.999)
    assert np.asarray(bases.marker.color) == pytest.approx(np.linalg.norm(eps, axis=1),
                                                           rel=1e-4, abs=1e-4)


def test_both_overlays_two_arrow_colours_scaled_together(trained):
    t = 40
    learned_only = tab.vector_field(trained, t, "learned")
    fig = tab.vector_field(trained, t, "both")
    cloud, lines, bases, ideal_lines = fig.data
    # the learned field keeps its look: dark arrows, the same bases and hover numbers
    assert lines.line.color == LEARNED_COLOR == learned_only.data[1].line.color
    assert ideal_lines.line.color == IDEAL_COLOR and "vermillion" in fig.layout.title.text
    np.testing.assert_array_equal(np.asarray(bases.x), np.asarray(learned_only.data[2].x))
    custom = np.asarray(bases.customdata)
    np.testing.assert_allclose(custom[:, :2], np.asarray(learned_only.data[2].customdata)[:, :2])
    grid = np.stack(_xy(bases), 1)
    eps_star = trained.ideal(torch.tensor(grid, dtype=torch.float32), t).double().numpy()
    np.testing.assert_allclose(custom[:, 3:5], eps_star, atol=1e-3)
    assert np.all(_cos(_shafts(ideal_lines), -eps_star) > 0.999)
    # one reference length for both: the longest arrow of either is 0.9 cell
    cell = grid[1, 0] - grid[0, 0]
    longest = max(np.linalg.norm(_shafts(lines), axis=1).max(),
                  np.linalg.norm(_shafts(ideal_lines), axis=1).max())
    assert longest == pytest.approx(0.9 * cell, rel=1e-4)


def test_bad_show_choice_and_after_train_fallbacks(trained):
    with pytest.raises(gr.Error, match="Show"):
        tab.vector_field(trained, 3, "arrows")
    assert len(tab.vector_field_after_train(trained, 3, "nonsense").data) == 3  # learned
    assert len(tab.vector_field_after_train(trained, 3, "both").data) == 4
    field, *_ = tab.train_finished(trained, 3, "**Done: step 1 / 1**", "ideal")
    assert field.data[1].line.color == IDEAL_COLOR


# --- the error by t --------------------------------------------------------------------------


def test_error_by_t_plot_after_training(trained):
    fig = tab.error_by_t(trained)
    (line,) = fig.data
    x, y = _xy(line)
    assert len(x) == min(trained.T, toy2d_why.ERROR_TIMESTEPS) and x[0] == 0
    assert x[-1] == trained.T - 1 and np.all(y >= 0) and fig.layout.yaxis.type == "log"
    want = toy2d_why.eps_error_by_t(trained)
    np.testing.assert_allclose(y, want.mse, rtol=1e-9)
    assert tab.error_by_t(None) == gr.skip()
    assert not tab.error_by_t_figure(None).data  # the hint before training


# --- sampling with the ideal denoiser --------------------------------------------------------


def test_sampling_with_the_ideal_denoiser_reports_copies(trained):
    net_fig, net_md = list(tab.sample(trained, "ddpm", None, 0.0, 400, 0, False,
                                      "network"))[-1]
    fig, md = list(tab.sample(trained, "ddpm", None, 0.0, 400, 0, False, "ideal"))[-1]
    assert isinstance(fig, AnimatedFigure) and "ideal denoiser" in fig.layout.title.text
    assert "sit on a training point" in md and "sit on a training point" in net_md
    nn = float(re.search(r"NN ratio = ([\d.]+)", md).group(1))
    net_nn = float(re.search(r"NN ratio = ([\d.]+)", net_md).group(1))
    assert nn < 0.7 * net_nn
    share = int(re.search(r"\*\*(\d+)% of the samples", md).group(1))
    score = trained.last_scores["ideal"]
    assert share == round(100 * score.copies.share)
    assert "memorisation" in md or "blurs" in md  # why it copies, or why not yet
    with pytest.raises(gr.Error, match="Denoiser"):
        list(tab.sample(trained, "ddpm", 10, 0.0, 100, 0, False, "oracle"))


def test_memorisation_text_explains_when_the_ideal_does_not_copy(trained):
    dense = run_train(n=3000, steps=5)[0]
    _, md = list(tab.sample(dense, "ddim", 25, 0.0, 300, 0, False, "ideal"))[-1]
    # 3,000 moons are closer together than a 25-step chain's last step blurs
    assert "blurs" in md and "√((1−ᾱ_t)/ᾱ_t)" in md and "more sampling steps" in md


# --- the bound -------------------------------------------------------------------------------


def _numbers(md):
    return [float(v) for v in re.findall(r"\*\*(-?[\d.]+)\*\* ±", md)]


def test_bound_shows_both_denoisers_totals_and_terms(trained):
    outs = list(tab.bound(trained, "beta_tilde", "train", 300))
    assert outs[0][1].startswith(COMPUTING)
    fig, md = outs[-1]
    result = trained.last_bounds[("train", "beta_tilde")]
    assert _numbers(md) == [round(result.network.total, 3), round(result.ideal.total, 3)]
    assert result.n == 300 and result.step == trained.trainer.step
    # the left panel: L_t for t = 1..T−1, one line per denoiser; the right: L_0, Σ L_t, L_T, total
    net_line, net_bars, ideal_line, ideal_bars = fig.data
    assert len(net_line.x) == trained.T - 1 and net_line.x[0] == 1
    np.testing.assert_allclose(np.asarray(ideal_line.y, dtype=float),
                               result.ideal.terms[1:].numpy(), rtol=1e-12)
    assert list(net_bars.x) == ["L_0", "Σ L_t", "L_T", "total"]
    n = result.network
    np.testing.assert_allclose(np.asarray(net_bars.y, dtype=float),
                               [float(n.terms[0]), float(n.terms[1:].sum()), n.prior, n.total])
    assert "bits per dim" in md and f"{n.bits_per_dim:.3f}" in md
    assert "L_{\\text{simple}}" in md and "Network − ideal" in md
    diff, se = result.difference
    if diff > 2 * se:  # lower on its own training points: the memorising optimum
        assert "exact optimum" in md and "copies the training set" in md


def test_bound_totals_equal_vlb_terms(trained):
    """One piece (a few points) is exactly vlb_terms of the network and of the ideal denoiser
    with the seed-0 generator."""
    from diffusion_core.evaluation.vlb import vlb_terms

    _, md = list(tab.bound(trained, "beta", "fresh", 12))[-1]
    x0 = toy2d_why.bound_points(trained, "fresh", 12)
    want = [vlb_terms(d, trained.schedule, x0, variance="beta",
                      generator=torch.Generator().manual_seed(0)).total
            for d in (trained.model, trained.ideal)]
    assert _numbers(md) == [round(w, 3) for w in want]


def test_bound_lists_its_last_sample_scores_and_the_fresh_minus_train_gap(trained):
    list(tab.sample(trained, "ddim", 20, 0.0, 200, 0, False, "network"))
    list(tab.bound(trained, "beta_tilde", "train", 200))
    _, md = list(tab.bound(trained, "beta_tilde", "fresh", 200))[-1]
    q = trained.last_scores["network"].quality
    assert f"NN {q.nn:.2f}" in md and "Fresh − training points" in md
    assert "fresh points" in md


def test_bound_bad_input_and_no_model():
    with pytest.warns(UserWarning, match="Train a model first"):
        outs = list(tab.bound(None, "beta", "train", 100))
    assert outs[-1][1] == "Train a model first."
    for args in [("sigma", "train", 100), ("beta", "test", 100), ("beta", "train", 0),
                 ("beta", "train", 10**6), ("beta", "train", "abc"), ("beta", "train", 2.5)]:
        with pytest.raises(gr.Error):
            next(tab.bound(None, *args))


def test_empty_points_box_means_the_default_and_stop_leaves_no_bound(trained):
    gen = tab.bound(trained, "beta_tilde", "fresh", None)
    first = next(gen)
    assert "1,000 points" in first[1]
    gen.close()  # ■ Stop
    fig, text = tab.bound_finished(first[1])
    assert fig == gr.skip() and text.startswith("Stopped: no bound")
    assert tab.bound_finished("Bound on 10 training points") == (gr.skip(), gr.skip())


# --- the prediction control ------------------------------------------------------------------


def test_prediction_reaches_the_train_config_and_is_checked():
    state, fig, text, *_ = run_train(steps=10, prediction="v")
    assert state.trainer.config.prediction == "v" and state.prediction == "v"
    assert "predicting v" in text
    assert fig.layout.yaxis.title.text.startswith("‖v − v̂‖²")
    with pytest.raises(gr.Error, match="Prediction"):
        next(tab.train(None, **{**BASE, "prediction": "score"}))
    assert PRESET.train.prediction == "eps"
    assert run_train(steps=2)[0].trainer.config.prediction == "eps"  # the default


def test_loss_chart_keeps_one_per_t_curve_per_prediction():
    a = run_train(steps=15)[0]
    b = run_train(a, steps=15, prediction="x0")[0]
    c, fig, *_ = run_train(b, steps=15, prediction="v")
    right = [tr for tr in fig.data if tr.xaxis == "x2"]
    names = [tr.name for tr in right]
    assert len(right) == 3 and names[0].startswith("ε-prediction")
    assert names[1].startswith("x0-prediction") and "(this model)" in names[2]
    for tr, p in zip(right, ("eps", "x0", "v"), strict=True):
        np.testing.assert_allclose(np.asarray(tr.y, dtype=float),
                                   c.prediction_curves()[p].eps_loss, rtol=1e-9)
    # a new data set starts a new comparison
    d, fig, *_ = run_train(c, steps=5, dataset="circles")
    assert len([tr for tr in fig.data if tr.xaxis == "x2"]) == 1


def test_the_tab_wires_the_new_controls():
    import app

    demo = app.build_demo()
    by_name = {getattr(fn, "api_name", None): fn for fn in demo.fns.values()}
    labels = lambda fn: [getattr(c, "label", None) for c in fn.inputs]  # noqa: E731
    # (position 16, 17: inputs added later — the drawing's state, … — come after them)
    assert labels(by_name["toy_train"])[16:18] == ["Prediction",
                                                   "Train with class labels (for guidance)"]
    assert labels(by_name["toy_sample"])[7] == "Denoiser"  # (then "Trace paths of N points")
    assert labels(by_name["toy_vector_field"])[-1] == "Show"
    assert labels(by_name["toy_bound"])[1:] == ["Reverse variance σ_t²", "Score",
                                                "Points scored"]
    assert by_name["toy_bound"].concurrency_id == "sample"
