"""The variational bound, term by term, against closed forms for Gaussian data.

Index convention: t ∈ {0, …, T−1}; ᾱ_{−1} = 1. For data x0 ~ N(μ, s²I) in d dimensions and the
exact ε (GaussianOracle), the model's reverse mean is the true posterior mean, so
μ̃_t(x_t, x0) − μ_θ(x_t) = c₁ (x0 − E[x0 | x_t]) with c₁ = posterior_mean_coef1[t], and
x0 − E[x0 | x_t] ~ N(0, Var(x0|x_t) I) independently of x_t. Hence, with σ_t² the reverse
variance and v = Var(x0|x_t) (``oracle.x0_var``):

* L_t (t ≥ 1) = d c₁² v / (2σ_t²) + d/2 (ln(σ_t²/β̃_t) + β̃_t/σ_t² − 1), its random part
  (d c₁² v / (2σ²)) · χ²_d / d per example;
* L_0 (Gaussian decoder, σ² = β̃_1, mean x̂0 = E[x0|x_0] since c₁ = 1, c₂ = 0 at t = 0)
  = d/2 ln(2πσ²) + d v / (2σ²);
* L_T = d/2 ((1 − ᾱ) + ᾱ (‖μ‖²/d + s²) − 1 − ln(1 − ᾱ)), ᾱ = ᾱ_{T−1}.
"""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.evaluation.vlb import (
    BUCKETS,
    VLBTerms,
    bucket_index,
    discretized_gaussian_log_likelihood,
    discretized_gaussian_log_probs,
    vlb_terms,
)
from diffusion_core.models import MLPConfig, build_model
from diffusion_core.oracles import GaussianOracle
from diffusion_core.schedule import NoiseSchedule

MEAN = torch.tensor([0.5, -1.0])
STD = 0.3
D = 2
EULER_GAMMA = 0.5772156649015329


def _schedule(T: int = 50, kind: str = "linear") -> NoiseSchedule:
    return NoiseSchedule(kind=kind, T=T, scale_to_T=kind == "linear")


def closed_form(schedule: NoiseSchedule, variance: str) -> dict:
    """Every term of the bound for N(MEAN, STD²I) data and the exact ε, plus the per-term
    Monte-Carlo standard deviation of a per-example estimate (χ²_d: relative std √(2/d))."""
    f = schedule.float64
    T = schedule.T
    ab = f["alphas_cumprod"]
    x0_var = STD**2 * (1.0 - ab) / (ab * STD**2 + 1.0 - ab)  # Var(x0 | x_t)
    beta_tilde = f["posterior_variance"]
    sigma2 = beta_tilde if variance == "beta_tilde" else f["betas"]
    c1 = f["posterior_mean_coef1"]
    mean_part = torch.zeros(T, dtype=torch.float64)
    const = torch.zeros(T, dtype=torch.float64)
    mean_part[1:] = D * c1[1:] ** 2 * x0_var[1:] / (2 * sigma2[1:])
    const[1:] = D / 2 * (torch.log(sigma2[1:] / beta_tilde[1:])
                         + beta_tilde[1:] / sigma2[1:] - 1)
    s2 = math.exp(float(f["posterior_log_variance_clipped"][0]))  # β̃_1
    mean_part[0] = D * x0_var[0] / (2 * s2)
    const[0] = D / 2 * math.log(2 * math.pi * s2)
    a = float(ab[-1])
    prior = D / 2 * ((1 - a) + a * (float(MEAN.pow(2).sum()) / D + STD**2) - 1
                     - math.log(1 - a))
    terms = mean_part + const
    return {"terms": terms, "prior": prior, "total": float(terms.sum()) + prior,
            "per_example_sd": mean_part * math.sqrt(2 / D)}


@pytest.fixture(scope="module")
def setup():
    schedule = _schedule(50)
    oracle = GaussianOracle(schedule, MEAN, STD)
    x0 = oracle.sample_data(4000, (D,), generator=torch.Generator().manual_seed(0))
    return schedule, oracle, x0


@pytest.fixture(scope="module")
def results(setup):
    schedule, oracle, x0 = setup
    return {v: vlb_terms(oracle, schedule, x0, variance=v,
                         generator=torch.Generator().manual_seed(1))
            for v in ("beta_tilde", "beta")}


def test_decoder_mean_is_pred_x0() -> None:
    """At t = 0, μ̃ = c₁ x̂0 + c₂ x_t with c₁ = 1, c₂ = 0: the decoder's mean is x̂0."""
    f = _schedule(50).float64
    assert abs(float(f["posterior_mean_coef1"][0]) - 1.0) < 1e-12
    assert float(f["posterior_mean_coef2"][0]) == 0.0


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_every_term_matches_the_closed_form(setup, results, variance) -> None:
    schedule, _, x0 = setup
    r = results[variance]
    exact = closed_form(schedule, variance)
    n = x0.shape[0]
    assert isinstance(r, VLBTerms) and r.terms.shape == (schedule.T,)
    assert (r.n, r.d, r.T, r.variance, r.decoder, r.timesteps) == (
        n, D, schedule.T, variance, "gaussian", None)
    tol = 5 * exact["per_example_sd"] / math.sqrt(n) + 1e-9
    err = (r.terms - exact["terms"]).abs()
    assert (err < tol).all(), (err / tol).max()
    # the prior's spread over the data: Var(Σ x0²) = Σ (2s⁴ + 4μ²s²), times ᾱ/2
    a = float(schedule.float64["alphas_cumprod"][-1])
    prior_sd = 0.5 * a * math.sqrt(float((2 * STD**4 + 4 * MEAN.pow(2) * STD**2).sum()) / n)
    assert abs(r.prior - exact["prior"]) < 5 * prior_sd + 1e-12
    assert abs(r.total - exact["total"]) < 5 * r.total_stderr
    assert r.total == pytest.approx(float(r.per_example.mean()), abs=1e-9)
    assert r.total == pytest.approx(r.prior + float(r.terms.sum()), abs=1e-9)
    assert r.bits_per_dim == pytest.approx(r.total / (D * math.log(2)))


def test_bound_exceeds_the_nll_by_the_fixed_variance_gap(setup, results) -> None:
    """T = 50 (linear, 1000/T scaling), data N((0.5, −1), 0.3² I): the exact NLL is 0.4299
    nats; the bound is 3.80 with σ² = β̃ and 0.589 with σ² = β (closed form, checked above)."""
    schedule, oracle, _ = setup
    nll = oracle.nll_nats(D)
    assert nll == pytest.approx(0.4299, abs=1e-4)
    gaps = {v: closed_form(schedule, v)["total"] - nll for v in ("beta_tilde", "beta")}
    assert gaps["beta_tilde"] == pytest.approx(3.3701, abs=1e-3)
    assert gaps["beta"] == pytest.approx(0.1593, abs=1e-3)
    # measured (seeded): 3.66 ± 0.08 and 0.556 ± 0.027 (one standard error)
    r = results["beta_tilde"]
    assert r.total - 5 * r.total_stderr > nll + 0.5 * gaps["beta_tilde"]
    r = results["beta"]
    assert r.total - 3 * r.total_stderr > nll and r.total > nll + 0.5 * gaps["beta"]


def test_gap_with_T() -> None:
    """Finer chains (linear, 1000/T scaling): the β̃ gap shrinks with T (4.77 at T = 25 … 1.12 at
    T = 1000) but not to zero: near t = 0 the true reverse variance is ≈ β_t, not β̃_t, and the
    gap tends to d/2 (1 − ln 2 + γ) ≈ 0.884 (β̃) and d/2 (1 − ln 2) ≈ 0.307 (β: the decoder's
    β̃_1 alone). The β gap is not monotone (0.29, 0.16, 0.12, 0.13, 0.23 at T = 25 … 1000)."""
    nll = GaussianOracle(_schedule(50), MEAN, STD).nll_nats(D)
    Ts = (25, 50, 100, 200, 1000)
    tilde = [closed_form(_schedule(T), "beta_tilde")["total"] - nll for T in Ts]
    beta = [closed_form(_schedule(T), "beta")["total"] - nll for T in Ts]
    assert all(a > b for a, b in zip(tilde, tilde[1:], strict=False)), tilde
    assert tilde[0] == pytest.approx(4.773, abs=1e-3)
    assert tilde[-1] == pytest.approx(1.118, abs=1e-3)
    assert beta == pytest.approx([0.290, 0.159, 0.116, 0.129, 0.234], abs=1e-3)
    far = _schedule(64000)
    assert closed_form(far, "beta_tilde")["total"] - nll == pytest.approx(
        1 - math.log(2) + EULER_GAMMA, abs=0.02)
    assert closed_form(far, "beta")["total"] - nll == pytest.approx(1 - math.log(2), abs=0.005)
    # the estimator sees the same trend: T = 1000 measured with 25 KL terms per example
    fine = _schedule(1000)
    oracle = GaussianOracle(fine, MEAN, STD)
    x0 = oracle.sample_data(2000, (D,), generator=torch.Generator().manual_seed(2))
    r = vlb_terms(oracle, fine, x0, timesteps=25, generator=torch.Generator().manual_seed(3))
    assert abs(r.total - closed_form(fine, "beta_tilde")["total"]) < 5 * r.total_stderr
    assert r.total + 5 * r.total_stderr < nll + tilde[1]


def expected_given_x0(schedule: NoiseSchedule, x0: torch.Tensor, variance: str) -> float:
    """The bound's expectation over the noise alone, for these x0 (the estimator's target).

    x0 − E[x0|x_t] = (1 − k√ᾱ)(x0 − μ) − k√(1 − ᾱ) ε with k = √ᾱ s²/v_t, so
    E[‖x0 − E[x0|x_t]‖² | x0] = (1 − k√ᾱ)² ‖x0 − μ‖² + k² (1 − ᾱ) d.
    """
    f = schedule.float64
    ab = f["alphas_cumprod"]
    k = ab.sqrt() * STD**2 / (ab * STD**2 + 1 - ab)
    dev2 = (x0.double() - MEAN.double()).pow(2).sum(1).mean()
    sq = (1 - k * ab.sqrt()) ** 2 * dev2 + k**2 * (1 - ab) * D  # [T]
    exact = closed_form(schedule, variance)
    mean_part = exact["per_example_sd"] / math.sqrt(2 / D)  # d c₁² v / (2σ²)
    x0_var = STD**2 * (1.0 - ab) / (ab * STD**2 + 1.0 - ab)
    terms = exact["terms"] - mean_part + mean_part / (D * x0_var) * sq
    a = float(ab[-1])
    prior = (D / 2 * ((1 - a) - 1 - math.log(1 - a))
             + a / 2 * float(x0.double().pow(2).sum(1).mean()))
    return float(terms.sum()) + prior


def test_subset_of_timesteps_is_exact_in_expectation(setup) -> None:
    schedule, oracle, x0 = setup
    x0 = x0[:256]
    target = expected_given_x0(schedule, x0, "beta_tilde")

    def totals(seeds, **kw):
        return torch.tensor([vlb_terms(oracle, schedule, x0, **kw,
                                       generator=torch.Generator().manual_seed(s)).total
                             for s in seeds], dtype=torch.float64)

    full = totals(range(100, 110))
    sub = totals(range(40), timesteps=5)
    for est in (full, sub):
        assert abs(est.mean() - target) < 5 * est.std() / math.sqrt(len(est)), (est, target)
    assert sub.std() > 1.2 * full.std()  # the price of the subset: more variance
    # fixed generator ⇒ identical result; the per-t estimates add up to the total
    a = vlb_terms(oracle, schedule, x0, timesteps=5, generator=torch.Generator().manual_seed(7))
    b = vlb_terms(oracle, schedule, x0, timesteps=5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.per_example, b.per_example) and torch.equal(a.terms, b.terms)
    assert a.timesteps == 5 and a.total == pytest.approx(a.prior + float(a.terms.sum()))
    # the decoder is evaluated for every example
    assert (a.terms[0] - closed_form(schedule, "beta_tilde")["terms"][0]).abs() < 0.5
    # timesteps = T − 2 visits every t once: the full estimate's distribution
    c = vlb_terms(oracle, schedule, x0, timesteps=schedule.T - 2,
                  generator=torch.Generator().manual_seed(7))
    assert abs(c.total - target) < 5 * full.std()


def test_untrained_mlp_bound_is_finite_and_worse_than_the_oracle(setup, results) -> None:
    schedule, _, x0 = setup
    torch.manual_seed(0)
    mlp = build_model(MLPConfig(hidden=16, depth=1, num_timesteps=schedule.T)).eval()
    r = vlb_terms(mlp, schedule, x0[:1000], generator=torch.Generator().manual_seed(0))
    assert math.isfinite(r.total) and torch.isfinite(r.terms).all()
    assert r.total > results["beta_tilde"].total + 10


# ---- the discrete decoder -----------------------------------------------------------------------

@pytest.mark.parametrize("std", [1e-7, 1e-4, 3e-3, 0.05, 1.0, 30.0])
def test_bucket_probabilities_sum_to_one(std) -> None:
    means = torch.tensor([-1.5, -1.0, -0.99999, -0.5, 0.0, 1 / 255, 0.3, 0.99999, 1.0, 1.2],
                         dtype=torch.float64)
    logp = discretized_gaussian_log_probs(means, std)
    assert logp.shape == (len(means), BUCKETS)
    assert torch.isfinite(logp).all() or std < 1e-3  # far tails may underflow to −inf
    total = torch.logsumexp(logp, dim=-1).exp()
    assert (total - 1).abs().max() < 1e-6


def test_bucket_probabilities_are_gaussian_masses() -> None:
    mean, std = torch.tensor([0.1, -0.95]), 0.05
    logp = discretized_gaussian_log_probs(mean, std)
    normal = torch.distributions.Normal(mean.double().unsqueeze(-1), std)
    levels = torch.linspace(-1, 1, BUCKETS, dtype=torch.float64)
    mass = normal.cdf(levels + 1 / 255) - normal.cdf(levels - 1 / 255)
    mass[:, 0] = normal.cdf(levels[0] + 1 / 255).squeeze(-1)
    mass[:, -1] = 1 - normal.cdf(levels[-1] - 1 / 255).squeeze(-1)
    assert torch.allclose(logp.exp(), mass, atol=1e-12)
    # deep tails stay finite and accurate: the stable form, not log(Φ − Φ) = log(0)
    far = discretized_gaussian_log_probs(torch.tensor([0.0]), 0.01)[0]
    assert torch.isfinite(far).all() and far[-1] < -4000
    z = (1 - 1 / 255) / 0.01  # bucket 255 = [1 − 1/255, ∞): ln Φ(−z) ≈ −z²/2 − ln(z √(2π))
    assert float(far[-1]) == pytest.approx(-z * z / 2 - math.log(z * math.sqrt(2 * math.pi)),
                                           rel=1e-4)


def test_log_likelihood_picks_the_bucket_of_x0() -> None:
    x0 = torch.tensor([-1.0, -0.2, 0.0, 0.4, 1.0, 0.999])
    mean = torch.tensor([-0.9, -0.21, 0.05, 0.4, 0.95, 0.9])
    ll = discretized_gaussian_log_likelihood(x0, mean, 0.02)
    table = discretized_gaussian_log_probs(mean, 0.02)
    idx = bucket_index(x0).long()
    assert idx[0] == 0 and idx[4] == 255 and idx[5] == 255
    assert torch.allclose(ll, table.gather(-1, idx.unsqueeze(-1)).squeeze(-1))


def _point_mass_denoiser(schedule: NoiseSchedule, x_star: torch.Tensor):
    """The exact ε when the data set is one example x*: ε = (x_t − √ᾱ x*) / √(1 − ᾱ)."""
    ab = schedule.float64["alphas_cumprod"]

    def model(x_t, t):
        a = ab[t].reshape(-1, *([1] * (x_t.ndim - 1)))
        return ((x_t - a.sqrt() * x_star) / (1 - a).sqrt()).to(x_t.dtype)
    return model


@pytest.mark.parametrize("decoder", ["discrete", "gaussian"])
def test_decoder_on_a_point_mass(decoder) -> None:
    """One image on the 8-bit grid, the exact denoiser: x̂0 = x0, every KL's mean part is 0,
    so the bound is L_T + L_0 with L_0 = −Σ ln P(own bucket | mean = x0, σ = √β̃_1):
    ln(2Φ(h/σ) − 1) inside, ln Φ(h/σ) at the edge levels ±1 (h = 1/255)."""
    schedule = _schedule(50, "cosine")
    levels = torch.tensor([-1.0, -1 + 2 / 255, -0.2 + 0.2 / 255, 0.0 + 1 / 255, 1.0, 1.0],
                          dtype=torch.float64)
    x_star = (torch.round((levels + 1) * 127.5) / 127.5 - 1).reshape(1, 1, 2, 3)
    x0 = x_star.expand(8, -1, -1, -1)
    r = vlb_terms(_point_mass_denoiser(schedule, x_star), schedule, x0, decoder=decoder,
                  generator=torch.Generator().manual_seed(0))
    sigma = math.exp(0.5 * float(schedule.float64["posterior_log_variance_clipped"][0]))
    if decoder == "discrete":
        cdf = torch.distributions.Normal(0.0, 1.0).cdf(torch.tensor(1 / 255 / sigma,
                                                                    dtype=torch.float64))
        edge = (levels.abs() == 1).sum().item()
        expected = -(edge * math.log(cdf) + (6 - edge) * math.log(2 * cdf - 1))
    else:
        expected = 3 * math.log(2 * math.pi * sigma**2)
    assert float(r.terms[0]) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert r.terms[1:].abs().max() < 1e-6
    assert r.d == 6 and r.decoder == decoder


# ---- bad inputs ---------------------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors(setup) -> None:
    schedule, oracle, x0 = setup
    x0 = x0[:8]
    cases = [
        ({"x0": x0[:, 0]}, "shape \\[B, ...\\]"),
        ({"x0": x0[:0]}, "at least one"),
        ({"x0": torch.full((4, 2), math.nan)}, "NaN"),
        ({"x0": x0.long()}, "float tensor"),
        ({"variance": "learned"}, "variance must be one of"),
        ({"decoder": "logistic"}, "decoder must be one of"),
        ({"decoder": "discrete", "x0": x0 * 3}, "\\[-1, 1\\]"),
        ({"timesteps": 0}, "timesteps must be in \\[1, 48\\]"),
        ({"timesteps": 49}, "timesteps must be in"),
        ({"timesteps": 2.5}, "timesteps must be None or an integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"schedule": "cosine"}, "schedule must be a NoiseSchedule"),
        ({"model": None}, "model must be callable"),
        ({"model": lambda x, t: x[:, :1]}, "expected x_t's shape"),
        ({"model": lambda x, t: x * math.nan}, "model returned NaN"),
    ]
    for kw, message in cases:
        args = {"model": oracle, "schedule": schedule, "x0": x0, **kw}
        with pytest.raises(ValueError, match=message):
            vlb_terms(args.pop("model"), args.pop("schedule"), args.pop("x0"), **args)
    with pytest.raises(ValueError, match="std must be positive"):
        discretized_gaussian_log_probs(torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="x0 must lie in"):
        discretized_gaussian_log_likelihood(torch.full((3,), 1.5), torch.zeros(3), 0.1)
