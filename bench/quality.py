"""Sample quality of the shipped image models, calibrated on reference sets, and vs. steps.

    python -m bench.quality                      # every model: calibration, default, sweep
    python -m bench.quality --models digits --no-sweep

For each model it writes ``bench/results/quality_<model>.json`` and, when the sweep runs,
``bench/results/quality_vs_steps.png`` (one row per model; the image tab shows it).

Digits (evaluation.digit_quality; classifier fitted only on the held-out split):

* calibration references, all at the model's resolution and the same N as the samples:
  ``real`` (the U-Net's own train-split digits: the classifier never saw them, and a perfect
  generator would draw from exactly this distribution), ``blur_0.5`` / ``blur_1.0`` (Gaussian
  blur, σ in 8×8 pixels), ``noise_0.2`` (+ N(0, 0.2²) in [−1, 1] units), ``single_class`` (only
  3s, repeated), ``pure_noise`` (N(0, 1), clamped), and ``real_heldout`` (every held-out digit:
  the natural near-copy rate; its confidence is inflated because the classifier was fitted on
  it, and its Fréchet distance is to itself). The metric is trusted only if
  :data:`DIGIT_RANKINGS` all hold.
* the bar, at the app's default sampler: FD ≤ FD(blur_0.5), confidence ≥ 0.85, class entropy
  ≥ 2.20, near copies ≤ 5 %.

Gradients (evaluation.gradient_residual and evaluation.sliced_wasserstein): per-image RMS misfit of
the two-corner gradient model, plus SW1 to a fresh draw of real gradients (so that flat,
single-colour images, which fit the model perfectly, still score badly). References: real,
real + N(0, σ²) for σ = 0.05, 0.1, 0.2, flat colours, pure noise.

Shapes (evaluation.shape_quality; classifier fitted on a separate seeded draw, never the training
draw): confidence, class entropy, Fréchet distance in the classifier's features (hidden
activations + fitted colours) to a fresh real draw, the per-image two-colour misfit, and edge
softness (share of pixels neither background nor shape).
References (fresh real draw, seed 10 000 + seed): ``real``, ``blur_0.5`` / ``blur_1.0`` (σ in
pixels), ``noise_0.1`` / ``noise_0.2`` (+ N(0, σ²), clamped), ``single_class`` (squares only),
``pure_noise``; trusted only if :data:`SHAPE_RANKINGS` all hold.

Quality vs steps: DDIM (η = 0, the model's default spacing and x̂0 clipping) at 5, 10, 20, 25
(default), 50, 100 steps and full ancestral DDPM (1000 steps, β̃ variance), all from the same
x_T, at ``--n-sweep-*`` samples per row (smaller than the headline N for digits and gradients;
the references are then re-scored at that N, since the Fréchet distance is biased upward at
small N).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench.common import RESULTS, write_results
from diffusion_core.checkpoints import Checkpoint, load_checkpoint
from diffusion_core.data.digits import load_digits_images
from diffusion_core.data.synthetic import make_gradients, make_shapes
from diffusion_core.evaluation import (
    digit_quality,
    gradient_residual,
    shape_quality,
    sliced_wasserstein,
)
from diffusion_core.evaluation.guidance import gaussian_blur
from diffusion_core.sampling import sample_final

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "models"
MODELS = ("digits", "gradients", "shapes")
SWEEP_DDIM_STEPS = (5, 10, 20, 25, 50, 100)
DIGIT_BAR = {"confidence": 0.85, "class_entropy": 2.20, "near_copy_fraction": 0.05}
GRADIENT_FIT_THRESHOLD = 0.05  # RMS misfit below which an image counts as a clean gradient

# (metric, lower_is_better_reference, higher_reference): "a scores better than b".
DIGIT_RANKINGS: tuple[tuple[str, str, str], ...] = (
    ("frechet_distance", "real", "blur_0.5"),
    ("frechet_distance", "blur_0.5", "blur_1.0"),
    ("frechet_distance", "real", "noise_0.2"),
    ("frechet_distance", "real", "single_class"),
    ("frechet_distance", "blur_1.0", "pure_noise"),
    ("frechet_distance", "noise_0.2", "pure_noise"),
    ("confidence", "real", "blur_1.0"),
    ("confidence", "real", "noise_0.2"),
    ("confidence", "real", "pure_noise"),
    ("class_entropy", "real", "single_class"),
    ("class_entropy", "real", "pure_noise"),
    ("near_copy_fraction", "real_heldout", "real"),
    ("near_copy_fraction", "pure_noise", "real"),
    ("near_copy_fraction", "noise_0.2", "real"),
)
GRADIENT_RANKINGS: tuple[tuple[str, str, str], ...] = (
    ("residual_mean", "real", "noise_0.05"),
    ("residual_mean", "noise_0.05", "noise_0.1"),
    ("residual_mean", "noise_0.1", "noise_0.2"),
    ("residual_mean", "noise_0.2", "pure_noise"),
    ("sw1", "real", "noise_0.2"),
    ("sw1", "real", "flat"),
    ("sw1", "noise_0.2", "pure_noise"),
)
# The Fréchet distance does not separate real from blur_0.5 reliably (2.46 vs 2.49 at N = 256,
# reversed at N = 128: the classifier's features ignore edge sharpness); edge_softness does.
SHAPE_RANKINGS: tuple[tuple[str, str, str], ...] = (
    ("frechet_distance", "real", "blur_1.0"),
    ("frechet_distance", "blur_0.5", "blur_1.0"),
    ("frechet_distance", "blur_1.0", "pure_noise"),
    ("frechet_distance", "real", "noise_0.1"),
    ("frechet_distance", "noise_0.1", "noise_0.2"),
    ("frechet_distance", "noise_0.2", "pure_noise"),
    ("frechet_distance", "real", "single_class"),
    ("confidence", "real", "blur_1.0"),
    ("confidence", "real", "pure_noise"),
    ("class_entropy", "real", "single_class"),
    ("class_entropy", "real", "pure_noise"),
    ("residual_mean", "real", "noise_0.1"),
    ("residual_mean", "noise_0.1", "noise_0.2"),
    ("residual_mean", "noise_0.2", "pure_noise"),
    ("edge_softness", "real", "blur_0.5"),
    ("edge_softness", "blur_0.5", "blur_1.0"),
    ("edge_softness", "real", "noise_0.1"),
)
SHAPE_SINGLE_CLASS = 1  # squares
_HIGHER_IS_BETTER = {"confidence", "class_entropy", "fit_fraction"}


# ---------------------------------------------------------------------------------------------
# Reference sets


def digit_references(size: int, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The calibration sets for digit samples of side ``size`` (8 or 16), ``[n, 1, size, size]``.

    Blur σ is in 8×8 pixels (the metric's space), so it is doubled for 16×16 images.
    """
    g = torch.Generator().manual_seed(seed)
    train = load_digits_images(size, "train")
    pick = torch.randperm(len(train), generator=g)[:n]
    real = train.images[pick]
    px = size / 8
    threes = train.images[train.labels == 3]
    heldout = load_digits_images(size, "test").images
    return {
        "real": real,
        "blur_0.5": gaussian_blur(real, 0.5 * px),
        "blur_1.0": gaussian_blur(real, 1.0 * px),
        "noise_0.2": real + 0.2 * torch.randn(real.shape, generator=g),
        "single_class": threes[torch.arange(n) % len(threes)],
        "pure_noise": torch.randn(real.shape, generator=g).clamp(-1, 1),
        "real_heldout": heldout,
    }


def gradient_references(n: int, size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """Calibration sets for gradient samples ``[n, 3, size, size]`` (real: seed 10 000 + seed)."""
    g = torch.Generator().manual_seed(seed)
    real = make_gradients(n, size, seed=10_000 + seed)
    flat = (torch.rand(n, 3, 1, 1, generator=g) * 2 - 1).expand(n, 3, size, size).clone()
    refs = {"real": real}
    for s in (0.05, 0.1, 0.2):
        refs[f"noise_{s}"] = (real + s * torch.randn(real.shape, generator=g)).clamp(-1, 1)
    refs["flat"] = flat
    refs["pure_noise"] = torch.randn(real.shape, generator=g).clamp(-1, 1)
    return refs


def shape_references(n: int, size: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """Calibration sets for shape samples ``[n, 3, size, size]`` (real: seed 10 000 + seed; the
    training draw is seed 0, the metric's classifier and reference draws seeds 1–3)."""
    g = torch.Generator().manual_seed(seed)
    real, _ = make_shapes(n, size, seed=10_000 + seed)
    many, labels = make_shapes(8 * n, size, seed=10_001 + seed)
    single = many[labels == SHAPE_SINGLE_CLASS][:n]
    refs = {"real": real, "blur_0.5": gaussian_blur(real, 0.5),
            "blur_1.0": gaussian_blur(real, 1.0)}
    for s in (0.1, 0.2):
        refs[f"noise_{s}"] = (real + s * torch.randn(real.shape, generator=g)).clamp(-1, 1)
    refs["single_class"] = single
    refs["pure_noise"] = torch.randn(real.shape, generator=g).clamp(-1, 1)
    return refs


# ---------------------------------------------------------------------------------------------
# Scores


def _rounded(q: dict, keep: tuple[str, ...]) -> dict:
    return {k: (round(q[k], 4) if isinstance(q[k], float) else q[k]) for k in keep}


def digit_scores(x: torch.Tensor) -> dict:
    return _rounded(digit_quality(x), ("n_samples", "confidence", "class_entropy",
                                       "frechet_distance", "near_copy_fraction", "class_counts"))


def gradient_scores(x: torch.Tensor, real_fresh: torch.Tensor) -> dict:
    r = gradient_residual(x).double()
    return {
        "n_samples": int(x.shape[0]),
        "residual_mean": round(float(r.mean()), 4),
        "residual_median": round(float(r.median()), 4),
        "residual_p90": round(float(r.quantile(0.9)), 4),
        "fit_fraction": round(float((r < GRADIENT_FIT_THRESHOLD).double().mean()), 4),
        "sw1": round(sliced_wasserstein(x, real_fresh, n_projections=128, seed=0), 4),
    }


def shape_scores(x: torch.Tensor) -> dict:
    return _rounded(shape_quality(x), ("n_samples", "confidence", "class_entropy",
                                       "frechet_distance", "residual_mean", "residual_median",
                                       "fit_fraction", "edge_softness", "class_counts"))


def check_rankings(table: dict[str, dict], rankings) -> list[dict]:
    """Each ranking ``(metric, a, b)``: does reference ``a`` score better than ``b``?"""
    out = []
    for metric, a, b in rankings:
        va, vb = table[a][metric], table[b][metric]
        ok = va > vb if metric in _HIGHER_IS_BETTER else va < vb
        out.append({"metric": metric, "better": a, "worse": b, "values": [va, vb], "ok": ok})
    return out


def calibrate_digits(size: int, n: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """Scores of every digit reference set, and the :data:`DIGIT_RANKINGS` checks."""
    calib = {k: digit_scores(v) for k, v in digit_references(size, n, seed).items()}
    return calib, check_rankings(calib, DIGIT_RANKINGS)


def fresh_gradients(n: int, size: int = 16) -> torch.Tensor:
    """The real gradients SW1 is measured against (seed 20 000: neither training nor refs)."""
    return make_gradients(n, size, seed=20_000)


def calibrate_gradients(size: int, n: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """Scores of every gradient reference set, and the :data:`GRADIENT_RANKINGS` checks."""
    fresh = fresh_gradients(n, size)
    calib = {k: gradient_scores(v, fresh) for k, v in gradient_references(n, size, seed).items()}
    return calib, check_rankings(calib, GRADIENT_RANKINGS)


def calibrate_shapes(size: int, n: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """Scores of every shape reference set, and the :data:`SHAPE_RANKINGS` checks."""
    calib = {k: shape_scores(v) for k, v in shape_references(n, size, seed).items()}
    return calib, check_rankings(calib, SHAPE_RANKINGS)


# ---------------------------------------------------------------------------------------------
# Sampling


def generate(ck: Checkpoint, n: int, *, seed: int = 0, batch: int = 500, **kw) -> torch.Tensor:
    """``n`` samples from the checkpoint; x_T from ``torch.Generator().manual_seed(seed)``."""
    cfg = ck.model_config
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(n, cfg.channels, cfg.image_size, cfg.image_size, generator=g)
    out = [sample_final(ck.model, ck.schedule, x_T[i : i + batch], generator=g, **kw)
           for i in range(0, n, batch)]
    return torch.cat(out)


def default_kwargs(ck: Checkpoint) -> dict:
    return dict(ck.training["sampler_defaults"])


def sweep_settings(ck: Checkpoint) -> list[tuple[str, int, dict]]:
    base = default_kwargs(ck)
    rows = [(f"ddim_{s}", s, {**base, "sampler": "ddim", "steps": s, "eta": 0.0})
            for s in SWEEP_DDIM_STEPS]
    rows.append(("ddpm_full", ck.schedule.T,
                 {**base, "sampler": "ddpm", "steps": None, "variance": "beta_tilde"}))
    return rows


CALIBRATE = {"digits": calibrate_digits, "gradients": calibrate_gradients,
             "shapes": calibrate_shapes}


def run_model(name: str, n: int, sweep: bool, n_sweep: int | None = None) -> dict:
    ck = load_checkpoint(ASSETS / name)
    size = ck.model_config.image_size
    result: dict = {"model": name, "checkpoint": f"assets/models/{name}",
                    "sampler_defaults": default_kwargs(ck), "n_samples": n}
    calib, rankings = CALIBRATE[name](size, n)
    if name == "digits":
        score = digit_scores
    elif name == "shapes":
        score = shape_scores
    else:
        fresh = fresh_gradients(n, size)

        def score(x: torch.Tensor) -> dict:
            return gradient_scores(x, fresh)
    result["calibration"] = calib
    result["rankings"] = rankings
    result["metric_trusted"] = all(r["ok"] for r in rankings)

    t0 = time.perf_counter()
    x = generate(ck, n, **default_kwargs(ck))
    result["default"] = {**score(x), "sample_s": round(time.perf_counter() - t0, 2)}
    if name == "digits":
        d, real = result["default"], calib["real"]
        result["bar"] = {
            "frechet_le_blur_0.5": d["frechet_distance"] <= calib["blur_0.5"]["frechet_distance"],
            "confidence_ge_0.85": d["confidence"] >= DIGIT_BAR["confidence"],
            "class_entropy_ge_2.20": d["class_entropy"] >= DIGIT_BAR["class_entropy"],
            "near_copies_le_5pct": d["near_copy_fraction"] <= DIGIT_BAR["near_copy_fraction"],
            "real_reference": {k: real[k] for k in ("confidence", "class_entropy",
                                                    "frechet_distance")},
        }
        result["bar"]["met"] = all(v for k, v in result["bar"].items() if k != "real_reference")
    _print_table(name, calib, result["default"])

    if sweep:
        rows = {}
        n_sweep = n_sweep or n
        result["n_sweep"] = n_sweep
        if n_sweep != n:  # the references again at the sweep's N (Fréchet distance depends on N)
            result["calibration_sweep"] = CALIBRATE[name](size, n_sweep)[0]
        for label, steps, kw in sweep_settings(ck):
            t0 = time.perf_counter()
            xs = generate(ck, n_sweep, **kw)
            rows[label] = {"steps": steps, **score(xs),
                           "sample_s": round(time.perf_counter() - t0, 2)}
            print(f"  {label:10s} {rows[label]}", flush=True)
        result["vs_steps"] = rows
    return result


def _print_table(name: str, calib: dict, default: dict) -> None:
    cols = [k for k in default if k not in ("class_counts", "n_samples", "sample_s")]
    print(f"\n{name}: " + " | ".join(cols))
    for k, v in [*calib.items(), ("MODEL (default sampler)", default)]:
        print(f"  {k:24s} " + " | ".join(f"{v[c]:.4f}" for c in cols))


# ---------------------------------------------------------------------------------------------
# Plot


def plot(results: dict[str, dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows_of_panels = []  # one row per model
    if "digits" in results and "vs_steps" in results["digits"]:
        r = results["digits"]
        rows_of_panels.append([
            (r, "frechet_distance", "digits: Fréchet distance (lower is better)",
             ("real", "blur_0.5", "blur_1.0")),
            (r, "confidence", "digits: classifier confidence", ("real", "blur_1.0")),
            (r, "class_entropy", "digits: class entropy (max ln 10)", ("real",))])
    if "gradients" in results and "vs_steps" in results["gradients"]:
        r = results["gradients"]
        rows_of_panels.append([
            (r, "residual_mean", "gradients: mean RMS misfit (lower is better)",
             ("real", "noise_0.05", "noise_0.1")),
            (r, "sw1", "gradients: SW1 to real (lower is better)", ("real", "flat"))])
    if "shapes" in results and "vs_steps" in results["shapes"]:
        r = results["shapes"]
        rows_of_panels.append([
            (r, "frechet_distance", "shapes: Fréchet distance (lower is better)",
             ("real", "blur_1.0")),  # blur_0.5 scores as real does (see SHAPE_RANKINGS)
            (r, "confidence", "shapes: classifier confidence", ("real", "blur_1.0")),
            (r, "edge_softness", "shapes: edge softness (lower is crisper)",
             ("real", "blur_0.5", "blur_1.0")),
            (r, "residual_mean", "shapes: mean two-colour misfit (lower is better)",
             ("real", "noise_0.1"))])
    ncols = max(len(row) for row in rows_of_panels)
    fig, axes = plt.subplots(len(rows_of_panels), ncols,
                             figsize=(4.2 * ncols, 3.4 * len(rows_of_panels)), squeeze=False)
    panels = []
    for i, row in enumerate(rows_of_panels):
        panels += [(axes[i][j], *panel) for j, panel in enumerate(row)]
        for j in range(len(row), ncols):
            axes[i][j].set_visible(False)
    for ax, r, metric, title, refs in panels:
        rows = r["vs_steps"]
        ddim = [(v["steps"], v[metric]) for k, v in rows.items() if k.startswith("ddim")]
        ax.plot(*zip(*ddim, strict=True), "o-", label="DDIM η=0")
        ddpm = rows["ddpm_full"]
        ax.plot([ddpm["steps"]], [ddpm[metric]], "s", color="C3", label="DDPM (full chain)")
        calib = r.get("calibration_sweep", r["calibration"])
        for i, ref in enumerate(refs):
            ax.axhline(calib[ref][metric], ls="--", lw=1, color=f"C{i + 4}",
                       label=f"ref: {ref}")
        ax.set_xscale("log")
        values = [v[metric] for v in rows.values()] + [calib[ref][metric] for ref in refs]
        if metric == "frechet_distance" and max(values) > 20 * min(values):
            ax.set_yscale("log")
        ax.set_xlabel("sampler steps (network calls)")
        ax.set_title(f"{title}\nN = {r.get('n_sweep', r['n_samples'])}", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")
    return path


def default_models() -> list[str]:
    """The models of :data:`MODELS` whose checkpoint directory exists."""
    return [m for m in MODELS if (ASSETS / m).is_dir()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(default_models()),
                   help="comma-separated (default: every model in assets/models)")
    p.add_argument("--n-digits", type=int, default=1000)
    p.add_argument("--n-gradients", type=int, default=256)
    p.add_argument("--n-sweep-digits", type=int, default=300,
                   help="samples per sweep row (the full DDPM chain is the slow one)")
    p.add_argument("--n-sweep-gradients", type=int, default=128)
    p.add_argument("--n-shapes", type=int, default=256)
    # 256, not 128: the shapes' Fréchet distance uses 70 features per image, and at N = 128 the
    # covariance estimate is too poor to rank the sweep's runs (real shapes scored 5.91 there)
    p.add_argument("--n-sweep-shapes", type=int, default=256)
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.models.split(","):
        n = getattr(args, f"n_{name}")
        n_sweep = getattr(args, f"n_sweep_{name}")
        results[name] = run_model(name, n, not args.no_sweep, n_sweep)
        write_results(f"quality_{name}", {"threads": args.threads, **results[name]})
    if not args.no_sweep:
        # the plot shows every model with a sweep on disk, so models can be run one at a time
        for name in MODELS:
            f = RESULTS / f"quality_{name}.json"
            if name not in results and f.exists():
                import json

                results[name] = json.loads(f.read_text())
        plot(results, RESULTS / "quality_vs_steps.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

