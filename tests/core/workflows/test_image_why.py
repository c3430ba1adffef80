"""diffusion_core.workflows.image_why: the data a checkpoint was trained on, the ideal
denoiser beside the network, and the likelihood bound run in batches.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion_core.checkpoints import load_checkpoint, save_checkpoint
from diffusion_core.data import load_digits_images
from diffusion_core.evaluation.vlb import vlb_terms
from diffusion_core.forward import pred_x0_from_eps, q_sample
from diffusion_core.models import UNetConfig, build_model
from diffusion_core.oracles import IdealDenoiser
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig
from diffusion_core.workflows import image_why as why

TINY = UNetConfig(channels=1, image_size=8, dim=8, dim_mults=(1, 2), groups=4, attn_heads=1,
                  attn_dim_head=8, use_linear_attention=False, use_mid_attention=False)
DIGITS8 = {"name": "digits8", "kind": "image", "n": 1347, "shape": [1, 8, 8]}


def _tiny(tmp_path, name="tiny", dataset=DIGITS8, T=1000, config=TINY):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / name, build_model(config), config,
                    ScheduleConfig(kind="cosine", T=T), dataset=dataset)
    ck = load_checkpoint(tmp_path / name)
    ck.model.requires_grad_(False)
    return ck


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    """A tiny random U-Net recorded as trained on digits8 (the network's weights do not
    matter for the ideal denoiser or the bookkeeping of the bound)."""
    return _tiny(tmp_path_factory.mktemp("ck"))


@pytest.fixture(scope="module")
def view(ck):
    return why.IdealView(ck, why.training_data(ck))


# --- the data -----------------------------------------------------------------------------------


def test_training_data_is_what_the_cli_trains_on(ck):
    data = why.training_data(ck)
    assert torch.equal(data.train.images, load_digits_images(8, "train").images)
    assert torch.equal(data.held_out.images, load_digits_images(8, "test").images)
    assert data.train.shape == (1, 8, 8) and len(data.train) == 1347 and len(data.held_out) == 450
    assert data.train.images.min() >= -1 and data.train.images.max() <= 1
    assert data.label("train", 0) == str(int(data.train.labels[0]))
    assert why.training_data(ck) is data  # rebuilt once per process


@pytest.mark.parametrize("dataset, config, words", [
    ({"name": "folder"}, TINY, "not one of the data sets"),
    ({"name": "none (untrained)"}, TINY, "not one of the data sets"),
    ({}, TINY, "None"),
    ({"name": "digits", "n": 1347}, TINY, "1×16×16"),  # 16×16 data, 8×8 model
    ({"name": "digits8", "n": 500}, TINY, "not the same training set"),
])
def test_unavailable_data_says_why(tmp_path, dataset, config, words):
    ck = _tiny(tmp_path, dataset=dataset or {"name": None}, T=10, config=config)
    with pytest.raises(why.DataUnavailable, match=words):
        why.training_data(ck)


# --- the ideal denoiser beside the network ------------------------------------------------------


@pytest.mark.parametrize("source, index, t, seed", [("held_out", 7, 300, 0),
                                                     ("train", 100, 40, 5),
                                                     ("held_out", 0, 999, 3)])
def test_record_is_the_ideal_denoiser_on_the_same_x_t(ck, view, source, index, t, seed):
    r = view.at(source, index, t, seed)
    data = view.data
    x0 = data.split(source).images[index:index + 1]
    eps = torch.randn((1, 1, 8, 8), generator=torch.Generator().manual_seed(seed))
    x_t = q_sample(ck.schedule, x0, t, eps)
    torch.testing.assert_close(r.x_t, x_t[0], rtol=0, atol=0)
    ideal = IdealDenoiser(data.train.images, ck.schedule)
    torch.testing.assert_close(r.ideal_x0, ideal.pred_x0(x_t, t)[0], rtol=0, atol=0)
    with torch.inference_mode():
        net = pred_x0_from_eps(ck.schedule, x_t, t, ck.model(x_t, torch.tensor([t])))
    torch.testing.assert_close(r.net_x0, net[0].clamp(-1, 1))
    assert r.alpha_bar == ck.schedule.alpha_bar(t)
    assert r.rms_ideal == pytest.approx(float((r.ideal_x0 - x0[0]).double().pow(2).mean().sqrt()))


def test_top_k_weights_sum_to_their_share(view):
    r = view.at("held_out", 3, 600, 1, top_k=8)
    w = torch.tensor(r.top_weight, dtype=torch.float64)
    assert len(r.top_index) == 8 and (w[:-1] >= w[1:]).all()  # largest first
    assert 0 < w.sum() <= 1 + 1e-6 and r.share == pytest.approx(float(w.sum()), abs=1e-12)
    full = view.ideal.weights(r.x_t[None], 600)[0].double()  # [N], sums to 1
    assert full.sum() == pytest.approx(1.0, abs=1e-5)
    top = full.topk(8)
    assert list(r.top_index) == top.indices.tolist()
    torch.testing.assert_close(w, top.values, rtol=1e-4, atol=1e-7)
    assert r.effective_n == pytest.approx(float(1 / full.pow(2).sum()), rel=1e-5)
    assert torch.equal(r.top_images, view.data.train.images[list(r.top_index)])
    assert r.top_labels == tuple(view.data.label("train", i) for i in r.top_index)


def test_at_t0_the_ideal_x0_is_the_nearest_training_digit(ck, view):
    train = view.data.train.images
    for index in (0, 11, 222):
        r = view.at("held_out", index, 0, 0)
        # the training digit nearest x_t / √ᾱ_0 (≈ nearest x0: the noise is 0.006 per value)
        scaled = r.x_t.double().flatten() / math.sqrt(r.alpha_bar)
        nearest = int((train.flatten(1).double() - scaled).pow(2).sum(1).argmin())
        assert r.top_index[0] == nearest == r.nearest_index
        assert r.top_weight[0] > 0.999 and r.effective_n < 1.01
        torch.testing.assert_close(r.ideal_x0, train[nearest], rtol=0, atol=1e-4)
        assert r.nearest_rms > 0.05  # a held-out digit is not in the training set
    r = view.at("train", 42, 0, 0)  # a training digit: memorising returns it exactly
    assert r.top_index[0] == 42 == r.nearest_index and r.nearest_rms == 0.0
    torch.testing.assert_close(r.ideal_x0, train[42], rtol=0, atol=1e-4)


def test_at_the_last_step_the_ideal_x0_is_the_average(view):
    r = view.at("held_out", 5, view.T - 1, 0)
    assert r.effective_n > 0.99 * len(view.data.train)
    torch.testing.assert_close(r.ideal_x0, view.data.train.images.mean(0), rtol=0, atol=1e-3)
    assert r.noise_in_x0_units > 1e3


def test_curves_agree_with_single_views(view):
    c = view.curves("held_out", 9, 2, ts=[0, 150, 500, 999])
    assert c.ts.tolist() == [0, 150, 500, 999] and c.n_train == 1347 and c.top_k == why.TOP_K
    for i, t in enumerate(c.ts.tolist()):
        r = view.at("held_out", 9, t, 2)
        assert c.effective_n[i] == pytest.approx(r.effective_n, rel=1e-4)
        assert c.top_share[i] == pytest.approx(r.share, abs=1e-5)
        assert c.rms_ideal[i] == pytest.approx(r.rms_ideal, abs=1e-5)
        assert c.rms_net[i] == pytest.approx(r.rms_net, abs=1e-4)
    default = view.curve_timesteps()
    assert default[0] == 0 and default[-1] == view.T - 1 and len(default) == why.CURVE_POINTS
    assert np.all(np.diff(default) > 0)
    # effective number of digits grows from 1 (memorising) to ~N (the average)
    full = view.curves("held_out", 9, 2)
    assert full.effective_n[0] < 1.5 and full.effective_n[-1] > 1000


@pytest.mark.parametrize("call, words", [
    (lambda v: v.at("test", 0, 0, 0), "source"),
    (lambda v: v.at("held_out", 450, 0, 0), "0..449"),
    (lambda v: v.at("held_out", 0, 1000, 0), "0..999"),
    (lambda v: v.at("held_out", 0, -1, 0), "0..999"),
    (lambda v: v.at("held_out", 0, 5, -3), "seed"),
    (lambda v: v.at("held_out", 0, 5.0, 0), "t must"),
])
def test_bad_arguments_are_refused(view, call, words):
    with pytest.raises(ValueError, match=words):
        call(view)


# --- the bound ----------------------------------------------------------------------------------


def test_bound_images(view):
    data = view.data
    assert torch.equal(why.bound_images(data, "held_out"), data.held_out.images)  # all 450
    sub = why.bound_images(data, "train", 10)
    idx = np.linspace(0, 1346, 10).round().astype(int)
    assert torch.equal(sub, data.train.images[idx])
    assert torch.equal(why.bound_images(data, "held_out", 5), data.held_out.images[:5])
    assert why.bound_size(64) == 450 and why.bound_size(768) == 160
    assert why.images_per_call(64) == 32 and why.images_per_call(768) == 8
    with pytest.raises(ValueError):
        why.bound_images(data, "train", 0)


def test_one_batch_is_exactly_vlb_terms(ck, view):
    x0 = view.data.held_out.images[:12]
    (part,) = why.bound_stream(ck, x0, source="held_out", seed=4, per_call=12)
    want = vlb_terms(ck.model, ck.schedule, x0, decoder="discrete", timesteps=8,
                     generator=why.batch_generator(4, "held_out", 0))
    assert torch.equal(part.terms, want.terms) and part.total == want.total
    assert part.bits_per_dim == want.bits_per_dim and part.timesteps == 8
    assert why.combine([part]) is part


def test_batches_combine_into_the_whole(ck, view):
    x0 = view.data.held_out.images[:10]
    parts = list(why.bound_stream(ck, x0, source="held_out", seed=1, per_call=4,
                                  variance="beta"))
    assert [p.n for p in parts] == [4, 4, 2]
    for b, p in enumerate(parts):  # each batch: vlb_terms with its own generator
        want = vlb_terms(ck.model, ck.schedule, x0[4 * b:4 * b + 4], decoder="discrete",
                         timesteps=8, variance="beta",
                         generator=why.batch_generator(1, "held_out", b))
        assert torch.equal(p.terms, want.terms)
    whole = why.combine(parts)
    assert whole.n == 10 and whole.variance == "beta"
    torch.testing.assert_close(whole.terms, (4 * parts[0].terms + 4 * parts[1].terms
                                             + 2 * parts[2].terms) / 10)
    per = torch.cat([p.per_example for p in parts])
    assert torch.equal(whole.per_example, per)
    assert whole.total == pytest.approx(float(per.mean()), rel=1e-12)
    assert whole.total == pytest.approx(whole.prior + float(whole.terms.sum()), rel=1e-12)
    assert whole.total_stderr == pytest.approx(float(per.std() / math.sqrt(10)))
    assert whole.bits_per_dim == pytest.approx(whole.total / (64 * math.log(2)))
    other = vlb_terms(ck.model, ck.schedule, x0[:2], decoder="discrete", timesteps=3)
    with pytest.raises(ValueError, match="differ in"):
        why.combine([parts[0], other])
    with pytest.raises(ValueError):
        why.combine([])
    # a different seed draws other t's and ε: another estimate of the same bound
    again = list(why.bound_stream(ck, x0, source="held_out", seed=1, per_call=4,
                                  variance="beta"))
    assert torch.equal(why.combine(again).terms, whole.terms)  # reproducible
    seed2 = why.combine(list(why.bound_stream(ck, x0, source="held_out", seed=2, per_call=4,
                                              variance="beta")))
    assert not torch.equal(seed2.terms, whole.terms)


def test_summary_parts_add_up(ck, view):
    r = why.combine(list(why.bound_stream(ck, view.data.held_out.images[:16],
                                          source="held_out", seed=0)))
    s = why.summarise(r, ck.schedule)
    ln2d = 64 * math.log(2)
    assert s.bits_per_dim == r.bits_per_dim
    assert s.decoder_bits + s.steps_bits + s.prior_bits == pytest.approx(s.bits_per_dim,
                                                                         rel=1e-12)
    assert s.decoder_bits == float(r.terms[0]) / ln2d
    assert s.stderr_bits == pytest.approx(r.total_stderr / ln2d)
    # the strata cover t = 1..T−1 once each; the last step is its own stratum
    assert s.strata[0].lo == 1 and s.strata[-1].lo == ck.schedule.T - 1
    assert s.strata[-1].hi == ck.schedule.T and len(s.strata) == 8 + 1
    assert all(a.hi == b.lo for a, b in zip(s.strata[:-1], s.strata[1:], strict=True))
    assert sum(st.bits for st in s.strata) == pytest.approx(s.steps_bits, rel=1e-12)
    for st in s.strata:
        assert st.per_step_bits == pytest.approx(st.bits / (st.hi - st.lo))


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_eps_weights_reproduce_the_bound_terms(variance):
    """With ε̂ = 0 the ε-error is ‖ε‖², d on average: (L_t − var_part)/w_t ≈ d at every t."""
    schedule = NoiseSchedule(ScheduleConfig(kind="cosine", T=50))
    d, n = 64, 200
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    x0 = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    r = vlb_terms(zero, schedule, x0, variance=variance, decoder="discrete",
                  generator=torch.Generator().manual_seed(1))
    weight, var_part = why.eps_weights(schedule, variance, d)
    assert weight[0] == 0 and var_part[0] == 0 and (weight[1:] > 0).all()
    if variance == "beta_tilde":
        assert (var_part == 0).all()
    else:
        assert (var_part[1:] > 0).all()
    err = (r.terms[1:] - var_part[1:]) / weight[1:] / d  # each ≈ 1 ± √(2/(d n)) = 1 ± 0.013
    assert float(err.mean()) == pytest.approx(1.0, abs=0.01)
    assert float((err - 1).abs().max()) < 0.08
    s = why.summarise(r, schedule)  # every t its own stratum; ε-loss ≈ 1
    assert len(s.strata) == 49 and s.eps_loss == pytest.approx(1.0, abs=0.01)


def test_bound_run_streams_then_finishes(ck, view):
    settings = why.BoundSettings(seed=3, n=10, with_train=True)
    steps = list(why.bound_run(ck, view.data, settings))
    per_call = why.images_per_call(64)  # 32 ≥ 10: one batch per split
    assert per_call >= 10 and len(steps) == 2
    assert [s.source for s in steps] == ["held_out", "train"]
    assert [s.batches_done for s in steps] == [1, 2]
    assert not steps[0].result.done and steps[-1].result.done
    res = steps[-1].result
    assert res.images_done("held_out") == res.planned("held_out") == 10
    assert res.images_done("train") == 10 and res.seconds > 0
    want = vlb_terms(ck.model, ck.schedule, why.bound_images(view.data, "train", 10),
                     decoder="discrete", timesteps=8,
                     generator=why.batch_generator(3, "train", 0))
    assert torch.equal(res.terms("train").terms, want.terms)
    assert res.summary("train", ck.schedule).bits_per_dim == want.bits_per_dim
    # without training images: one split; the first yield already finishes it
    only = list(why.bound_run(ck, view.data, why.BoundSettings(n=4, with_train=False)))
    assert len(only) == 1 and only[0].result.done and only[0].result.terms("train") is None
    # closing the generator stops the run
    gen = why.bound_run(ck, view.data, why.BoundSettings(n=40, with_train=True))
    first = next(gen)
    gen.close()
    assert not first.result.done and first.result.images_done("held_out") == 32


@pytest.mark.parametrize("kw", [dict(variance="sigma"), dict(seed=-1), dict(seed=1.5),
                                dict(with_train="yes"), dict(timesteps=0), dict(n=0)])
def test_bound_settings_are_checked(kw):
    with pytest.raises(ValueError):
        why.BoundSettings(**kw)
