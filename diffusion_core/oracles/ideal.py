"""The ideal denoiser of a finite training set: the ε a network would learn if it memorised.

Index convention: t ∈ {0, …, T−1}; ᾱ_t = ∏_{s≤t}(1 − β_s); ᾱ_{−1} = 1 (the clean data).

For training points x_1..x_N (the empirical data distribution) and x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε
(DDPM eq. 4), the ε minimising the training loss ‖ε − ε_θ(x_t, t)‖² (eq. 14) is E[ε | x_t]. By
Bayes' rule x0 given x_t is one of the training points, with posterior weights w_i:

=====================  =========================================================================
code name              math
=====================  =========================================================================
``data`` ``[N, ...]``  x_1 … x_N, the training set (flattened to ``[N, D]`` inside)
``labels`` ``[N]``     c_i, optional class of each point; ``y`` ``[B]`` picks a class per example
``weights``            w_i(x_t) = softmax_i(−‖x_t − √ᾱ_t x_i‖² / (2(1 − ᾱ_t)))   (q(x_t|x_i), eq. 4)
``pred_x0``            x̂0 = E[x0 | x_t] = Σ_i w_i x_i, a weighted average of training points
``__call__``           ε* = E[ε | x_t] = (x_t − √ᾱ_t x̂0) / √(1 − ᾱ_t)            (eq. 4 for ε)
=====================  =========================================================================

With ``y`` the softmax runs over the points of class y only: the ideal denoiser of p(x0 | y).

How it is computed (:func:`posterior_mean_x0`, the kernel): ‖x_t − √ᾱ x_i‖² = ‖x_t‖² − 2√ᾱ
x_t·x_i + ᾱ‖x_i‖², and ‖x_t‖² is the same for every i, so it drops out of the softmax: all the
log-weights of a block of examples are one matmul ``[x_t·√ᾱ/(1−ᾱ), −ᾱ/(2(1−ᾱ))] @ [x_i, ‖x_i‖²]ᵀ``
(the expansion of :func:`diffusion_core.training.stf_target`, which could call this kernel).
The softmax is taken in log space with a running maximum (flash-attention's online softmax), so
an x_t far from every point gives the weight 1 to one point instead of 0/0 = NaN; log-weights
more than 80 (float32) or 700 (float64) below the maximum are raised to that floor, which keeps
exp out of the slow subnormal range and changes x̂0 by < N·e^−80 relative. The data are
centred on their mean first (x_t − √ᾱ x_i does not change when both move), which keeps the
float32 matmul's rounding error small.

The limit far away: for x_t = λu with λ → ∞ the log-weights are λ√ᾱ u·x_i/(1 − ᾱ) + O(1), so
all the weight goes to the point furthest along u; for any x_t it goes to the point nearest
x_t/√ᾱ_t as soon as that point is nearer than the others by more than a few √(1 − ᾱ_t)/√ᾱ_t.
At small t every x_t is "far" in this sense: x̂0 snaps to the nearest training point, which is
why sampling with the ideal denoiser reproduces the training set — when the points are farther
apart than the chain's last blur √((1 − ᾱ_0)/ᾱ_0). Closer points are averaged instead: 2,000
moons points (spacing ≈ 0.012) under the 2D preset's schedule (blur ≈ 0.016) put only 2 % of
ideal samples on a training point; 200 points put 30 % there (tests/core/workflows).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..forward import _as_timesteps
from ..schedule import NoiseSchedule

__all__ = ["DEFAULT_CHUNK", "IdealDenoiser", "TopWeights", "posterior_mean_x0"]

DEFAULT_CHUNK = 1 << 18
"""Default bound on the log-weights held at once: 262,144 numbers (1 MiB in float32).

A block that fits in a CPU's L2 cache is the fastest: one call on 1,000 samples over 4,000
2D points took 5–9 ms (fastest of 15) with 2¹⁷–2¹⁸ and 12–32 ms with 2²⁰–2²² (one thread, on a
shared 2-core machine). On a GPU a larger chunk (2²²–2²⁴) launches fewer kernels."""


@dataclass(frozen=True)
class TopWeights:
    """The ``k`` largest posterior weights of each example, largest first.

    ``indices [B, k]`` int64 rows of the training set, ``weights [B, k]`` their w_i (the sum of
    all N weights is 1, so ``weights.sum(1)`` is the share of x̂0 these k points explain).
    """

    indices: torch.Tensor
    weights: torch.Tensor


# ---------------------------------------------------------------------------------------------
# The kernel
# ---------------------------------------------------------------------------------------------


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else (float32, float16, bfloat16) runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _blocks(n_rows: int, n_cols: int, chunk: int) -> tuple[int, int]:
    """Rows and columns per block so that one block of log-weights holds ≤ ``chunk`` numbers."""
    cols = min(n_cols, chunk)
    return max(1, chunk // cols), cols


def _log_weights(coef: torch.Tensor, ref_aug: torch.Tensor) -> torch.Tensor:
    """``coef [b, D+1] @ ref_aug[n, D+1]ᵀ`` = −‖x_t − √ᾱ x_i‖²/(2(1−ᾱ)) + (a constant per row)."""
    return coef @ ref_aug.T


def _coefficients(x: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """``[x·√ᾱ/(1−ᾱ), −ᾱ/(2(1−ᾱ))]`` ``[B, D+1]``; the scalars are formed in float64."""
    ab = alpha_bar.to(device=x.device, dtype=torch.float64)[:, None]
    var = 1.0 - ab
    return torch.cat((x * (ab.sqrt() / var).to(x.dtype), (-ab / (2.0 * var)).to(x.dtype)), dim=1)


def _augment(ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``([r, ‖r‖²], [r, 1])``, both ``[R, D+1]``: the log-weight and the mean matmul operands."""
    one = torch.ones(len(ref), 1, dtype=ref.dtype, device=ref.device)
    return torch.cat((ref, ref.pow(2).sum(1, keepdim=True)), 1), torch.cat((ref, one), 1)


# exp(−80) ≈ 1.8e−35 is a normal float32 (the smallest is 1.2e−38), exp(−700) a normal float64.
_EXP_FLOOR = {torch.float32: -80.0, torch.float64: -700.0}


def _shifted_exp(logits: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """exp(l − m) in place, for row maxima ``m [b]``, with l − m floored at −80 (float32) or −700
    (float64).

    Without the floor, weights below ~1e−38 come out subnormal, and subnormals make exp and the
    next matmul 10–25× slower on CPUs (a 21×21 grid at t = 10 took 23 ms instead of 4). A
    floored weight is at most e^−80 of the largest one, so x̂0 moves by < N · e^−80 · max‖x_i‖.
    """
    return logits.sub_(m[:, None]).clamp_(min=_EXP_FLOOR[logits.dtype]).exp_()


def _mean_x0(coef: torch.Tensor, ref_aug: torch.Tensor, ref_one: torch.Tensor,
             chunk: int) -> torch.Tensor:
    """Σ_i w_i r_i ``[B, D]`` for rows ``coef [B, D+1]``, in blocks of ≤ ``chunk`` log-weights.

    Per block, p = exp(l − max l) and one matmul p @ [r, 1] gives the unnormalised sum and its
    normaliser (the last column). Over column blocks it is an online softmax: the running sums
    are rescaled by exp(m_old − m_new) when the running maximum m grows.
    """
    b, n = coef.shape[0], ref_aug.shape[0]
    rows, cols = _blocks(b, n, chunk)
    out = torch.empty(b, ref_one.shape[1] - 1, dtype=coef.dtype, device=coef.device)
    for r0 in range(0, b, rows):
        c = coef[r0:r0 + rows]
        m = acc = None
        for c0 in range(0, n, cols):
            logits = _log_weights(c, ref_aug[c0:c0 + cols])  # [b, n_c]
            m_new = logits.amax(1) if m is None else torch.maximum(m, logits.amax(1))
            p = _shifted_exp(logits, m_new)
            part = (ref_one[c0:c0 + cols].T @ p.T).T  # [b, D+1] = p @ [r, 1]; ~8× faster at D=2
            acc = part if acc is None else acc * (m - m_new).exp()[:, None] + part
            m = m_new
        out[r0:r0 + rows] = acc[:, :-1] / acc[:, -1:]
    return out


def posterior_mean_x0(x_t: torch.Tensor, alpha_bar: torch.Tensor, ref: torch.Tensor, *,
                      chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """E[x0 | x_t] when x0 is uniform over the reference points ``ref`` (the kernel).

    ``x̂0 = Σ_j w_j r_j`` with ``w_j = softmax_j(−‖x_t − √ᾱ r_j‖² / (2(1 − ᾱ)))`` (DDPM eq. 4),
    computed with the expansion (one matmul per block) and an online softmax over blocks of
    ≤ ``chunk`` log-weights, so memory stays O(chunk + B·D + R·D) for any B and R.
    ``stf_target(x_t, ᾱ, ref)`` is ``(x_t − √ᾱ · posterior_mean_x0(x_t, ᾱ, ref)) / √(1 − ᾱ)``.

    Shapes: ``x_t [B, ...]``, ``alpha_bar [B]`` (each < 1), ``ref [R, ...]`` with x_t's
    trailing shape → ``[B, ...]``. Computed in x_t's dtype (float32 for half types), on its
    device. For float32 accuracy, centre ``x_t`` and ``ref`` first (see the module docstring).
    """
    if x_t.ndim < 2 or ref.shape[1:] != x_t.shape[1:] or alpha_bar.shape != x_t.shape[:1]:
        raise ValueError(f"posterior_mean_x0: x_t {list(x_t.shape)}, alpha_bar "
                         f"{list(alpha_bar.shape)} and ref {list(ref.shape)} do not match")
    dtype = _compute_dtype(x_t.dtype)
    x = x_t.flatten(1).to(dtype)
    ref_aug, ref_one = _augment(ref.flatten(1).to(device=x.device, dtype=dtype))
    return _mean_x0(_coefficients(x, alpha_bar), ref_aug, ref_one, chunk).view_as(x_t)


# ---------------------------------------------------------------------------------------------
# The denoiser
# ---------------------------------------------------------------------------------------------


class IdealDenoiser:
    """The exact ε-predictor of the empirical distribution of ``data``; called like a network.

    Args:
        data: ``[N, ...]`` float training set (2D points ``[N, 2]``, images ``[N, C, H, W]``),
            finite, N ≥ 1.
        schedule: the noise schedule (its float64 ᾱ are used).
        labels: optional ``[N]`` integer class of each point, for the conditional form.
        chunk: the most log-weights held at once (≥ 1). Peak extra memory of a call is about
            ``2 · chunk`` numbers of the compute dtype plus ``O(B·D)``, whatever B and N are
            (``weights`` with ``top_k=None`` also returns its ``[B, N]`` answer).

    Calls (x_t ``[B, *data.shape[1:]]``, t int or int64 ``[B]`` in 0..T−1, may differ per row;
    y ``[B]`` int64 or None for all points):

    * ``ideal(x_t, t, y=None) → ε [B, ...]``, so every sampler runs with it unchanged;
    * ``ideal.pred_x0(x_t, t, y=None) → x̂0 [B, ...]``;
    * ``ideal.weights(x_t, t, top_k=None, y=None) → [B, N]`` or :class:`TopWeights`.

    Answers are in x_t's dtype on x_t's device; float64 inputs are computed in float64, others
    in float32. The data are held on the CPU (float64 and float32 copies, centred on their
    mean) and moved to x_t's device on each call; ``ideal.to(device)`` returns a copy whose
    buffers live on ``device``, which saves the move. No method changes the stored buffers.
    """

    def __init__(self, data: torch.Tensor, schedule: NoiseSchedule, *,
                 labels: torch.Tensor | None = None, chunk: int = DEFAULT_CHUNK) -> None:
        if not isinstance(data, torch.Tensor) or not data.is_floating_point() or data.ndim < 2:
            raise ValueError("data must be a float tensor of shape [N, ...] (2D points [N, 2] or "
                             f"images [N, C, H, W]); got {_describe(data)}")
        if data.shape[0] < 1 or data[0].numel() < 1:
            raise ValueError(f"data is empty: shape {list(data.shape)}; the ideal denoiser needs "
                             "at least one training point")
        if not torch.isfinite(data).all():
            raise ValueError("data contains NaN or inf")
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"schedule must be a NoiseSchedule; got {type(schedule).__name__}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
        n = data.shape[0]
        flat = data.detach().to("cpu", torch.float64).reshape(n, -1)
        self.schedule = schedule
        self.chunk = chunk
        self.sample_shape = tuple(data.shape[1:])
        self.data = data.detach().to("cpu", torch.float32).clone()
        self.labels = None
        self._classes: dict[int, torch.Tensor] = {}
        if labels is not None:
            if (not isinstance(labels, torch.Tensor) or labels.shape != (n,)
                    or labels.is_floating_point() or labels.dtype == torch.bool):
                raise ValueError(f"labels must be an integer tensor of shape [N] = [{n}]; got "
                                 f"{_describe(labels)}")
            self.labels = labels.detach().to("cpu", torch.long).clone()
            self._classes = {int(c): torch.nonzero(self.labels == c).flatten()
                             for c in torch.unique(self.labels)}
        # Precomputed once: ᾱ (float64), the mean, and the centred points with their squared
        # norms, as [r, ‖r‖²] and [r, 1] (the two matmul operands), in float64 and float32.
        self._alphas_cumprod = schedule.float64["alphas_cumprod"]
        mean = flat.mean(0)
        ref_aug, ref_one = _augment(flat - mean)
        self._buffers = {torch.float64: (mean, ref_aug, ref_one),
                         torch.float32: (mean.float(), ref_aug.float(), ref_one.float())}

    def __repr__(self) -> str:
        cond = f", {len(self._classes)} classes" if self.labels is not None else ""
        return f"IdealDenoiser(N={len(self.data)}, shape={list(self.sample_shape)}{cond})"

    def __len__(self) -> int:
        return len(self.data)

    def to(self, device: torch.device | str) -> IdealDenoiser:
        """A copy whose buffers live on ``device`` (``data`` and ``labels`` stay on the CPU)."""
        new = object.__new__(IdealDenoiser)
        new.__dict__.update(self.__dict__)
        new._alphas_cumprod = self._alphas_cumprod.to(device)
        new._buffers = {k: tuple(b.to(device) for b in v) for k, v in self._buffers.items()}
        return new

    # ---- public predictions --------------------------------------------------------------

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | int,
                 y: torch.Tensor | None = None) -> torch.Tensor:
        """ε* = E[ε | x_t] = (x_t − √ᾱ_t x̂0)/√(1 − ᾱ_t)  ``[B, ...]`` (eq. 4 for ε)."""
        xc, ab, y, (_, ref_aug, ref_one) = self._prepare(x_t, t, y)
        x0c = self._centred_x0(xc, ab, y, ref_aug, ref_one)
        ab = ab[:, None]
        eps = (xc - ab.sqrt().to(xc.dtype) * x0c) / (1.0 - ab).sqrt().to(xc.dtype)
        return eps.view(x_t.shape).to(x_t.dtype)

    def pred_x0(self, x_t: torch.Tensor, t: torch.Tensor | int,
                y: torch.Tensor | None = None) -> torch.Tensor:
        """x̂0 = E[x0 | x_t] = Σ_i w_i x_i  ``[B, ...]``: a weighted average of training points."""
        xc, ab, y, (mean, ref_aug, ref_one) = self._prepare(x_t, t, y)
        x0 = mean + self._centred_x0(xc, ab, y, ref_aug, ref_one)
        return x0.view(x_t.shape).to(x_t.dtype)

    def weights(self, x_t: torch.Tensor, t: torch.Tensor | int, top_k: int | None = None,
                y: torch.Tensor | None = None) -> torch.Tensor | TopWeights:
        """The posterior weights w_i(x_t) over the training points (each row sums to 1).

        ``top_k=None``: all of them, ``[B, N]`` (0 outside the class y). ``top_k=k``: the k
        largest as :class:`TopWeights` (indices ``[B, k]``, weights ``[B, k]``, largest first;
        k may not exceed the number of points the softmax runs over), computed in blocks of
        ``chunk`` log-weights without forming ``[B, N]``.
        """
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                                  or top_k < 1):
            raise ValueError(f"top_k must be None or a positive integer; got {top_k!r}")
        x, ab, y, (_, ref_aug, _) = self._prepare(x_t, t, y)
        coef = _coefficients(x, ab)
        n, b = len(self.data), x.shape[0]
        groups = self._groups(y, b, x.device)
        if top_k is not None:
            smallest = min(n if cols is None else len(cols) for _, cols in groups)
            if top_k > smallest:
                raise ValueError(f"top_k = {top_k} is more than the {smallest} training points "
                                 "the posterior runs over")
            idx = torch.empty(b, top_k, dtype=torch.long, device=x.device)
            w = torch.empty(b, top_k, dtype=x.dtype, device=x.device)
            for rows, cols in groups:
                i, wi = self._top_k(coef[rows], ref_aug if cols is None else ref_aug[cols], top_k)
                idx[rows] = i if cols is None else cols[i]
                w[rows] = wi
            return TopWeights(indices=idx, weights=w.to(x_t.dtype))
        out = torch.zeros(b, n, dtype=x.dtype, device=x.device)
        for rows, cols in groups:
            sub = ref_aug if cols is None else ref_aug[cols]
            block = _blocks(len(rows), len(sub), self.chunk)[0]
            for r0 in range(0, len(rows), block):
                r = rows[r0:r0 + block]
                logits = _log_weights(coef[r], sub)
                w = _shifted_exp(logits, logits.amax(1))
                w /= w.sum(1, keepdim=True)
                if cols is None:
                    out[r] = w
                else:
                    out[r[:, None], cols[None, :]] = w
        return out.to(x_t.dtype)

    # ---- internals -----------------------------------------------------------------------

    def _check(self, x_t: torch.Tensor, t: torch.Tensor | int, y: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Validate; return x_t flattened ``[B, D]`` in the compute dtype, t and y ``[B]``."""
        if not isinstance(x_t, torch.Tensor) or not x_t.is_floating_point():
            raise ValueError(f"x_t must be a float tensor [B, {_dims(self.sample_shape)}]; got "
                             f"{_describe(x_t)}")
        if x_t.ndim == 0 or tuple(x_t.shape[1:]) != self.sample_shape:
            raise ValueError(f"x_t must have shape [B, {_dims(self.sample_shape)}] like the "
                             f"training data; got {list(x_t.shape)}")
        if not torch.isfinite(x_t).all():
            raise ValueError("x_t contains NaN or inf")
        b = x_t.shape[0]
        t = _as_timesteps(self.schedule, t, b, x_t.device)
        if y is not None:
            if self.labels is None:
                raise ValueError("y was given but this IdealDenoiser was built without labels")
            if (not isinstance(y, torch.Tensor) or y.shape != (b,) or y.is_floating_point()
                    or y.dtype == torch.bool):
                raise ValueError(f"y must be an integer tensor of shape [B] = [{b}]; got "
                                 f"{_describe(y)}")
            unknown = sorted(set(torch.unique(y).tolist()) - set(self._classes))
            if unknown:
                raise ValueError(f"y has classes with no training points: {unknown}; classes "
                                 f"present: {sorted(self._classes)}")
            y = y.to(x_t.device)
        return x_t.reshape(b, -1).to(_compute_dtype(x_t.dtype)), t, y

    def _prepare(self, x_t: torch.Tensor, t: torch.Tensor | int, y: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, tuple]:
        """Validate; return the centred x_t − √ᾱ μ ``[B, D]`` (compute dtype), ᾱ_t ``[B]``
        (float64), y, and the buffers (μ, [r, ‖r‖²], [r, 1]) in the compute dtype on x_t's
        device (moved only when they live elsewhere: see :meth:`to`)."""
        x, t, y = self._check(x_t, t, y)
        buffers = tuple(b.to(x.device) for b in self._buffers[x.dtype])
        ab = self._alphas_cumprod.to(x.device)[t]
        return x - ab.sqrt().to(x.dtype)[:, None] * buffers[0], ab, y, buffers

    def _groups(self, y: torch.Tensor | None, b: int, device: torch.device
                ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """``[(rows, cols)]``: the examples whose softmax runs over the training points ``cols``
        (None: all of them)."""
        if y is None:
            return [(torch.arange(b, device=device), None)]
        return [(torch.nonzero(y == c).flatten(), self._classes[c].to(device))
                for c in torch.unique(y).tolist()]

    def _centred_x0(self, xc: torch.Tensor, ab: torch.Tensor, y: torch.Tensor | None,
                    ref_aug: torch.Tensor, ref_one: torch.Tensor) -> torch.Tensor:
        """Σ_i w_i (x_i − μ) ``[B, D]`` for centred x_t − √ᾱ μ, per class when y is given."""
        coef = _coefficients(xc, ab)
        if y is None:
            return _mean_x0(coef, ref_aug, ref_one, self.chunk)
        out = torch.empty_like(xc)
        for rows, cols in self._groups(y, len(xc), xc.device):
            out[rows] = _mean_x0(coef[rows], ref_aug[cols], ref_one[cols], self.chunk)
        return out

    def _top_k(self, coef: torch.Tensor, ref_aug: torch.Tensor, k: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices into ``ref_aug`` and weights of the k largest w, by blocks (online logsumexp)."""
        b, n = coef.shape[0], ref_aug.shape[0]
        rows, cols = _blocks(b, n, self.chunk)
        idx = torch.empty(b, k, dtype=torch.long, device=coef.device)
        w = torch.empty(b, k, dtype=coef.dtype, device=coef.device)
        for r0 in range(0, b, rows):
            c = coef[r0:r0 + rows]
            m = s = best = best_i = None
            for c0 in range(0, n, cols):
                logits = _log_weights(c, ref_aug[c0:c0 + cols])
                i = torch.arange(c0, c0 + logits.shape[1], device=coef.device).expand_as(logits)
                cand = logits if best is None else torch.cat((best, logits), 1)
                cand_i = i if best_i is None else torch.cat((best_i, i), 1)
                top = cand.topk(min(k, cand.shape[1]), dim=1)
                best, best_i = top.values, cand_i.gather(1, top.indices)
                m_new = logits.amax(1) if m is None else torch.maximum(m, logits.amax(1))
                part = _shifted_exp(logits, m_new).sum(1)  # the top-k above are copies
                s = part if s is None else s * (m - m_new).exp() + part
                m = m_new
            idx[r0:r0 + rows] = best_i
            w[r0:r0 + rows] = (best - (m + s.log())[:, None]).exp()
        return idx, w


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in shape)


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} tensor of shape {list(x.shape)}"
    return type(x).__name__
