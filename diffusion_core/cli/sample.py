"""Sample from a checkpoint on the command line (the same samplers the app uses).

    python -m diffusion_core.sample --checkpoint assets/models/digits --n 16 --out out/digits
    python -m diffusion_core.sample --checkpoint runs/moons --n 2000 --sampler ddim --steps 20 \
        --out out/moons

Writes ``PREFIX.npz`` with the array ``samples``: ``[N, 2]`` in the 2D data set's own
coordinates, or ``[N, C, H, W]`` in [−1, 1] for images; for images also ``PREFIX.png`` (a
grid) and ``PREFIX.gif`` (the reverse chain). Defaults: the checkpoint's recorded sampler
settings. Bad arguments exit with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from .. import data as datasets
from ..checkpoints import Checkpoint, load_checkpoint
from ..images import make_grid, save_gif, save_png
from ..models import UNetConfig
from ..sampling import SAMPLER_NAMES, SPACINGS, VARIANCES, resolve_sampler_settings, sample
from .common import CliError, Parser

MAX_N = 100_000
GIF_FRAMES = 40


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


def sampler_kwargs(ck: Checkpoint, args) -> dict:
    """The checkpoint's recorded sampler settings, overridden by the arguments given (the one
    rule of :func:`diffusion_core.sampling.resolve_sampler_settings`), as ``sample`` kwargs."""
    recorded = ck.training.get("sampler_defaults") if isinstance(ck.training, dict) else None
    settings = resolve_sampler_settings(
        recorded, {name: getattr(args, name)
                   for name in ("sampler", "steps", "eta", "spacing", "variance")},
        image=isinstance(ck.model_config, UNetConfig))
    if args.steps is not None and not 1 <= args.steps <= ck.schedule.T:
        raise CliError(f"--steps must be in [1, T = {ck.schedule.T}]; got {args.steps}")
    return settings.sample_kwargs(ck.schedule.T)


def run(argv: list[str] | None = None) -> dict[str, Path]:
    args = build_parser().parse_args(argv)
    if not 1 <= args.n <= MAX_N:
        raise CliError(f"--n must be in [1, {MAX_N}]; got {args.n}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda was asked for, but no CUDA GPU is available")
    ck = load_checkpoint(args.checkpoint)
    model = ck.model.to(args.device)
    schedule = ck.schedule.to(args.device)
    is_image = isinstance(ck.model_config, UNetConfig)
    shape = ((ck.model_config.channels, ck.model_config.image_size, ck.model_config.image_size)
             if is_image else (2,))
    g = torch.Generator(device=args.device).manual_seed(args.seed)
    x = torch.randn((args.n, *shape), generator=g, device=args.device)
    kw = sampler_kwargs(ck, args)
    frames: list[np.ndarray] = []
    num_steps = 0
    for step in sample(model, schedule, x, generator=g, **kw):
        num_steps = step.num_steps
        if is_image:
            keep = max(1, step.num_steps // GIF_FRAMES)
            if step.index % keep == 0 or step.t_prev == -1:
                frames.append(make_grid(step.x_prev[:64], scale=4))
        x = step.x_prev
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    samples = x.cpu()
    if not is_image:
        samples = datasets.to_data_coords(samples, ck.dataset["name"])
    npz = args.out.with_suffix(".npz")
    np.savez_compressed(npz, samples=samples.numpy())
    out["npz"] = npz
    if is_image:
        out["png"] = save_png(make_grid(samples, scale=4), args.out.with_suffix(".png"))
        out["gif"] = save_gif(frames, args.out.with_suffix(".gif"))
    print(f"{args.n} samples, {kw['sampler']} with {num_steps} steps → "
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
