"""IdealDenoiser: the exact E[ε | x_t] of a finite training set, against enumeration and limits."""

import math

import pytest
import torch

from diffusion_core.data import load_digits_images, make_2d
from diffusion_core.evaluation.distances import mean_nn_distance
from diffusion_core.forward import q_sample
from diffusion_core.oracles import GaussianOracle, IdealDenoiser, TopWeights, posterior_mean_x0
from diffusion_core.sampling import sample_final
from diffusion_core.schedule import NoiseSchedule
from diffusion_core.training.trainer import stf_target

T_VALUES = [0, 1, 10, 250, 500, 999]


@pytest.fixture(scope="module")
def sched():
    """DDPM's linear schedule, T = 1000: β_0 = 1e-4, so t = 0 is a very sharp posterior."""
    return NoiseSchedule(kind="linear", T=1000)


@pytest.fixture(scope="module")
def points():
    return torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.fixture(scope="module")
def digits():
    """60 native 8×8 digits [60, 1, 8, 8] in [−1, 1] and their labels."""
    s = load_digits_images(8, "train")
    return s.images[:60].double(), s.labels[:60]


def enumerate_posterior(data, sched, x_t, t):
    """Direct float64 enumeration: (ε, x̂0, w) from each point's q(x_t | x0 = x_i) (eq. 4)."""
    d = data.reshape(len(data), -1).double()
    x = x_t.reshape(len(x_t), -1).double()
    ab = sched.float64["alphas_cumprod"][t][:, None]
    sq = ((x[:, None, :] - ab.sqrt()[:, :, None] * d[None]) ** 2).sum(-1)  # [B, N]
    logw = -sq / (2 * (1 - ab))
    w = (logw - torch.logsumexp(logw, 1, keepdim=True)).exp()
    x0 = w @ d
    eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
    return eps.view(x_t.shape), x0.view(x_t.shape), w


def noisy(data, sched, t, gen):
    """x_t drawn from the forward process of random training points, at timesteps t [B]."""
    idx = torch.randint(0, len(data), (len(t),), generator=gen)
    return q_sample(sched, data[idx].double(), t, generator=gen)


# ---- exactness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("t", T_VALUES)
def test_equals_enumeration_in_float64(sched, points, t):
    ideal = IdealDenoiser(points, sched)
    g = torch.Generator().manual_seed(t)
    tb = torch.full((32,), t)
    # half from the forward process, half anywhere (between points, off the data)
    x_t = torch.cat([noisy(points, sched, tb[:16], g),
                     3 * torch.randn(16, 2, generator=g, dtype=torch.float64)])
    eps, x0, w = enumerate_posterior(points, sched, x_t, tb)
    assert (ideal(x_t, t) - eps).abs().max() < 1e-6
    assert (ideal.pred_x0(x_t, t) - x0).abs().max() < 1e-6
    assert (ideal.weights(x_t, t) - w).abs().max() < 1e-6


def test_per_example_t_and_eq4(sched, points):
    """t may differ per row; x_t = √ᾱ x̂0 + √(1−ᾱ) ε holds for the conditional means (eq. 4)."""
    ideal = IdealDenoiser(points, sched)
    g = torch.Generator().manual_seed(1)
    t = torch.tensor(T_VALUES * 4)
    x_t = noisy(points, sched, t, g)
    eps, x0, _ = enumerate_posterior(points, sched, x_t, t)
    got_eps, got_x0 = ideal(x_t, t), ideal.pred_x0(x_t, t)
    assert (got_eps - eps).abs().max() < 1e-6
    assert (got_x0 - x0).abs().max() < 1e-6
    ab = sched.float64["alphas_cumprod"][t][:, None]
    assert torch.allclose(ab.sqrt() * got_x0 + (1 - ab).sqrt() * got_eps, x_t, atol=1e-10)


def test_images_match_enumeration(sched, digits):
    images, _ = digits
    ideal = IdealDenoiser(images, sched)
    g = torch.Generator().manual_seed(2)
    t = torch.tensor([0, 10, 100, 300, 600, 999] * 2)
    x_t = noisy(images, sched, t, g)
    eps, x0, w = enumerate_posterior(images, sched, x_t, t)
    got = ideal(x_t, t)
    assert got.shape == x_t.shape == (12, 1, 8, 8)
    assert (got - eps).abs().max() < 1e-6
    assert (ideal.pred_x0(x_t, t) - x0).abs().max() < 1e-6
    assert (ideal.weights(x_t, t) - w).abs().max() < 1e-6


def test_float32_follows_dtype_and_stays_close(sched, points, digits):
    """float32 in → float32 out (computed in float32), close to the float64 answer."""
    for data in (points, digits[0]):
        ideal = IdealDenoiser(data.float(), sched)
        g = torch.Generator().manual_seed(3)
        t = torch.tensor(T_VALUES * 2)
        x_t = noisy(data, sched, t, g)
        eps, x0, _ = enumerate_posterior(data.float(), sched, x_t, t)
        got_eps, got_x0 = ideal(x_t.float(), t), ideal.pred_x0(x_t.float(), t)
        assert got_eps.dtype == got_x0.dtype == torch.float32
        assert (got_x0.double() - x0).abs().max() < 1e-4
        assert (got_eps.double() - eps).abs().max() < 1e-3  # ε is x̂0's error × √ᾱ/√(1−ᾱ)
        half = ideal(x_t.to(torch.bfloat16), t)
        assert half.dtype == torch.bfloat16 and torch.isfinite(half.float()).all()


def test_kernel_is_stf_target(sched, points):
    """posterior_mean_x0 is the kernel stf_target could call: same ε on the same reference."""
    g = torch.Generator().manual_seed(4)
    t = torch.randint(0, 1000, (64,), generator=g)
    x_t = noisy(points, sched, t, g)
    ab = sched.float64["alphas_cumprod"][t]
    x0 = posterior_mean_x0(x_t, ab, points)
    eps = (x_t - ab.sqrt()[:, None] * x0) / (1 - ab).sqrt()[:, None]
    assert torch.allclose(eps, stf_target(x_t, ab, points), atol=1e-9)
    assert (x0 - enumerate_posterior(points, sched, x_t, t)[1]).abs().max() < 1e-9


# ---- far away: no NaN, and the right limit ----------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_far_away_snaps_to_the_nearest_point(sched, points, dtype):
    """x_t = λu, λ ≫ 1: the log-weights are λ√ᾱ u·x_i/(1−ᾱ) + O(1), so all the weight goes to
    the point furthest along u, which is also the point nearest x_t/√ᾱ. The logit gap to the
    runner-up, λ√ᾱ Δ/(1−ᾱ), exceeds 50 for λ = 1e8 at every t and for λ = 1e4 up to t = 500;
    there the answer must be that point exactly (and elsewhere still finite)."""
    ideal = IdealDenoiser(points.to(dtype), sched)
    g = torch.Generator().manual_seed(5)
    u = torch.randn(8, 2, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    for lam in (1e4, 1e8):
        x_t = lam * u
        for t in (0, 500, 999):
            ab = sched.alpha_bar(t)
            proj = u @ points.T  # [8, N]
            top2 = proj.topk(2, dim=1).values
            gap = lam * math.sqrt(ab) * (top2[:, 0] - top2[:, 1]) / (1 - ab)
            eps, x0 = ideal(x_t.to(dtype), t), ideal.pred_x0(x_t.to(dtype), t)
            w = ideal.weights(x_t.to(dtype), t)
            assert torch.isfinite(eps).all() and torch.isfinite(x0).all()
            assert torch.isfinite(w).all() and torch.allclose(w.sum(1).double(),
                                                              torch.ones(8, dtype=torch.float64))
            nearest = torch.cdist(x_t / math.sqrt(ab), points).argmin(1)
            assert torch.equal(nearest, proj.argmax(1))  # the two descriptions agree
            sure = gap > 50
            if lam == 1e8 or t <= 500:
                assert sure.all()
            want_x0 = points[nearest]
            want_eps = (x_t - math.sqrt(ab) * want_x0) / math.sqrt(1 - ab)
            assert torch.allclose(x0[sure].double(), want_x0[sure], atol=1e-5)
            assert torch.allclose(eps[sure].double(), want_eps[sure], rtol=1e-6, atol=1e-3)


# ---- chunking ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 40, 100])
def test_chunked_equals_unchunked(sched, points, chunk):
    """chunk < N forces the online softmax over column blocks; chunk < B·N splits rows."""
    whole, part = IdealDenoiser(points, sched, chunk=10**9), IdealDenoiser(points, sched,
                                                                           chunk=chunk)
    g = torch.Generator().manual_seed(6)
    t = torch.randint(0, 1000, (25,), generator=g)
    x_t = torch.cat([noisy(points, sched, t[:20], g), 50 * torch.ones(5, 2, dtype=torch.float64)])
    assert torch.allclose(part(x_t, t), whole(x_t, t), atol=1e-12, rtol=1e-12)
    assert torch.allclose(part.pred_x0(x_t, t), whole.pred_x0(x_t, t), atol=1e-12)
    assert torch.allclose(part.weights(x_t, t), whole.weights(x_t, t), atol=1e-12)
    a, b = part.weights(x_t, t, top_k=5), whole.weights(x_t, t, top_k=5)
    assert torch.allclose(a.weights, b.weights, atol=1e-12)
    assert torch.equal(a.indices[a.weights > 1e-9], b.indices[b.weights > 1e-9])


def test_blocks_respect_the_chunk(sched, points, monkeypatch):
    """No block of log-weights holds more than ``chunk`` numbers (the documented memory bound)."""
    import diffusion_core.oracles.ideal as ideal_module

    sizes = []
    real = ideal_module._log_weights

    def spy(coef, ref_aug):
        out = real(coef, ref_aug)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(ideal_module, "_log_weights", spy)
    x_t = torch.randn(300, 2, dtype=torch.float64)
    for chunk in (7, 100, 1000):
        ideal = IdealDenoiser(points, sched, chunk=chunk)
        sizes.clear()
        ideal(x_t, 10)
        ideal.weights(x_t, 10, top_k=3)
        assert sizes and max(sizes) <= chunk
        assert sum(sizes) == 2 * 300 * len(points)  # every pair is seen exactly once per call


# ---- top-k -------------------------------------------------------------------------------------


def test_top_k_are_the_largest_weights(sched, points):
    ideal = IdealDenoiser(points, sched)
    g = torch.Generator().manual_seed(7)
    t = torch.tensor([5, 200, 400, 700])
    x_t = noisy(points, sched, t, g)
    full = ideal.weights(x_t, t)
    top = ideal.weights(x_t, t, top_k=6)
    assert isinstance(top, TopWeights) and top.indices.shape == top.weights.shape == (4, 6)
    assert torch.allclose(top.weights, full.topk(6, dim=1).values, atol=1e-14)
    assert torch.allclose(full.gather(1, top.indices), top.weights, atol=1e-14)
    assert (top.weights[:, 1:] <= top.weights[:, :-1]).all()
    every = ideal.weights(x_t, t, top_k=len(points))
    assert torch.allclose(every.weights.sum(1), torch.ones(4, dtype=torch.float64))
    # x̂0 is the weighted average of the training points the weights name
    assert torch.allclose(every.weights[:, :, None].mul(points[every.indices]).sum(1),
                          ideal.pred_x0(x_t, t), atol=1e-12)


# ---- conditional form --------------------------------------------------------------------------


def test_conditional_equals_unconditional_on_the_class(sched, digits):
    images, labels = digits
    cond = IdealDenoiser(images, sched, labels=labels)
    plain = IdealDenoiser(images, sched)
    g = torch.Generator().manual_seed(8)
    t = torch.tensor([0, 50, 300, 999] * 5)
    x_t = noisy(images, sched, t, g)
    y = torch.randint(0, 10, (20,), generator=g)
    eps, x0, w = cond(x_t, t, y), cond.pred_x0(x_t, t, y), cond.weights(x_t, t, y=y)
    top = cond.weights(x_t, t, top_k=3, y=y)
    for c in y.unique().tolist():
        rows, members = y == c, torch.nonzero(labels == c).flatten()
        sub = IdealDenoiser(images[members], sched)
        assert torch.allclose(eps[rows], sub(x_t[rows], t[rows]), atol=1e-12)
        assert torch.allclose(x0[rows], sub.pred_x0(x_t[rows], t[rows]), atol=1e-12)
        assert torch.allclose(w[rows][:, members], sub.weights(x_t[rows], t[rows]), atol=1e-12)
        assert w[rows][:, labels != c].abs().max() == 0
        sub_top = sub.weights(x_t[rows], t[rows], top_k=3)
        assert torch.equal(top.indices[rows], members[sub_top.indices])
    # y = None means all points, and matches a denoiser built without labels
    assert torch.allclose(cond(x_t, t), plain(x_t, t), atol=1e-12)
    # the class does change the answer (the test above could otherwise pass trivially)
    assert (eps - plain(x_t, t)).abs().max() > 0.1


def test_conditional_chunked(sched, digits):
    images, labels = digits
    a = IdealDenoiser(images, sched, labels=labels, chunk=3)
    b = IdealDenoiser(images, sched, labels=labels)
    g = torch.Generator().manual_seed(9)
    t = torch.randint(0, 1000, (10,), generator=g)
    x_t, y = noisy(images, sched, t, g), torch.arange(10)
    assert torch.allclose(a(x_t, t, y), b(x_t, t, y), atol=1e-12)


# ---- sampling reproduces the training set ------------------------------------------------------


@pytest.mark.parametrize("how", [dict(sampler="ddim", steps=50), dict(sampler="ddpm")])
def test_sampling_reproduces_training_points(sched, how):
    """With the ideal denoiser the samples land on training points: their distance to the nearest
    training point is far below the data's own nearest-neighbour spacing (a fresh draw of the
    data set scores about 1× that spacing). Two points closer than a few √(1−ᾱ_0) = 0.01 cannot
    be told apart even at t = 0, so a few samples land between such pairs: hence the median
    is held to a much tighter bound than the mean."""
    data = make_2d("moons", 64, seed=0)
    ideal = IdealDenoiser(data, sched)
    gen = torch.Generator().manual_seed(10)
    x_T = torch.randn(400, 2, generator=gen)
    out = sample_final(ideal, sched, x_T, generator=gen, **how)
    dist = torch.cdist(data.double(), data.double()).fill_diagonal_(math.inf)
    spacing = float(dist.min(1).values.mean())
    assert mean_nn_distance(out, data) < 0.1 * spacing
    assert torch.cdist(out.double(), data.double()).min(1).values.median() < 0.01 * spacing
    # and it memorises many points, not one
    hit = torch.cdist(out.double(), data.double()).argmin(1).unique()
    assert len(hit) >= 0.75 * len(data)


def test_sampling_images_reproduces_training_digits(sched, digits):
    images = digits[0].float()
    ideal = IdealDenoiser(images, sched)
    x_T = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(11))
    out = sample_final(ideal, sched, x_T, sampler="ddim", steps=20, clip_x0=True)
    assert out.shape == (8, 1, 8, 8)
    near = torch.cdist(out.flatten(1), images.flatten(1)).min(1).values
    assert near.max() < 1e-3  # 8×8 digits are ≥ 1 apart from each other


# ---- a large Gaussian sample approaches the Gaussian oracle ------------------------------------


def test_many_gaussian_points_approach_the_gaussian_oracle():
    """For N draws of N(μ, s²I) the posterior over x0 at large t spreads over many points and the
    ideal ε approaches the closed form (x̂0 differs by about the sample mean's error s/√N); at
    t = 0 it does not: the ideal denoiser memorises its N points."""
    sched = NoiseSchedule(kind="linear", T=100, scale_to_T=True)
    oracle = GaussianOracle(sched, mean=torch.tensor([0.5, -1.0]), std=0.3)
    g = torch.Generator().manual_seed(12)
    n = 20_000
    ideal = IdealDenoiser(oracle.sample_data(n, (2,), generator=g), sched)
    x0 = oracle.sample_data(1000, (2,), generator=g)

    def rms(a, b):
        return float((a - b).pow(2).mean().sqrt())

    for t in (50, 75, 99):
        x_t = q_sample(sched, x0, t, generator=g)
        assert rms(ideal(x_t, t), oracle(x_t, t)) < 0.01  # ε itself has rms ≈ 1
        assert rms(ideal.pred_x0(x_t, t), oracle.pred_x0(x_t, t)) < 3 * 0.3 / math.sqrt(n)
    x_t = q_sample(sched, x0, 0, generator=g)
    assert rms(ideal(x_t, 0), oracle(x_t, 0)) > 0.05


# ---- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("data, match", [
    ([[0.0, 1.0]], "float tensor"),
    (torch.ones(5, 2, dtype=torch.long), "float tensor"),
    (torch.ones(5), "float tensor"),
    (torch.ones(0, 2), "empty"),
    (torch.ones(5, 0), "empty"),
    (torch.tensor([[0.0, float("nan")]]), "NaN"),
    (torch.tensor([[0.0, float("inf")]]), "NaN or inf"),
])
def test_bad_data(sched, data, match):
    with pytest.raises(ValueError, match=match):
        IdealDenoiser(data, sched)


def test_bad_construction_arguments(sched, points):
    with pytest.raises(ValueError, match="labels"):
        IdealDenoiser(points, sched, labels=torch.zeros(39, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        IdealDenoiser(points, sched, labels=torch.zeros(40))
    with pytest.raises(ValueError, match="chunk"):
        IdealDenoiser(points, sched, chunk=0)
    with pytest.raises(ValueError, match="NoiseSchedule"):
        IdealDenoiser(points, "linear")


def test_bad_call_arguments(sched, points):
    ideal = IdealDenoiser(points, sched, labels=torch.arange(40) % 2)
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"shape \[B, 2\]"):
        ideal(torch.zeros(3, 3), 0)
    with pytest.raises(ValueError, match=r"shape \[B, 2\]"):
        ideal(torch.zeros(2), 0)
    with pytest.raises(ValueError, match="float tensor"):
        ideal(torch.zeros(3, 2, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="NaN"):
        ideal(torch.tensor([[0.0, float("nan")]]), 0)
    with pytest.raises(ValueError, match=r"t must be in \[0, 999\]"):
        ideal(x, 1000)
    with pytest.raises(ValueError, match=r"t must have shape"):
        ideal(x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="no training points"):
        ideal(x, 0, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="y must be"):
        ideal(x, 0, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="without labels"):
        IdealDenoiser(points, sched)(x, 0, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="top_k"):
        ideal.weights(x, 0, top_k=0)
    with pytest.raises(ValueError, match="more than the 20"):
        ideal.weights(x, 0, top_k=21, y=torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="do not match"):
        posterior_mean_x0(x, torch.zeros(2), points)


def test_buffers_are_not_changed_and_to_device_copies(sched, points):
    ideal = IdealDenoiser(points, sched)
    before = ideal.data.clone()
    x = torch.randn(4, 2)
    out = ideal(x, 3)
    assert torch.equal(ideal.data, before)
    assert torch.equal(ideal.to("cpu")(x, 3), out)
    assert len(ideal) == 40 and "N=40" in repr(ideal)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_follows_the_device(sched, points):
    ideal = IdealDenoiser(points, sched)
    x = torch.randn(16, 2, dtype=torch.float64)
    t = torch.randint(0, 1000, (16,))
    for model in (ideal, ideal.to("cuda")):
        out = model(x.cuda().float(), t.cuda())
        assert out.device.type == "cuda" and out.dtype == torch.float32
        assert torch.allclose(out.cpu().double(), ideal(x, t), atol=1e-3)
