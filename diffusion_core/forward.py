"""The forward (noising) process q and the conversions between x0, ε, v and x_t.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); ᾱ_{−1} = 1.
Shapes: any ``[B, ...]`` — 2D points ``[B, 2]`` and images ``[B, C, H, W]`` share one code
path; per-sample coefficients are broadcast by :func:`extract`.

Code name ↔ paper symbol (Ho et al. 2020):

=================  ===============================================================
``x0``             x_0, clean data
``x_t``            x_t, the noised sample at step t
``noise``/``eps``  ε ~ N(0, I)
``q_sample``       x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε                           (eq. 4)
``q_sample_iterative``  x_s = √(1 − β_s) x_{s−1} + √β_s ε_s, s = 0..t       (eq. 2)
``q_posterior``    q(x_{t−1} | x_t, x0) = N(μ̃_t, β̃_t I)                    (eqs. 6–7)
``pred_x0_from_eps``   x̂0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t           (eq. 4 solved for x0)
``pred_eps_from_x0``   ε̂ = (x_t − √ᾱ_t x̂0) / √(1 − ᾱ_t)           (eq. 4 solved for ε)
``v``              v = √ᾱ_t ε − √(1 − ᾱ_t) x0       (Salimans & Ho 2022, §4 and appendix D)
``pred_x0_from_v``     x̂0 = √ᾱ_t x_t − √(1 − ᾱ_t) v̂
``pred_eps_from_v``    ε̂ = √(1 − ᾱ_t) x_t + √ᾱ_t v̂
``pred_v_from_eps``    v̂ = (ε̂ − √(1 − ᾱ_t) x_t) / √ᾱ_t
=================  ===============================================================

A network may predict ε, x0 or v (``TrainConfig.prediction``). Every sampler calls an
ε-predictor, so the conversions live here, once: :func:`prediction_target` is what a network
regresses on, :func:`eps_from_prediction` turns its output into ε̂ and
:func:`prediction_from_eps` goes back; :func:`as_eps_predictor` wraps an x0- or v-network as
an ε-predictor ``(x_t, t) → ε̂`` (:class:`EpsPredictor`) that every sampler runs unchanged.

Conditioning (the formulas are exact; what float32 rounding costs is not the same everywhere):
going *to* ε from v is a weighted sum with weights ≤ 1, well conditioned at every t. Going to ε
from x0 divides by √(1 − ᾱ_t), which is small at t = 0 (0.016 for the cosine schedule with
T = 200), so an error in x̂0 is multiplied by ~60 in ε̂ there. Going *from* ε (or from x_t and
ε) to x0 or v divides by √ᾱ_t, tiny at t = T−1 (2.5e-4 for that schedule): rounding in ε̂
(~6e-8 · |ε̂| in float32) then becomes ~2.4e-4 in x̂0 or v̂.
"""

from __future__ import annotations

import torch
from torch import nn

from .schedule import NoiseSchedule
from .training.config import PREDICTIONS, Prediction


def _as_timesteps(schedule: NoiseSchedule, t: int | torch.Tensor, batch: int,
                  device: torch.device) -> torch.Tensor:
    """Validate t and return it as an int64 tensor ``[B]`` on ``device``."""
    if isinstance(t, bool):
        raise ValueError("t must be an integer or an int64 tensor, not a bool")
    if isinstance(t, int):
        t = torch.full((batch,), t, dtype=torch.long, device=device)
    if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"t must be an integer or an integer tensor of shape [B]; got {t!r}")
    if t.ndim == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"t must have shape [B] = [{batch}]; got {list(t.shape)}")
    if batch and (t.min() < 0 or t.max() >= schedule.T):
        raise ValueError(
            f"t must be in [0, {schedule.T - 1}] (index convention t = 0..T−1); "
            f"got values in [{int(t.min())}, {int(t.max())}]"
        )
    return t.to(device=device, dtype=torch.long)


def _check_x(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of shape [B, ...]; got {type(x)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")


def extract(buffer: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``buffer[t]`` reshaped to ``[B, 1, …, 1]`` to broadcast against ``like`` ``[B, ...]``.

    Follows ``like``'s device and dtype.
    """
    out = buffer.to(like.device)[t.to(like.device)].to(like.dtype)
    return out.reshape(t.shape[0], *([1] * (like.ndim - 1)))


def _coef(schedule: NoiseSchedule, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Schedule buffer ``name`` at t, broadcast to ``like``; float64 inputs get float64 values."""
    buffer = schedule.float64[name] if like.dtype == torch.float64 else getattr(schedule, name)
    return extract(buffer, t, like)


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: int | torch.Tensor,
             noise: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x0) in closed form: x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε  (DDPM eq. 4).

    Args:
        x0: ``[B, ...]`` clean data.
        t: int or int64 ``[B]``, each in 0..T−1.
        noise: ε, same shape as x0; drawn from ``generator`` when None.
    Returns:
        x_t, same shape as x0.
    """
    _check_x("x0", x0)
    t = _as_timesteps(schedule, t, x0.shape[0], x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise must have x0's shape {list(x0.shape)}; got {list(noise.shape)}")
    return (_coef(schedule, "sqrt_alphas_cumprod", t, x0) * x0
            + _coef(schedule, "sqrt_one_minus_alphas_cumprod", t, x0) * noise)


def q_sample_iterative(schedule: NoiseSchedule, x0: torch.Tensor, t: int | torch.Tensor, *,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample x_t by running the chain one step at a time (DDPM eq. 2):

    x_s = √(1 − β_s) · x_{s−1} + √β_s · ε_s for s = 0, 1, …, t, with x_{−1} = x0 and fresh
    noise ε_s at every step. Same distribution as :func:`q_sample`, different noise path.

    Args:
        x0: ``[B, ...]``; t: int or int64 ``[B]`` in 0..T−1 (each sample stops at its own t).
    """
    _check_x("x0", x0)
    t = _as_timesteps(schedule, t, x0.shape[0], x0.device)
    x = x0.clone()
    for s in range(int(t.max()) + 1 if len(t) else 0):
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        stepped = schedule.alphas[s].sqrt().item() * x + schedule.betas[s].sqrt().item() * eps
        active = (t >= s).reshape(-1, *([1] * (x.ndim - 1)))
        x = torch.where(active, stepped, x)
    return x


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor,
                t: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_{t−1} | x_t, x0)  (DDPM eqs. 6–7).

    μ̃_t = β_t √ᾱ_{t−1} / (1 − ᾱ_t) · x0 + (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t) · x_t,
    β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t  (zero at t = 0, where x_{−1} = x0 exactly).

    Returns:
        mean ``[B, ...]`` and variance ``[B, 1, …, 1]``.
    """
    _check_x("x0", x0)
    _check_x("x_t", x_t)
    if x0.shape != x_t.shape:
        raise ValueError(f"x0 and x_t must have one shape; got {list(x0.shape)}, {list(x_t.shape)}")
    t = _as_timesteps(schedule, t, x0.shape[0], x0.device)
    mean = (_coef(schedule, "posterior_mean_coef1", t, x_t) * x0
            + _coef(schedule, "posterior_mean_coef2", t, x_t) * x_t)
    return mean, _coef(schedule, "posterior_variance", t, x_t)


def pred_x0_from_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor,
                     eps: torch.Tensor) -> torch.Tensor:
    """x̂0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t  (eq. 4 solved for x0). Shapes ``[B, ...]``."""
    _check_x("x_t", x_t)
    t = _as_timesteps(schedule, t, x_t.shape[0], x_t.device)
    return (_coef(schedule, "sqrt_recip_alphas_cumprod", t, x_t) * x_t
            - _coef(schedule, "sqrt_recipm1_alphas_cumprod", t, x_t) * eps)


def pred_eps_from_x0(schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor,
                     x0: torch.Tensor) -> torch.Tensor:
    """ε̂ = (x_t − √ᾱ_t x0) / √(1 − ᾱ_t)  (eq. 4 solved for ε). Shapes ``[B, ...]``."""
    _check_x("x_t", x_t)
    t = _as_timesteps(schedule, t, x_t.shape[0], x_t.device)
    return ((x_t - _coef(schedule, "sqrt_alphas_cumprod", t, x_t) * x0)
            / _coef(schedule, "sqrt_one_minus_alphas_cumprod", t, x_t))


# ---------------------------------------------------------------------------------------------
# v (Salimans & Ho 2022) and the ε / x0 / v conversions
# ---------------------------------------------------------------------------------------------


def _check_pair(x_t: torch.Tensor, name: str, other: torch.Tensor, *,
                first: str = "x_t") -> None:
    """Shapes and dtypes only: NaNs pass through, as they would from an ε-network."""
    for n, x in ((first, x_t), (name, other)):
        if not isinstance(x, torch.Tensor) or x.ndim < 2 or not x.is_floating_point():
            raise ValueError(f"{n} must be a float tensor of shape [B, ...]; got {type(x)}")
    if other.shape != x_t.shape:
        raise ValueError(f"{name} must have {first}'s shape {list(x_t.shape)}; "
                         f"got {list(other.shape)}")


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be eps, x0 or v; got {prediction!r}")


def v_target(schedule: NoiseSchedule, x0: torch.Tensor, t: int | torch.Tensor,
             eps: torch.Tensor) -> torch.Tensor:
    """v = √ᾱ_t ε − √(1 − ᾱ_t) x0 (Salimans & Ho 2022, §4): the v of x_t = q_sample(x0, t, ε).

    Shapes ``[B, ...]``; t int or int64 ``[B]`` in 0..T−1.
    """
    _check_pair(x0, "eps", eps, first="x0")
    t = _as_timesteps(schedule, t, x0.shape[0], x0.device)
    return (_coef(schedule, "sqrt_alphas_cumprod", t, x0) * eps
            - _coef(schedule, "sqrt_one_minus_alphas_cumprod", t, x0) * x0)


def pred_x0_from_v(schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor,
                   v: torch.Tensor) -> torch.Tensor:
    """x̂0 = √ᾱ_t x_t − √(1 − ᾱ_t) v̂ (Salimans & Ho 2022, appendix D). Shapes ``[B, ...]``."""
    _check_pair(x_t, "v", v)
    t = _as_timesteps(schedule, t, x_t.shape[0], x_t.device)
    return (_coef(schedule, "sqrt_alphas_cumprod", t, x_t) * x_t
            - _coef(schedule, "sqrt_one_minus_alphas_cumprod", t, x_t) * v)


def pred_eps_from_v(schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor,
                    v: torch.Tensor) -> torch.Tensor:
    """ε̂ = √(1 − ᾱ_t) x_t + √ᾱ_t v̂ (Salimans & Ho 2022, appendix D). Shapes ``[B, ...]``.

    Well conditioned at every t (both weights ≤ 1).
    """
    _check_pair(x_t, "v", v)
    t = _as_timesteps(schedule, t, x_t.shape[0], x_t.device)
    return (_coef(schedule, "sqrt_one_minus_alphas_cumprod", t, x_t) * x_t
            + _coef(schedule, "sqrt_alphas_cumprod", t, x_t) * v)


def pred_v_from_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor,
                    eps: torch.Tensor) -> torch.Tensor:
    """v̂ = (ε̂ − √(1 − ᾱ_t) x_t) / √ᾱ_t (:func:`pred_eps_from_v` solved for v).

    Divides by √ᾱ_t: an error in ε̂ grows by 1/√ᾱ_t, large at t = T−1.
    Shapes ``[B, ...]``.
    """
    _check_pair(x_t, "eps", eps)
    t = _as_timesteps(schedule, t, x_t.shape[0], x_t.device)
    return (_coef(schedule, "sqrt_recip_alphas_cumprod", t, x_t) * eps
            - _coef(schedule, "sqrt_recipm1_alphas_cumprod", t, x_t) * x_t)


def prediction_target(schedule: NoiseSchedule, x0: torch.Tensor, t: int | torch.Tensor,
                      eps: torch.Tensor, prediction: Prediction) -> torch.Tensor:
    """What a ``prediction`` network regresses on for x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε (eq. 4).

    ``"eps"`` → ε (DDPM eq. 14), ``"x0"`` → x0, ``"v"`` → √ᾱ_t ε − √(1 − ᾱ_t) x0. x_t itself is
    not needed: (x0, ε) fix it. v is a weighted sum with weights ≤ 1 (well conditioned).
    Shapes ``[B, ...]``; t int or int64 ``[B]`` in 0..T−1.
    """
    _check_prediction(prediction)
    _check_pair(x0, "eps", eps, first="x0")
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    return v_target(schedule, x0, t, eps)


def eps_from_prediction(schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor,
                        output: torch.Tensor, prediction: Prediction) -> torch.Tensor:
    """ε̂ from a ``prediction`` network's ``output`` at (x_t, t): what samplers call.

    ``"eps"`` → ``output`` itself; ``"x0"`` → (x_t − √ᾱ_t x̂0) / √(1 − ᾱ_t) (eq. 4 solved for
    ε; divides by √(1 − ᾱ_t), small at t = 0: an x̂0 error grows ~1/√(1 − ᾱ_0) there);
    ``"v"`` → √(1 − ᾱ_t) x_t + √ᾱ_t v̂ (well conditioned). Inverse:
    :func:`prediction_from_eps`. Shapes ``[B, ...]``; t int or int64 ``[B]`` in 0..T−1.
    """
    _check_prediction(prediction)
    _check_pair(x_t, "output", output)
    if prediction == "eps":
        return output
    if prediction == "x0":
        return pred_eps_from_x0(schedule, x_t, t, output)
    return pred_eps_from_v(schedule, x_t, t, output)


def prediction_from_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor,
                        eps: torch.Tensor, prediction: Prediction) -> torch.Tensor:
    """The inverse of :func:`eps_from_prediction`: the ``prediction`` that gives ε at (x_t, t).

    ``"eps"`` → ``eps``; ``"x0"`` → :func:`pred_x0_from_eps`; ``"v"`` → :func:`pred_v_from_eps`.
    Both divide by √ᾱ_t (ill conditioned near t = T−1 in float32; exact in float64).
    """
    _check_prediction(prediction)
    _check_pair(x_t, "eps", eps)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return pred_x0_from_eps(schedule, x_t, t, eps)
    return pred_v_from_eps(schedule, x_t, t, eps)


class EpsPredictor(nn.Module):
    """An x0- or v-predicting ``network`` seen as an ε-predictor: ``(x_t [B, ...], t [B]) → ε̂``.

    ``forward`` is ``eps_from_prediction(schedule, x_t, t, network(x_t, t), prediction)``, so any
    sampler, bound or view written for ε-predictors runs unchanged. Parameters, ``.to()``,
    ``.eval()`` and ``requires_grad_`` reach ``network``; the schedule's buffers follow x_t's
    device per call. Build it with :func:`as_eps_predictor` (which returns an ε-network itself).
    Save ``network``, not this wrapper (``save_checkpoint`` unwraps it and records
    ``prediction``).
    """

    def __init__(self, network: nn.Module, schedule: NoiseSchedule,
                 prediction: Prediction) -> None:
        super().__init__()
        _check_prediction(prediction)
        if isinstance(network, EpsPredictor):
            raise ValueError("network is already an EpsPredictor")
        self.network = network
        self.schedule = schedule
        self.prediction = prediction
        self.training = network.training  # the wrapper's mode flag follows the network's

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return eps_from_prediction(self.schedule, x_t, t, self.network(x_t, t), self.prediction)

    def extra_repr(self) -> str:
        return f"prediction={self.prediction!r}, schedule={self.schedule!r}"


def as_eps_predictor(network: nn.Module, schedule: NoiseSchedule,
                     prediction: Prediction) -> nn.Module:
    """``network`` as an ε-predictor: itself for ``"eps"``, else an :class:`EpsPredictor`."""
    _check_prediction(prediction)
    return network if prediction == "eps" else EpsPredictor(network, schedule, prediction)


def unwrap_network(model: nn.Module) -> tuple[nn.Module, Prediction]:
    """``(network, prediction)`` of an :func:`as_eps_predictor` result (``(model, "eps")``)."""
    if isinstance(model, EpsPredictor):
        return model.network, model.prediction
    return model, "eps"
