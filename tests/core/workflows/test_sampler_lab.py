"""The sampler lab's workflow: several samplers from one x_T (paths, NFE), steps vs quality,
the DDIM inversion round trip, slerp and the interpolation between two inverted examples."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffusion_core import presets
from diffusion_core.oracles.gaussian import GaussianOracle
from diffusion_core.sampling import SamplerSettings, ddim_invert, sample_final
from diffusion_core.schedule import NoiseSchedule
from diffusion_core.workflows import sampler_lab as lab
from diffusion_core.workflows import toy2d as wf

ROOT = Path(__file__).resolve().parents[3]
MEAN = torch.tensor([1.0, -0.5])
THREE = [SamplerSettings("ddpm", None, spacing="trailing"),
         SamplerSettings("ddim", 7, 0.0, "trailing"),
         SamplerSettings("dpmpp_2m", 5, spacing="leading")]


@pytest.fixture(scope="module")
def sched():
    return NoiseSchedule(kind="linear", T=50, scale_to_T=True)


@pytest.fixture(scope="module")
def oracle(sched):
    return GaussianOracle(sched, mean=MEAN, std=0.5)


@pytest.fixture(scope="module")
def trained() -> wf.Toy2DSession:
    """The app's 2D preset trained briefly (300 steps, ≈ 1–3 s) on moons."""
    p = presets.TOY
    session = wf.Toy2DSession.create(wf.DataSpec("moons", 1000, 0.05, 0), p.schedule, p.model,
                                     p.train)
    for _ in session.train():
        pass
    return session


def run_all(it):
    for _ in it:
        pass
    return it


def test_workflow_imports_no_ui_library():
    code = ("import sys, diffusion_core.workflows.sampler_lab\n"
            "print('UI', sorted(m for m in ('gradio', 'plotly') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "UI []" in out.stdout


# --- the comparison -------------------------------------------------------------------------


def test_every_sampler_starts_from_the_same_seeded_x_T(oracle, sched):
    cmp = lab.SamplerComparison(oracle, sched, THREE, 64, seed=5)
    first = {}
    for p in cmp:
        if p.step.index == 0:
            first[p.run] = p.step.x_t.clone()
    assert sorted(first) == [0, 1, 2]
    want, _ = lab.draw_x_T((2,), 64, 5)
    for x in first.values():
        assert torch.equal(x, want)
    assert torch.equal(cmp.x_T, want)
    # and another seed gives another x_T
    assert not torch.equal(lab.SamplerComparison(oracle, sched, THREE, 64, seed=6).x_T, want)


def test_each_sampler_reproduces_a_plain_run_with_the_same_seed(oracle, sched):
    """x_T first, then the chain's noise from the same generator: the rule of tabs 3 and 4."""
    cmp = run_all(lab.SamplerComparison(oracle, sched, THREE, 32, seed=3))
    for run, settings in zip(cmp.runs, THREE, strict=True):
        x_T, g = lab.draw_x_T((2,), 32, 3)
        want = sample_final(oracle, sched, x_T, generator=g, **settings.sample_kwargs(sched.T))
        assert torch.equal(run.samples, want), run.label


def test_stochastic_samplers_share_their_noise(oracle, sched):
    """DDIM with η = 1 on the full chain is DDPM with β̃ (DDIM eq. 16): same x_T and same z
    ⇒ the same samples up to rounding."""
    configs = [SamplerSettings("ddpm", None, spacing="trailing"),
               SamplerSettings("ddim", sched.T, 1.0, "trailing")]
    a, b = run_all(lab.SamplerComparison(oracle, sched, configs, 200, seed=0)).runs
    assert torch.allclose(a.samples, b.samples, atol=1e-4)


def test_nfe_counts_every_network_call(oracle, sched):
    cmp = run_all(lab.SamplerComparison(oracle, sched, THREE, 16, seed=0))
    assert [r.nfe for r in cmp.runs] == [sched.T, 7, 5]
    assert [r.steps for r in cmp.runs] == [sched.T, 7, 5]
    assert cmp.planned_nfe == sched.T + 12
    assert cmp.runs[0].visited == tuple(range(sched.T - 1, -1, -1))
    # steps above T are cut to T
    big = run_all(lab.SamplerComparison(oracle, sched, [SamplerSettings("ddim", 500)], 4, 0))
    assert big.runs[0].nfe == sched.T


def test_paths_follow_a_fixed_subset_from_x_T_to_the_samples(oracle, sched):
    cmp = run_all(lab.SamplerComparison(oracle, sched, THREE, 100, seed=1, path_points=30))
    idx = cmp.path_index
    assert len(idx) == 30 and len(set(idx.tolist())) == 30
    for r in cmp.runs:
        assert r.paths.shape == (r.steps + 1, 30, 2)
        assert torch.equal(r.paths[0], cmp.x_T[idx])
        assert torch.equal(r.paths[-1], r.samples[idx])
        assert r.path_t[0] == r.visited[0] and r.path_t[-1] == -1
        assert len(r.path_t) == r.steps + 1
    none = run_all(lab.SamplerComparison(oracle, sched, THREE[:1], 10, seed=1))
    assert none.runs[0].paths is None and math.isnan(none.runs[0].path_length)


def test_deterministic_paths_are_smoother_than_ancestral_ones(oracle, sched):
    """Equal steps (the full chain): DDIM η = 0 follows the ODE, DDPM adds fresh noise every
    step, so its paths are far longer than their start-to-end distance."""
    configs = [SamplerSettings("ddim", sched.T, 0.0, "trailing"),
               SamplerSettings("ddpm", None, spacing="trailing")]
    ddim, ddpm = run_all(lab.SamplerComparison(oracle, sched, configs, 400, seed=2,
                                               path_points=200)).runs
    assert ddim.path_length / ddim.path_chord < 1.3
    assert ddpm.path_length / ddpm.path_chord > 2.0 * ddim.path_length / ddim.path_chord
    # the same numbers from path_lengths (total variation and chord)
    tv, chord = lab.path_lengths(ddpm.paths)
    assert math.isclose(float(tv.mean()), ddpm.path_length, rel_tol=1e-9)
    assert math.isclose(float(chord.mean()), ddpm.path_chord, rel_tol=1e-9)


def test_trained_model_ddim_paths_are_smoother_than_ddpm(trained):
    configs = [SamplerSettings("ddim", 50, 0.0, "trailing", clip_x0=True),
               SamplerSettings("ddim", 50, 1.0, "trailing", clip_x0=True)]
    smooth, jitter = run_all(lab.SamplerComparison(trained.model, trained.schedule, configs,
                                                   500, seed=0, path_points=300)).runs
    assert smooth.path_length < 0.5 * jitter.path_length


def test_stopping_keeps_only_finished_samplers(oracle, sched):
    cmp = lab.SamplerComparison(oracle, sched, THREE, 8, seed=0)
    it = iter(cmp)
    for p in it:
        if p.run == 1 and p.step.index == 2:
            break
    it.close()
    assert [r.index for r in cmp.runs] == [0]


def test_comparison_scores_with_the_tab_3_judge(trained):
    """One DDPM run in the lab = tab 3's Sample with the same seed: same samples, same score."""
    settings = SamplerSettings("ddpm", None, spacing="trailing")
    n, seed = 400, 7
    judge = lab.toy2d_judge(trained, n, projection_seed=seed)
    cmp = run_all(lab.SamplerComparison(trained.model, trained.schedule, [settings], n, seed,
                                        judge=judge))
    tab3 = wf.sample_session(trained, settings, n, seed)
    assert torch.equal(cmp.runs[0].samples, tab3.samples)
    s = cmp.runs[0].scores
    assert s["sw1"] == tab3.quality.sw1 and s["nn"] == tab3.quality.nn
    assert judge.metrics[0].reference == tab3.quality.floor
    assert [m.key for m in judge.metrics] == ["sw1", "nn"]


# --- steps vs quality -----------------------------------------------------------------------


def test_sweep_has_one_point_per_setting_and_step_count(oracle, sched):
    calls = []

    def score(x):
        calls.append(len(x))
        return {"mean": float(x.mean())}

    judge = lab.Judge("test", 20, (lab.Metric("mean", "mean", "—"),), score)
    configs = [SamplerSettings("ddim", 1, 0.0, "trailing"), SamplerSettings("dpmpp_2m", 1)]
    sweep = lab.QualitySweep(oracle, sched, configs, [10, 2, 5, 200, 5], judge, 20, seed=0)
    assert sweep.step_counts == (2, 5, 10)  # sorted, deduplicated, > T dropped
    assert sweep.nfe_total == 2 * 17
    progress = list(sweep)
    assert len(sweep.points) == 6 and len(calls) == 6
    # the plan runs the counts in increasing order, every setting at one count first
    assert [(p.config, p.steps) for p in sweep.points] == [
        (0, 2), (1, 2), (0, 5), (1, 5), (0, 10), (1, 10)]
    for c in range(2):
        nfe, values = sweep.curve(c, "mean")
        assert nfe.tolist() == [2, 5, 10] and len(values) == 3
    assert [p.nfe for p in sweep.points] == [p.steps for p in sweep.points]
    assert progress[-1].nfe_done == sweep.nfe_total
    assert sum(p.step is not None for p in progress) == sweep.nfe_total
    # every run starts from the same x_T
    firsts = [p.step.x_t for p in progress if p.step is not None and p.step.index == 0]
    assert all(torch.equal(x, sweep.x_T) for x in firsts)


def test_ddim_quality_improves_from_2_to_50_steps_on_a_trained_model(trained):
    n = 1000
    judge = lab.toy2d_judge(trained, n)
    configs = [SamplerSettings("ddim", 1, 0.0, "trailing", clip_x0=True),
               SamplerSettings("ddim", 1, 0.0, "leading")]
    sweep = run_all(lab.QualitySweep(trained.model, trained.schedule, configs, [2, 10, 50],
                                     judge, n, seed=0))
    for c in range(2):
        nfe, sw1 = sweep.curve(c, "sw1")
        _, nn = sweep.curve(c, "nn")
        assert nfe.tolist() == [2, 10, 50]
        assert sw1[-1] < 0.5 * sw1[0], sw1
        assert sw1[-1] < 2.0 * judge.metrics[0].reference, sw1  # near the floor at 50 steps
        assert nn[-1] < nn[0], nn


def test_sweep_refuses_step_counts_above_T(oracle, sched):
    judge = lab.Judge("test", 4, (), lambda x: {})
    with pytest.raises(ValueError, match="no step count"):
        lab.QualitySweep(oracle, sched, [SamplerSettings()], [100, 1000], judge, 4, 0)


# --- the inversion round trip ---------------------------------------------------------------


def _gaussian_x0(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return MEAN + 0.5 * torch.randn(n, 2, generator=g)


def test_round_trip_error_falls_with_steps_on_gaussian_data(oracle, sched):
    inv = run_all(lab.InversionSweep(oracle, sched, _gaussian_x0(), [2, 5, 10, 25, 50],
                                     spacing="trailing"))
    errors = [tr.rms for tr in inv.trips]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    for tr in inv.trips:
        assert tr.nfe == 2 * tr.steps and tr.t_top == sched.T - 1
        want = ddim_invert(oracle, sched, _gaussian_x0(), steps=tr.steps, spacing="trailing")
        assert torch.equal(tr.x_T, want)


def test_round_trip_error_falls_with_steps_on_a_trained_model(trained):
    """Every count ends at the same noisy timestep (the schedule cut there), so only the
    discretisation changes: the error falls steadily."""
    top = lab.noisy_top(trained.schedule)
    assert trained.schedule.alpha_bar(top) >= 1e-3 > trained.schedule.alpha_bar(top + 1)
    x0 = trained.data[:500]
    inv = run_all(lab.InversionSweep(trained.model, trained.schedule, x0, [2, 5, 10, 20, 50],
                                     spacing="trailing", top=top))
    errors = [tr.rms for tr in inv.trips]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.25 * errors[0]
    assert all(tr.t_top == top for tr in inv.trips)


def test_truncated_schedule_keeps_the_first_timesteps(sched):
    cut = lab.truncated_schedule(sched, 20)
    assert cut.T == 20
    for t in (0, 5, 19):
        assert math.isclose(cut.alpha_bar(t), sched.alpha_bar(t), rel_tol=1e-12)
    assert lab.truncated_schedule(sched, sched.T) is sched
    with pytest.raises(ValueError):
        lab.truncated_schedule(sched, sched.T + 1)


def test_inversion_progress_counts_network_calls(oracle, sched):
    progress = list(lab.InversionSweep(oracle, sched, _gaussian_x0(8), [3, 4]))
    calls = [p for p in progress if p.trip is None]
    assert len(calls) == 2 * (3 + 4)
    assert [p.phase for p in calls[:6]] == ["invert"] * 3 + ["sample"] * 3
    assert [p.trip.steps for p in progress if p.trip is not None] == [3, 4]


# --- slerp and the interpolation ------------------------------------------------------------


def test_slerp_ends_are_the_latents_and_it_keeps_the_norm():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 1, 8, 8, generator=g)
    path = lab.slerp(z0, z1, torch.linspace(0, 1, 7))
    assert path.shape == (7, 1, 8, 8)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    # orthogonal unit vectors: every point stays on the unit circle; the chord midpoint not
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = lab.slerp(a, b, [0.5])[0]
    assert torch.allclose(mid.norm(), torch.tensor(1.0)) and torch.allclose(mid[0], mid[1])
    # (nearly) parallel latents fall back to a straight line
    par = lab.slerp(a, 2 * a, [0.0, 0.5, 1.0])
    assert torch.allclose(par[:, 0], torch.tensor([1.0, 1.5, 2.0]))
    with pytest.raises(ValueError):
        lab.slerp(a, torch.zeros(3), [0.5])


def test_interpolation_ends_are_the_inverted_latents_and_the_reconstructions(oracle, sched):
    x0 = _gaussian_x0(2, seed=4)
    run = lab.LatentInterpolation(oracle, sched, x0[0], x0[1], frames=5, steps=20,
                                  spacing="trailing")
    phases = [p[0] for p in run]
    assert phases == ["invert"] * 20 + ["sample"] * 20
    res = run.result()
    want = ddim_invert(oracle, sched, x0, steps=20, spacing="trailing")
    assert torch.equal(res.latents, want)
    assert torch.equal(res.path[0], want[0]) and torch.equal(res.path[-1], want[1])
    assert res.path.shape == (5, 2) and res.samples.shape == (5, 2)
    assert res.nfe == 40 and res.t_top == sched.T - 1
    back = sample_final(oracle, sched, want, sampler="ddim", eta=0.0, steps=20,
                        spacing="trailing")
    assert torch.allclose(res.samples[0], back[0]) and torch.allclose(res.samples[-1], back[1])
    assert res.recon_rms == (lab.rms(back[0], x0[0]), lab.rms(back[1], x0[1]))
    assert max(res.recon_rms) < 0.3
    assert res.weights.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_interpolation_result_needs_a_finished_run(oracle, sched):
    run = lab.LatentInterpolation(oracle, sched, MEAN, -MEAN, frames=3, steps=5)
    with pytest.raises(RuntimeError):
        run.result()


# --- judges ---------------------------------------------------------------------------------


def test_image_judges_score_real_data_near_their_reference_and_noise_worse():
    from diffusion_core.data.synthetic import make_gradients, make_shapes

    assert lab.image_judge("faces", (3, 16, 16), 32) is None
    assert lab.image_judge("digits", (3, 16, 16), 32) is None  # digits are grey
    noise = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    for name, real in (("gradients", make_gradients(64, 16, seed=123)),
                       ("shapes", make_shapes(64, 16, seed=123)[0])):
        judge = lab.image_judge(name, (3, 16, 16), 64)
        good, bad = judge.score(real), judge.score(noise)
        for m in judge.metrics:
            assert m.reference is not None
            assert bad[m.key] > good[m.key], (name, m.key)
            assert good[m.key] < 3 * m.reference + 0.02, (name, m.key)


def test_digit_judge_prefers_real_digits_to_noise():
    from diffusion_core.data.digits import load_digits_images

    judge = lab.image_judge("digits8", (1, 8, 8), 64)
    real = load_digits_images(8, "test").images[:64]
    noise = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    good, bad = judge.score(real), judge.score(noise)
    assert [m.key for m in judge.metrics] == ["frechet_distance", "confidence"]
    assert good["frechet_distance"] < bad["frechet_distance"]
    assert good["confidence"] > bad["confidence"]


def test_draw_x_T_matches_the_image_tab():
    from diffusion_core.checkpoints import load_checkpoint
    from diffusion_core.workflows.image_sampling import initial_noise, sample_shape

    ck = load_checkpoint(ROOT / "assets" / "models" / "digits")
    x, g = lab.draw_x_T(sample_shape(ck), 3, 11)
    y, h = initial_noise(ck, 3, 11)
    assert torch.equal(x, y)
    assert torch.equal(torch.randn(4, generator=g), torch.randn(4, generator=h))
