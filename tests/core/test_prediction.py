"""ε / x0 / v prediction: the conversions of ``forward``, the ε-predictor wrapper, configs and
checkpoints that record what a network predicts.

The conversions are exact formulas; in float64 every round trip is checked to 1e-6 at t = 0,
mid and T−1 of the cosine schedule with T = 200 (ᾱ_{T−1} ≈ 6e-8, 1 − ᾱ_0 ≈ 2.6e-4: the worst
conditioning the app's 2D preset has). In float32 a conversion that divides by √ᾱ_t or
√(1 − ᾱ_t) loses that factor in precision, so its tolerance carries the same factor.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from diffusion_core.checkpoints import load_checkpoint, read_config, save_checkpoint
from diffusion_core.forward import (
    EpsPredictor,
    as_eps_predictor,
    eps_from_prediction,
    pred_eps_from_v,
    pred_x0_from_v,
    prediction_from_eps,
    prediction_target,
    q_sample,
    v_target,
)
from diffusion_core.models import MLP2D, MLPConfig
from diffusion_core.schedule import NoiseSchedule, ScheduleConfig
from diffusion_core.training.config import TrainConfig

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "models"
T = 200
SHAPES = [(6, 2), (6, 3, 4, 4)]
TOL32 = 2e-6  # ~16 float32 ulps of a unit-sized value


@pytest.fixture(scope="module")
def sched():
    return NoiseSchedule(kind="cosine", T=T)


def _draw(shape, dtype, seed=0):
    """x0, ε and t (first third t = 0, then mid, then T−1) for a batch of ``shape``."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    eps = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    t = torch.tensor([0, 0, T // 2, T // 2, T - 1, T - 1])
    return x0, eps, t


def _cond(sched, t, like):
    """Per-sample 1/√ᾱ_t and 1/√(1 − ᾱ_t), broadcast to ``like``: how much a division costs."""
    ab = sched.float64["alphas_cumprod"][t]
    shape = (len(t),) + (1,) * (like.ndim - 1)
    return (ab.rsqrt().reshape(shape), (1 - ab).rsqrt().reshape(shape))


# --- conversions -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_v_and_its_inverses_against_the_formulas(sched, shape):
    """v = √ᾱ ε − √(1−ᾱ) x0; x0 = √ᾱ x_t − √(1−ᾱ) v; ε = √(1−ᾱ) x_t + √ᾱ v (Salimans & Ho)."""
    x0, eps, t = _draw(shape, torch.float64)
    x_t = q_sample(sched, x0, t, eps)
    v = v_target(sched, x0, t, eps)
    for i, ti in enumerate(t.tolist()):
        a = sched.alpha_bar(ti)
        want = math.sqrt(a) * eps[i] - math.sqrt(1 - a) * x0[i]
        assert (v[i] - want).abs().max() <= 1e-12
    assert (pred_x0_from_v(sched, x_t, t, v) - x0).abs().max() <= 1e-6
    assert (pred_eps_from_v(sched, x_t, t, v) - eps).abs().max() <= 1e-6
    assert torch.allclose(v[4:], -x0[4:], atol=1e-3)  # t = T−1: v ≈ −x0
    assert torch.allclose(v[:2], eps[:2], atol=0.02 * x0[:2].abs().max())  # t = 0: v ≈ ε


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_round_trips_are_exact_in_float64(sched, shape, prediction):
    x0, eps, t = _draw(shape, torch.float64, seed=1)
    x_t = q_sample(sched, x0, t, eps)
    target = prediction_target(sched, x0, t, eps, prediction)
    # the target converts to the ε that made x_t …
    assert (eps_from_prediction(sched, x_t, t, target, prediction) - eps).abs().max() <= 1e-6
    # … and back
    assert (prediction_from_eps(sched, x_t, t, eps, prediction) - target).abs().max() <= 1e-6
    # an arbitrary output (not consistent with any x0) round-trips both ways too
    out = torch.randn(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps_hat = eps_from_prediction(sched, x_t, t, out, prediction)
    assert (prediction_from_eps(sched, x_t, t, eps_hat, prediction) - out).abs().max() <= 1e-6
    back = prediction_from_eps(sched, x_t, t, out, prediction)
    assert (eps_from_prediction(sched, x_t, t, back, prediction) - out).abs().max() <= 1e-6


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_round_trips_in_float32_within_their_conditioning(sched, shape, prediction):
    """Each direction that divides by √ᾱ_t or √(1 − ᾱ_t) is allowed that factor × ``TOL32``."""
    x0, eps, t = _draw(shape, torch.float32, seed=3)
    x_t = q_sample(sched, x0, t, eps)
    inv_sqrt_ab, inv_sqrt_1m = _cond(sched, t, x0)
    inv_sqrt_ab, inv_sqrt_1m = inv_sqrt_ab.float(), inv_sqrt_1m.float()
    out = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    to_eps = eps_from_prediction(sched, x_t, t, out, prediction)
    # to ε: v is a weighted sum (well conditioned); x0 divides by √(1 − ᾱ_t)
    want = eps_from_prediction(sched, x_t.double(), t, out.double(), prediction).float()
    tol = TOL32 * (inv_sqrt_1m if prediction == "x0" else 1.0)
    assert ((to_eps - want).abs() <= tol).all()
    # from ε (both divide by √ᾱ_t): ε → p → ε is still well conditioned, p → ε → p is not
    eps_hat = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    p = prediction_from_eps(sched, x_t, t, eps_hat, prediction)
    again = eps_from_prediction(sched, x_t, t, p, prediction)
    assert ((again - eps_hat).abs() <= tol).all()
    back = prediction_from_eps(sched, x_t, t, to_eps, prediction)
    assert ((back - out).abs() <= TOL32 * inv_sqrt_ab).all()
    assert (back - out)[:4].abs().max() <= 1e-4  # t = 0 and mid: float32-exact


def test_loss_weights_stated_in_train_config(sched):
    """‖x̂0 − x0‖² = SNR⁻¹ ‖ε̂ − ε‖² and ‖v̂ − v‖² = ‖ε̂ − ε‖² / ᾱ (for any ε̂, at every t)."""
    g = torch.Generator().manual_seed(6)
    t = torch.arange(T)
    x0 = torch.randn(T, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(T, 2, generator=g, dtype=torch.float64)
    eps_hat = eps + 0.1 * torch.randn(T, 2, generator=g, dtype=torch.float64)
    x_t = q_sample(sched, x0, t, eps)
    err = lambda a, b: (a - b).pow(2).sum(1)  # noqa: E731
    e = err(eps_hat, eps)
    ab = sched.float64["alphas_cumprod"]
    snr = sched.float64["snr"]
    x0_hat = prediction_from_eps(sched, x_t, t, eps_hat, "x0")
    v_hat = prediction_from_eps(sched, x_t, t, eps_hat, "v")
    torch.testing.assert_close(err(x0_hat, x0), e / snr, rtol=1e-6, atol=0)
    torch.testing.assert_close(err(v_hat, v_target(sched, x0, t, eps)), e / ab, rtol=1e-6,
                               atol=0)
    torch.testing.assert_close(1 / ab, 1 + 1 / snr, rtol=1e-9, atol=0)


def test_conversions_validate_their_inputs(sched):
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="prediction"):
        eps_from_prediction(sched, x, 0, x, "score")
    with pytest.raises(ValueError, match="shape"):
        eps_from_prediction(sched, x, 0, torch.zeros(3, 3), "v")
    with pytest.raises(ValueError, match="t must be"):
        eps_from_prediction(sched, x, T, x, "x0")
    with pytest.raises(ValueError, match="prediction"):
        prediction_target(sched, x, 0, x, "x_t")
    nan = torch.full((3, 2), float("nan"))  # NaNs pass, as they would from an ε-network
    assert eps_from_prediction(sched, x, 0, nan, "v").isnan().all()


# --- the ε-predictor wrapper -----------------------------------------------------------------


class _Conv(nn.Module):
    """A tiny image network ``(x [B, C, H, W], t [B]) → [B, C, H, W]`` for the wrapper."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x, t):
        return self.conv(x) + (t.float() / T).reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("prediction", ["x0", "v"])
@pytest.mark.parametrize("kind", ["mlp", "image"])
def test_wrapper_equals_manual_conversion(sched, prediction, kind):
    torch.manual_seed(0)
    if kind == "mlp":
        net = MLP2D(MLPConfig(hidden=16, depth=2, num_timesteps=T))
        x = torch.randn(6, 2)
    else:
        net, x = _Conv(), torch.randn(6, 3, 4, 4)
    t = torch.tensor([0, 1, 50, 100, 198, 199])
    model = as_eps_predictor(net, sched, prediction)
    assert isinstance(model, EpsPredictor) and model.network is net
    with torch.no_grad():
        manual = eps_from_prediction(sched, x, t, net(x, t), prediction)
        assert torch.equal(model(x, t), manual)
        net.double()  # float64 inputs take the float64 coefficients
        x64 = x.double()
        assert torch.equal(model(x64, t),
                           eps_from_prediction(sched, x64, t, net(x64, t), prediction))
    net.float()
    assert list(model.parameters()) == list(net.parameters())
    net.eval()
    assert not as_eps_predictor(net, sched, prediction).training
    with pytest.raises(ValueError):
        EpsPredictor(model, sched, "v")


def test_eps_is_the_network_itself(sched):
    net = MLP2D(MLPConfig(hidden=8, depth=1, num_timesteps=T))
    assert as_eps_predictor(net, sched, "eps") is net
    with pytest.raises(ValueError, match="prediction"):
        as_eps_predictor(net, sched, "noise")


class _PointMassX0(nn.Module):
    """The exact x0-predictor of data that is a single point c: x̂0 = c for every (x_t, t)."""

    def __init__(self, c: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("c", c)

    def forward(self, x, t):
        return self.c.expand_as(x)


@pytest.mark.parametrize("sampler", [dict(sampler="ddpm"), dict(sampler="ddim", steps=20,
                                                                   spacing="trailing")])
def test_samplers_run_a_wrapped_x0_network_unchanged(sched, sampler):
    """Through the wrapper the exact x0-predictor of a point mass samples that point."""
    from diffusion_core.sampling import sample_final

    c = torch.tensor([0.7, -0.3])
    model = as_eps_predictor(_PointMassX0(c), sched, "x0")
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    out = sample_final(model, sched, x_T, generator=torch.Generator().manual_seed(1), **sampler)
    assert (out - c).abs().max() <= 1e-4


# --- configs and checkpoints -----------------------------------------------------------------


def test_train_config_prediction_field():
    assert TrainConfig().prediction == "eps"
    assert TrainConfig(prediction="v").to_dict()["prediction"] == "v"
    assert TrainConfig.from_dict(TrainConfig(prediction="x0").to_dict()).prediction == "x0"
    old = TrainConfig().to_dict()
    del old["prediction"]  # a config written before the field existed
    assert TrainConfig.from_dict(old) == TrainConfig()
    for bad in ("score", "EPS", None):
        with pytest.raises(ValueError, match="prediction"):
            TrainConfig(prediction=bad)


def test_shipped_checkpoints_load_unchanged_as_eps():
    names = sorted(p.name for p in ASSETS.iterdir() if (p / "config.json").is_file())
    assert names, "no shipped checkpoints found"
    older = 0
    for name in names:
        config = read_config(ASSETS / name)
        older += "prediction" not in config  # written before the key existed
        assert config.get("prediction", "eps") == "eps"
        train = TrainConfig.from_dict(config["training"]["config"])
        assert train.prediction == "eps"
        ck = load_checkpoint(ASSETS / name)
        assert ck.prediction == "eps"
        assert not isinstance(ck.model, EpsPredictor) and ck.network is ck.model
    assert older >= 3  # digits, gradients, shapes predate the key and still load as ε


def _mlp():
    torch.manual_seed(0)
    cfg = MLPConfig(hidden=16, depth=2, num_timesteps=40)
    return MLP2D(cfg).eval(), cfg


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_checkpoint_keeps_the_prediction(tmp_path, prediction):
    net, cfg = _mlp()
    sched_cfg = ScheduleConfig(kind="cosine", T=40)
    wrapped = as_eps_predictor(net, NoiseSchedule(sched_cfg), prediction)
    training = {"config": TrainConfig(prediction=prediction).to_dict()}
    d = save_checkpoint(tmp_path / "ck", wrapped, cfg, sched_cfg, dataset={"name": "moons"},
                        training=training)
    config = json.loads((d / "config.json").read_text())
    assert config["prediction"] == prediction
    ck = load_checkpoint(d)
    assert ck.prediction == prediction and isinstance(ck.model, EpsPredictor)
    assert ck.model.prediction == prediction and not ck.model.training
    x, t = torch.randn(3, 2), torch.tensor([0, 20, 39])
    with torch.no_grad():
        assert torch.equal(ck.model(x, t), wrapped(x, t))
        assert torch.equal(ck.network(x, t), net(x, t))
    # the bare network with an explicit prediction writes the same checkpoint
    d2 = save_checkpoint(tmp_path / "ck2", net, cfg, sched_cfg, dataset={"name": "moons"},
                         training=training, prediction=prediction)
    assert json.loads((d2 / "config.json").read_text()) == config
    # contradictions are refused
    other = "v" if prediction == "x0" else "x0"
    with pytest.raises(ValueError, match="contradicts"):
        save_checkpoint(tmp_path / "bad", wrapped, cfg, sched_cfg, dataset={"name": "m"},
                        prediction=other)
    with pytest.raises(ValueError, match="contradicts"):
        save_checkpoint(tmp_path / "bad", net, cfg, sched_cfg, dataset={"name": "m"},
                        training=training)  # bare network, no prediction: "eps"
    with pytest.raises(ValueError, match="prediction"):
        save_checkpoint(tmp_path / "bad", net, cfg, sched_cfg, dataset={"name": "m"},
                        prediction="score")
    assert not (tmp_path / "bad").exists()


def test_checkpoint_without_or_with_a_bad_prediction(tmp_path):
    net, cfg = _mlp()
    d = save_checkpoint(tmp_path / "ck", net, cfg, ScheduleConfig(kind="cosine", T=40),
                        dataset={"name": "moons"})
    config = json.loads((d / "config.json").read_text())
    assert config["prediction"] == "eps"
    del config["prediction"]  # as every checkpoint written before the key existed
    (d / "config.json").write_text(json.dumps(config))
    ck = load_checkpoint(d)
    assert ck.prediction == "eps" and ck.model is ck.network
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    (bad / "config.json").write_text(json.dumps({**config, "prediction": "score"}))
    with pytest.raises(ValueError, match="prediction"):
        read_config(bad)
