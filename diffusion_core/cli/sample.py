"""Sample from a checkpoint on the command line (the same samplers the app uses).

    python -m diffusion_core.sample --checkpoint assets/models/digits --n 16 --out out/digits
    python -m diffusion_core.sample --checkpoint runs/moons --n 2000 --sampler ddim --steps 20 \
        --out out/moons
    python -m diffusion_core.sample --checkpoint assets/models/digits_cond --n 8 \
        --class-label 0 1 2 3 4 5 6 7 8 9 --guidance 3 --out out/digit_rows
    python -m diffusion_core.sample --checkpoint my_digits.zip --n 16 --out out/mine

Writes ``PREFIX.npz`` with the array ``samples``: ``[N, 2]`` in the 2D data set's own
coordinates, or ``[N, C, H, W]`` in [−1, 1] for images; for images also ``PREFIX.png`` (a
grid) and ``PREFIX.gif`` (the reverse chain: x_t beside x̂0, as the app's image sampler
tab draws it). Defaults: the checkpoint's recorded sampler settings.

Class-conditional checkpoints: ``--class-label K`` samples class K with classifier-free
guidance ε̃ = ε_u + s·(ε_c − ε_u), ``--guidance S`` = s (0 = the unconditional model, 1 = the
conditional one, > 1 guides harder, as diffusers' ``guidance_scale``; default: the checkpoint's
recorded ``guidance_default``). Several labels (``--class-label 0 1 2`` or ``all``) give a grid,
``--n`` samples per label, one row per label in the PNG; the npz then also holds ``labels``.
Without ``--class-label`` a conditional checkpoint samples its unconditional model.

Bad arguments exit with status 2 and one line on stderr. The run is
:mod:`diffusion_core.workflows.image_sampling`.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from .. import data as datasets
from ..checkpoints import Checkpoint, import_zip, load_checkpoint
from ..images import make_grid
from ..images import save_png as save_png_array
from ..sampling import GUIDANCE_DEFAULT, SAMPLER_NAMES, SPACINGS, VARIANCES, SamplerSettings
from ..workflows import image_sampling
from .common import CliError, Parser

MAX_N = 100_000
PNG_SCALE = 4  # the PNG of all samples: each pixel 4 × 4, tiles 1 px apart


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m diffusion_core.sample", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="checkpoint directory, or a checkpoint .zip from the app")
    p.add_argument("--n", type=int, default=16,
                   help="number of samples (per label with --class-label)")
    p.add_argument("--sampler", choices=SAMPLER_NAMES)
    p.add_argument("--steps", type=int, help="visited timesteps (default: checkpoint's)")
    p.add_argument("--eta", type=float, help="DDIM η in [0, 1]")
    p.add_argument("--spacing", choices=SPACINGS)
    p.add_argument("--variance", choices=VARIANCES, help="DDPM variance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class-label", nargs="+", metavar="K",
                   help="class(es) of a class-conditional checkpoint: one label, several "
                   "(a grid: --n samples per label, one row each) or 'all'")
    p.add_argument("--guidance", type=float, metavar="S",
                   help="classifier-free guidance scale s: ε̃ = ε_u + s·(ε_c − ε_u); 0 = "
                   "unconditional, 1 = conditional, > 1 guides harder (diffusers' "
                   f"guidance_scale); default: the checkpoint's ({GUIDANCE_DEFAULT:g})")
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


def class_labels(ck: Checkpoint, given: list[str] | None) -> list[int] | None:
    """The ``--class-label`` values as ints (``all``: every class), checked against ``ck``."""
    if given is None:
        return None
    k = ck.num_classes
    if k == 0:
        raise CliError("--class-label needs a class-conditional checkpoint (train one with "
                       f"--conditional); {ck.path} is unconditional")
    if [g.lower() for g in given] == ["all"]:
        return list(range(k))
    labels = []
    for token in (part for g in given for part in g.split(",") if part):
        try:
            labels.append(int(token))
        except ValueError:
            raise CliError(f"--class-label takes integers or 'all'; got {token!r}") from None
    bad = [v for v in labels if not 0 <= v < k]
    if bad or not labels:
        raise CliError(f"--class-label must be in 0..{k - 1} (classes: "
                       f"{', '.join(ck.class_names)}); got {bad or given}")
    return labels


def guidance_scale(ck: Checkpoint, given: float | None) -> float:
    """``--guidance``, else the checkpoint's recorded default, else :data:`GUIDANCE_DEFAULT`."""
    if given is not None:
        if not math.isfinite(given):
            raise CliError(f"--guidance must be a finite number; got {given}")
        return float(given)
    return image_sampling.guidance_default(ck)


def open_checkpoint(path: Path) -> Checkpoint:
    """A checkpoint directory, or a zip downloaded from the app's *Train images* tab (checked
    and unpacked by :func:`~diffusion_core.checkpoints.import_zip`: never unpickled)."""
    if path.suffix.lower() == ".zip" and path.is_file():
        with tempfile.TemporaryDirectory(prefix="diffusion-lab-zip-") as tmp:
            return import_zip(path, tmp)  # loaded into memory: the folder may go
    return load_checkpoint(path)


def run(argv: list[str] | None = None) -> dict[str, Path]:
    args = build_parser().parse_args(argv)
    if not 1 <= args.n <= MAX_N:
        raise CliError(f"--n must be in [1, {MAX_N}]; got {args.n}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda was asked for, but no CUDA GPU is available")
    if args.guidance is not None and args.class_label is None:
        raise CliError("--guidance needs --class-label (the class to guide toward)")
    ck = open_checkpoint(args.checkpoint)
    labels = class_labels(ck, args.class_label)
    n = args.n if labels is None else args.n * len(labels)
    if n > MAX_N:
        raise CliError(f"--n × the number of labels must be at most {MAX_N}; got {n}")
    ck.model.to(args.device)
    settings = sampler_settings(ck, args)
    num_steps = settings.resolved_steps(ck.schedule.T)
    y = None
    what = f"{n} samples"
    if labels is not None:  # classifier-free guidance: the same run with ε̃ for the model
        scale = guidance_scale(ck, args.guidance)
        y = torch.tensor(labels, dtype=torch.long).repeat_interleave(args.n)
        ck = image_sampling.guided_checkpoint(ck, y.to(args.device), scale)
        names = ", ".join(ck.class_names[v] for v in labels)
        what += f" of class {names}, guidance s = {scale:g}"
    record = None
    if image_sampling.is_image_model(ck):
        # The app's run: the same frames and GIF as the image sampler tab (first 64 images).
        record = image_sampling.SamplingRun.plan(ck, settings, n, args.seed)
        for _ in image_sampling.stream(ck, record, device=args.device):
            pass
        samples = record.final
    else:
        samples = image_sampling.sample_checkpoint(ck, settings, n, args.seed,
                                                   device=args.device).cpu()
        samples = datasets.to_data_coords(samples, ck.dataset["name"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    npz = args.out.with_suffix(".npz")
    arrays = {"samples": samples.numpy()}
    if y is not None:
        arrays["labels"] = y.numpy()
    np.savez_compressed(npz, **arrays)
    out["npz"] = npz
    if record is not None:
        png = args.out.with_suffix(".png")
        if labels is None:
            out["png"] = image_sampling.save_png(samples, png, scale=PNG_SCALE, pad=1)
        else:  # one row per label
            out["png"] = save_png_array(make_grid(torch.nan_to_num(samples, nan=0.0),
                                                  ncols=args.n, scale=PNG_SCALE, pad=1), png)
        out["gif"] = image_sampling.save_gif(record, args.out.with_suffix(".gif"))
    print(f"{what}, {settings.sampler} with {num_steps} steps → "
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
