"""The 2D session against its ideal denoiser: the ideal field, the error by t, sampling that
memorises, the likelihood bound of both denoisers, and the per-t curves kept per prediction.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from diffusion_core import presets
from diffusion_core.data.toy2d import make_2d
from diffusion_core.evaluation.vlb import vlb_terms
from diffusion_core.forward import q_sample
from diffusion_core.oracles.ideal import IdealDenoiser
from diffusion_core.sampling import SamplerSettings
from diffusion_core.workflows import toy2d as wf
from diffusion_core.workflows import toy2d_why as why

SCHEDULE = presets.TOY.schedule
SMALL = replace(presets.TOY.model, hidden=32, depth=2, num_timesteps=SCHEDULE.T)
QUICK = replace(presets.TOY.train, batch_size=128, steps=60, report_every=20)


def trained(spec, model=SMALL, train=QUICK) -> wf.Toy2DSession:
    session = wf.Toy2DSession.create(spec, SCHEDULE, model, train)
    for _ in session.train():
        pass
    return session


@pytest.fixture(scope="module")
def small() -> wf.Toy2DSession:
    return trained(wf.DataSpec("moons", 400, 0.05, 0))


@pytest.fixture(scope="module")
def few_points() -> wf.Toy2DSession:
    """The preset recipe on 200 moons: few enough points for the ideal denoiser to copy them
    at the preset's schedule (their spacing, ≈ 0.03, is above the last step's blur, 0.016)."""
    return trained(wf.DataSpec("moons", 200, 0.05, 0), presets.TOY.model, presets.TOY.train)


# ---- the ideal field and the error by t -----------------------------------------------------


def test_the_ideal_field_is_the_ideal_denoisers_eps_on_the_same_grid(small):
    t = 7
    learned = wf.vector_field(small, t, grid_size=9)
    ideal = wf.vector_field(small, t, grid_size=9, denoiser="ideal")
    assert (learned.denoiser, ideal.denoiser) == ("network", "ideal")
    np.testing.assert_array_equal(ideal.grid, learned.grid)
    want = IdealDenoiser(small.data, small.schedule)(
        torch.tensor(ideal.grid, dtype=torch.float32), torch.full((81,), t))
    np.testing.assert_allclose(ideal.pred_eps, want.double().numpy(), rtol=1e-6, atol=1e-6)
    assert not np.allclose(ideal.pred_eps, learned.pred_eps, atol=1e-3)
    assert small.ideal is small.ideal  # built once per session
    with pytest.raises(ValueError, match="denoiser"):
        wf.vector_field(small, t, denoiser="oracle")


def test_error_by_t_is_the_mean_squared_gap_to_the_ideal_eps(small):
    err = why.eps_error_by_t(small, max_timesteps=40, max_points=100)
    assert len(err.t) == len(err.mse) == 40 and err.t[0] == 0 and err.t[-1] == small.T - 1
    assert np.all(np.diff(err.t) > 0) and np.all(err.mse >= 0) and err.n_points == 100
    assert err.step == small.trainer.step
    i = 5
    t = int(err.t[i])
    x_t = q_sample(small.schedule, small.data[:100], t, small.eps[:100])
    with torch.inference_mode():
        gap = (small.model(x_t, torch.full((100,), t)).double()
               - small.ideal(x_t, t).double()).pow(2).sum(1).mean()
    assert err.mse[i] == pytest.approx(float(gap), rel=1e-5)
    # all T when T is small enough; the points never exceed the data
    short = wf.Toy2DSession.create(wf.DataSpec("moons", 50, 0.05, 0),
                                   replace(SCHEDULE, T=20), replace(SMALL, num_timesteps=20),
                                   QUICK)
    every = why.eps_error_by_t(short)
    assert list(every.t) == list(range(20)) and every.n_points == 50
    with pytest.raises(ValueError):
        why.eps_error_by_t(small, max_points=0)


# ---- sampling with the ideal denoiser -------------------------------------------------------


def test_ideal_sampling_copies_training_points_and_the_network_does_not(few_points):
    settings = SamplerSettings(sampler="ddpm", steps=None)
    net = wf.sample_session(few_points, settings, 1000, seed=0, max_frames=4)
    ideal = wf.sample_session(few_points, settings, 1000, seed=0, max_frames=4,
                              denoiser="ideal")
    assert (net.denoiser, ideal.denoiser) == ("network", "ideal")
    assert net.last_t == ideal.last_t == 0
    # measured: network 0.89, ideal 0.23 (NN ratio); copies 1 % vs 30 % (fresh draw: 1 %)
    assert ideal.quality.nn < 0.4 and net.quality.nn > 0.7
    assert ideal.quality.nn < 0.5 * net.quality.nn
    assert ideal.copies.share > 0.2 > 5 * ideal.copies.reference
    assert net.copies.share < 0.05
    assert few_points.last_scores["ideal"].quality == ideal.quality
    assert few_points.last_scores["network"].copies == net.copies
    # the blur of the last step (t = 0 → −1) is below the points' spacing: why they are copied
    ab = few_points.schedule.alpha_bar(0)
    assert math.sqrt((1 - ab) / ab) < ideal.copies.spacing


def test_copy_share_counts_samples_on_training_points():
    data = make_2d("moons", 500, noise=0.05, seed=0)
    fresh = make_2d("moons", 500, noise=0.05, seed=1001)
    on = wf.copy_share(data[:300] + 1e-6, data, fresh)
    assert on.share == 1.0 and on.reference < 0.05 and on.radius > 0
    off = wf.copy_share(make_2d("moons", 500, noise=0.05, seed=7), data, fresh)
    assert off.share < 0.05 and 0.005 < on.spacing < 0.1
    with pytest.raises(ValueError, match="fresh draw"):
        wf.copy_share(fresh, data, data)


# ---- the bound ------------------------------------------------------------------------------


def test_one_piece_bound_is_exactly_vlb_terms(small):
    run = why.BoundRun(small, n=150, chunk=150, seed=3)
    steps = list(run)
    assert steps == [(1, 1)] and run.done
    result = run.result()
    for name, terms in (("network", result.network), ("ideal", result.ideal)):
        want = vlb_terms(small.denoiser(name), small.schedule, small.data[:150],
                         generator=torch.Generator().manual_seed(3))
        assert terms.total == want.total and torch.equal(terms.terms, want.terms)
        assert (terms.n, terms.T, terms.decoder, terms.variance) == (150, small.T, "gaussian",
                                                                    "beta_tilde")
    assert small.last_bounds[("train", "beta_tilde")] is result


def test_pieces_merge_into_the_bound_of_all_points(small):
    run = why.BoundRun(small, variance="beta", points="fresh", n=120, chunk=50, seed=1)
    assert len(run) == 3
    assert [p for p, _ in run] == [1, 2, 3]
    result = run.result()
    x0 = make_2d("moons", 120, noise=0.05, seed=1000)
    torch.testing.assert_close(run.x0, x0)
    g = torch.Generator().manual_seed(1)
    parts = [vlb_terms(small.model, small.schedule, x0[i:i + 50], variance="beta",
                       generator=g) for i in (0, 50, 100)]
    merged = why.merge_terms(parts)
    assert result.network.total == pytest.approx(merged.total, abs=1e-12)
    net = result.network
    assert net.n == 120 and net.total == pytest.approx(net.prior + float(net.terms.sum()))
    assert net.total == pytest.approx(float(net.per_example.mean()), abs=1e-9)
    assert net.bits_per_dim == pytest.approx(net.total / (2 * math.log(2)))
    # the same as one call over all the points, up to the Monte-Carlo noise
    whole = vlb_terms(small.model, small.schedule, x0, variance="beta",
                      generator=torch.Generator().manual_seed(9))
    assert abs(whole.total - net.total) < 4 * math.hypot(whole.total_stderr, net.total_stderr)
    diff, se = result.difference
    assert diff == pytest.approx(result.network.total - result.ideal.total, abs=1e-9) and se > 0
    (t0, d0), *_ = result.largest_differences()
    d = (result.network.terms - result.ideal.terms).abs()
    assert abs(d0) == pytest.approx(float(d.max())) and d[t0] == d.max()


def test_stopping_a_bound_early_leaves_no_result(small):
    run = why.BoundRun(small, n=100, chunk=10)
    it = iter(run)
    next(it)
    it.close()
    with pytest.raises(RuntimeError, match="not finished"):
        run.result()


def test_the_ideal_denoiser_memorises_in_the_bound_too(few_points):
    """On its own training points the ideal denoiser's bound is far below the network's; on
    fresh points it rises far more than the network's (measured with β̃, 1000 fresh points:
    ideal −0.74 → 6.66, network 4.22 → 5.35 nats per point)."""
    def bound(points, n):
        run = why.BoundRun(few_points, points=points, n=n)
        for _ in run:
            pass
        return run.result()

    train, fresh = bound("train", 200), bound("fresh", 1000)
    assert train.n == 200  # all the training points there are
    diff, se = train.difference
    assert diff > 2.0 and diff > 3 * se
    rise_ideal = fresh.ideal.total - train.ideal.total
    rise_net = fresh.network.total - train.network.total
    assert rise_ideal > 4.0 and rise_ideal > rise_net + 3.0


def test_eps_weights_are_ddpm_eq_12(small):
    f = small.schedule.float64
    w = why.eps_weights(small.schedule)
    assert w.shape == (small.T,) and math.isnan(w[0]) and np.all(w[1:] > 0)
    # with σ² = β̃_t the weight simplifies to β_t / (2 α_t (1 − ᾱ_{t−1}))
    want = (f["betas"][1:] / (2 * f["alphas"][1:] * (1 - f["alphas_cumprod"][:-1]))).numpy()
    np.testing.assert_allclose(w[1:], want, rtol=1e-10)
    wb = why.eps_weights(small.schedule, "beta")
    np.testing.assert_allclose(wb[1:], (f["betas"][1:] / (2 * f["alphas"][1:] * (
        1 - f["alphas_cumprod"][1:]))).numpy(), rtol=1e-10)
    with pytest.raises(ValueError):
        why.eps_weights(small.schedule, "learned")


def test_bad_bound_settings_raise(small):
    for kwargs in (dict(variance="sigma"), dict(points="test"), dict(n=0), dict(chunk=0)):
        with pytest.raises(ValueError):
            why.BoundRun(small, **kwargs)
    with pytest.raises(ValueError):
        why.merge_terms([])


# ---- one per-t curve per prediction ---------------------------------------------------------


def test_the_session_keeps_one_per_t_curve_per_prediction():
    spec = wf.DataSpec("moons", 300, 0.05, 0)
    cfg = replace(QUICK, steps=20)

    def press(session, spec=spec, model=SMALL, **changes):
        session, _ = wf.start_or_continue(session, spec, SCHEDULE, model,
                                          replace(cfg, **changes))
        for _ in session.train():
            pass
        return session

    eps = press(None)
    assert list(eps.prediction_curves()) == ["eps"]
    curve = eps.prediction_curves()["eps"]
    assert curve.eps_loss == eps.trainer.timestep_eps_loss() and curve.steps == 20
    x0 = press(eps, prediction="x0")
    curves = x0.prediction_curves()
    assert list(curves) == ["eps", "x0"] and curves["eps"] == curve
    assert curves["x0"].eps_loss == x0.trainer.timestep_eps_loss()
    v = press(x0, prediction="v")
    assert list(v.prediction_curves()) == ["eps", "x0", "v"]
    # continuing the same model updates its own curve, the others stay
    v2 = press(v, prediction="v")
    assert v2 is v and v.prediction_curves()["v"].steps == 40
    # ε again: a new ε model replaces the old ε curve once it has trained
    eps2 = press(v, prediction="eps")
    assert eps2.prediction_curves()["eps"].steps == 20
    assert eps2.prediction_curves()["eps"].eps_loss == eps2.trainer.timestep_eps_loss()
    assert set(eps2.prediction_curves()) == {"eps", "x0", "v"}
    # other data or another model: nothing to compare with
    other = press(eps2, spec=wf.DataSpec("circles", 300, 0.05, 0), prediction="x0")
    assert list(other.prediction_curves()) == ["x0"]
    wider = press(eps2, model=replace(SMALL, hidden=64), prediction="v")
    assert list(wider.prediction_curves()) == ["v"]


def test_the_why_workflow_imports_no_ui_library():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, diffusion_core.workflows.toy2d_why\n"
            "print('UI', sorted(m for m in ('gradio', 'plotly') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "UI []" in out.stdout
