"""Sample from a checkpoint on the command line (the same samplers the app uses).

    python -m diffusion_core.sample --checkpoint assets/models/digits --n 16 --out out/digits
    python -m diffusion_core.sample --checkpoint runs/moons --n 2000 --sampler ddim --steps 20 \
        --out out/moons

Writes ``PREFIX.npz`` with the array ``samples``: ``[N, 2]`` in the 2D data set's own
coordinates, or ``[N, C, H, W]`` in [−1, 1] for images; for images also ``PREFIX.png`` (a
grid) and ``PREFIX.gif`` (the reverse chain: x_t beside x̂0, as the app's image sampler
tab draws it). Defaults: the checkpoint's recorded sampler settings. Bad arguments exit with
status 2 and one line on stderr. The run is :mod:`diffusion_core.workflows.image_sampling`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .. import data as datasets
from ..checkpoints import Checkpoint, load_checkpoint
from ..sampling import SAMPLER_NAMES, SPACINGS, VARIANCES, SamplerSettings
from ..workflows import image_sampling
from .common import CliError, Parser

MAX_N = 100_000
PNG_SCALE = 4  # the PNG of all samples: each pixel 4 × 4, tiles 1 px apart


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m diffusion_core.sample", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory")
    p.add_argument("--n", type=int, default=16, help="number of samples")
    p.add_argument("--sampler", choices=SAMPLER_NAMES)
    p.add_argument("--steps", type=int, help="visited timesteps (default: checkpoint's)")
    p.add_argument("--eta", type=float, help="DDIM η in [0, 1]")
    p.add_argument("--spacing", choices=SPACINGS)
    p.add_argument("--variance", choices=VARIANCES, help="DDPM variance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="output prefix (no extension)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    return p


def sampler_settings(ck: Checkpoint, args) -> SamplerSettings:
    """The checkpoint's recorded sampler settings, overridden by the arguments given (the one
    rule, :func:`diffusion_core.workflows.image_sampling.sampler_settings`)."""
    settings = image_sampling.sampler_settings(
        ck, {name: getattr(args, name)
             for name in ("sampler", "steps", "eta", "spacing", "variance")})
    if args.steps is not None and not 1 <= args.steps <= ck.schedule.T:
        raise CliError(f"--steps must be in [1, T = {ck.schedule.T}]; got {args.steps}")
    return settings


def run(argv: list[str] | None = None) -> dict[str, Path]:
    args = build_parser().parse_args(argv)
    if not 1 <= args.n <= MAX_N:
        raise CliError(f"--n must be in [1, {MAX_N}]; got {args.n}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda was asked for, but no CUDA GPU is available")
    ck = load_checkpoint(args.checkpoint)
    ck.model.to(args.device)
    settings = sampler_settings(ck, args)
    num_steps = settings.resolved_steps(ck.schedule.T)
    record = None
    if image_sampling.is_image_model(ck):
        # The app's run: the same frames and GIF as the image sampler tab (first 64 images).
        record = image_sampling.SamplingRun.plan(ck, settings, args.n, args.seed)
        for _ in image_sampling.stream(ck, record, device=args.device):
            pass
        samples = record.final
    else:
        samples = image_sampling.sample_checkpoint(ck, settings, args.n, args.seed,
                                                   device=args.device).cpu()
        samples = datasets.to_data_coords(samples, ck.dataset["name"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    npz = args.out.with_suffix(".npz")
    np.savez_compressed(npz, samples=samples.numpy())
    out["npz"] = npz
    if record is not None:
        out["png"] = image_sampling.save_png(samples, args.out.with_suffix(".png"),
                                             scale=PNG_SCALE, pad=1)
        out["gif"] = image_sampling.save_gif(record, args.out.with_suffix(".gif"))
    print(f"{args.n} samples, {settings.sampler} with {num_steps} steps → "
          + ", ".join(str(p) for p in out.values()))
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        run(argv)
    except (CliError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
