"""Train a noise predictor from the command line (the same engine the app uses).

    python -m diffusion_core.train --dataset moons --out runs/moons
    python -m diffusion_core.train --dataset digits --out assets/models/digits --steps 6000
    python -m diffusion_core.train --dataset moons --out runs/moons-v --prediction v
    python -m diffusion_core.train --dataset digits8 --out runs/digits-cond --conditional
    torchrun --nproc_per_node 2 -m diffusion_core.train --dataset digits --out runs/d2

``--conditional`` trains a class-conditional model (2D sets with classes, digits, digits8,
shapes) that drops each label with probability ``--p-uncond`` so the same network is also the
unconditional model; sample it with classifier-free guidance, ε̃ = ε_u + s·(ε_c − ε_u) (s = 0
unconditional, s = 1 conditional, s > 1 guides harder): ``python -m diffusion_core.sample
--class-label K --guidance S``.

Under ``torchrun`` the same command trains data-parallel (DistributedDataParallel: gloo on CPU,
NCCL with ``--device cuda``, one GPU per process); ``--batch-size`` is the global batch, split
over the processes, and the result matches a 1-process run to float rounding
(:mod:`diffusion_core.training.distributed`). Only rank 0 writes the checkpoint and messages.

With only ``--dataset`` and ``--out`` it uses the app's defaults (``diffusion_core.presets``);
``--preset quick`` the fast recipe instead (about a minute of training on 2 vCPU).
Writes a checkpoint directory (``model.safetensors`` + ``config.json``). Bad arguments exit
with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from .. import data as datasets
from ..checkpoints import finite_or_none, save_checkpoint
from ..data.registry import IMAGE_CLASSES
from ..models import MLPConfig, PixelMLPConfig, UNetConfig, build_model, count_parameters
from ..presets import RECIPES, preset_for
from ..sampling.config import GUIDANCE_DEFAULT
from ..schedule import SCHEDULE_KINDS, NoiseSchedule, ScheduleConfig
from ..training import Trainer, TrainingDiverged, distributed
from ..training.config import P_UNCOND_DEFAULT, PREDICTIONS
from .common import CliError, Parser


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m diffusion_core.train", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True,
                   help="2D: " + ", ".join(datasets.TOY_DATASETS) + "; images: "
                   + ", ".join(datasets.IMAGE_DATASETS) + ", folder, npz, idx")
    p.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    p.add_argument("--data-path", type=Path, help="file/folder for folder|npz|idx data sets")
    p.add_argument("--channels", type=int, choices=(1, 3), help="channels for user images")
    p.add_argument("--image-size", type=int, help="side of user images (resized)")
    p.add_argument("--preset", choices=RECIPES, default="default",
                   help="the recipe every setting below defaults to: default (the shipped "
                   "models') or quick (about a minute on 2 vCPU; diffusion_core.presets)")
    g = p.add_argument_group("2D data")
    g.add_argument("--n", "--n-points", type=int, default=4000,  # torchrun takes --n as its own
                   help="number of 2D points (default 4000)")
    g.add_argument("--noise", type=float, default=None, help="2D data noise (set's default)")
    g.add_argument("--data-seed", type=int, default=0)
    g = p.add_argument_group("schedule (default: the preset's)")
    g.add_argument("--schedule", choices=[k for k in SCHEDULE_KINDS if k != "custom"])
    g.add_argument("--T", type=int)
    g.add_argument("--beta-start", type=float)
    g.add_argument("--beta-end", type=float)
    g.add_argument("--scale-to-T", action="store_true", default=None)
    g = p.add_argument_group("model (default: the preset's)")
    g.add_argument("--hidden", type=int, help="MLP width")
    g.add_argument("--depth", type=int, help="MLP hidden layers")
    g.add_argument("--time-embedding", choices=("sinusoidal", "onehot_linear", "scalar"))
    g.add_argument("--dim", type=int, help="U-Net base channels")
    g.add_argument("--dim-mults", type=str, help="U-Net channel multipliers, e.g. 1,2,2")
    g.add_argument("--block", choices=("resnet", "convnext"), help="U-Net block type")
    g.add_argument("--level-blocks", type=int, choices=(1, 2),
                   help="U-Net blocks per resolution level and path")
    g = p.add_argument_group("optimisation (default: the preset's)")
    g.add_argument("--steps", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--loss", choices=("l2", "l1", "huber"))
    g.add_argument("--ema", type=float, help="EMA decay (0 = off)")
    g.add_argument("--prediction", choices=PREDICTIONS,
                   help="what the network predicts: eps (the noise, DDPM), x0 (the clean "
                   "sample) or v (√ᾱ ε − √(1−ᾱ) x0); samplers always get ε (default: eps)")
    g = p.add_argument_group("class-conditional model (classifier-free guidance)")
    g.add_argument("--conditional", action="store_true",
                   help="train a class-conditional model on the data set's labels (2D sets "
                   "with classes, digits, digits8, shapes); sample it with --class-label and "
                   "--guidance S: ε̃ = ε_u + S·(ε_c − ε_u), S = 0 unconditional, 1 conditional, "
                   "> 1 guides harder")
    g.add_argument("--p-uncond", type=float, metavar="P",
                   help="label dropout: each label is replaced by the null class with "
                   f"probability P, which trains the unconditional model too "
                   f"(default {P_UNCOND_DEFAULT}; needs --conditional)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    g.add_argument("--backend", choices=distributed.BACKENDS,
                   help="process-group backend under torchrun (default: gloo on cpu, nccl on "
                   "cuda)")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _pick(value, default):
    return default if value is None else value


def load_training_data(args) -> tuple[torch.Tensor, dict, bool]:
    """(data [N, ...], dataset description for config.json, is_image)."""
    return load_labelled_data(args)[::2]


def load_labelled_data(args) -> tuple[torch.Tensor, torch.Tensor | None, dict, bool]:
    """(data [N, ...], labels [N] or None, dataset description for config.json, is_image).

    Labels only with ``--conditional`` (the description then lists the class names under
    ``"classes"``); a data set without classes is refused.
    """
    name = args.dataset
    conditional = getattr(args, "conditional", False)
    if name in datasets.TOY_DATASETS:
        dataset = {"name": name, "kind": "2d", "n": args.n, "noise": args.noise,
                   "seed": args.data_seed}
        if not conditional:
            x = datasets.make_2d(name, args.n, noise=args.noise, seed=args.data_seed)
            return x, None, dataset, False
        classes = datasets.TOY_SPECS[name].classes
        if not classes:
            raise CliError(f"--conditional needs a data set with classes; {name} has none "
                           "(2D sets with classes: " + ", ".join(
                               k for k, v in datasets.TOY_SPECS.items() if v.classes) + ")")
        x, y = datasets.make_2d(name, args.n, noise=args.noise, seed=args.data_seed,
                                return_labels=True)
        return x, y, {**dataset, "classes": list(classes)}, False
    if name in datasets.IMAGE_DATASETS:
        data = datasets.load_image_dataset(name)
        x = data.images
        dataset = {"name": name, "kind": "image", "n": len(x), "shape": list(x.shape[1:])}
        if not conditional:
            return x, None, dataset, True
        classes = IMAGE_CLASSES.get(name)
        if data.labels is None or classes is None:
            raise CliError(f"--conditional needs a data set with classes; {name} has none")
        return x, data.labels, {**dataset, "classes": list(classes)}, True
    if conditional and name in ("folder", "npz", "idx"):
        raise CliError(f"--conditional needs a data set with classes; --dataset {name} has "
                       "none (use a 2D set with classes, digits, digits8 or shapes)")
    if name in ("folder", "npz", "idx"):
        if args.data_path is None:
            raise CliError(f"--dataset {name} needs --data-path")
        size = args.image_size or 16
        channels = args.channels or (1 if name == "idx" else 3)
        if name == "folder":
            x = datasets.load_image_folder(args.data_path, size=size, channels=channels)
        elif name == "npz":
            x = datasets.load_npz_images(args.data_path, size=size, channels=channels)
        else:
            x = datasets.load_idx_images(args.data_path, size=size)
        return x, None, {"name": name, "kind": "image", "path": str(args.data_path),
                         "n": len(x), "shape": list(x.shape[1:])}, True
    raise CliError(f"unknown --dataset {name!r}; choose one of "
                   f"{', '.join([*datasets.TOY_DATASETS, *datasets.IMAGE_DATASETS])}, "
                   "folder, npz, idx")


def configs_from_args(args, data: torch.Tensor, image: bool, num_classes: int = 0):
    """(schedule, model, train, sampler) configs: the preset's, overridden by the arguments;
    ``num_classes`` > 0 makes the model class-conditional."""
    preset = preset_for(args.dataset, image=image, conditional=num_classes > 0,
                        recipe=getattr(args, "preset", "default"))
    s = preset.schedule
    schedule = ScheduleConfig(
        kind=_pick(args.schedule, s.kind), T=_pick(args.T, s.T),
        beta_start=_pick(args.beta_start, s.beta_start), beta_end=_pick(args.beta_end, s.beta_end),
        scale_to_T=_pick(args.scale_to_T, s.scale_to_T), cosine_s=s.cosine_s, power=s.power)
    m = preset.model
    if isinstance(m, MLPConfig):
        model = replace(m, hidden=_pick(args.hidden, m.hidden), depth=_pick(args.depth, m.depth),
                        time_embedding=_pick(args.time_embedding, m.time_embedding),
                        num_timesteps=schedule.T)
    elif isinstance(m, PixelMLPConfig):  # the quick gradients recipe's network
        model = replace(m, channels=data.shape[1], image_size=data.shape[-1],
                        hidden=_pick(args.hidden, m.hidden), num_timesteps=schedule.T)
    else:
        assert isinstance(m, UNetConfig)
        mults = m.dim_mults
        if args.dim_mults:
            try:
                mults = tuple(int(v) for v in args.dim_mults.split(","))
            except ValueError:
                raise CliError(
                    f"--dim-mults must look like 1,2,2; got {args.dim_mults!r}") from None
        model = replace(m, channels=data.shape[1], image_size=data.shape[-1],
                        dim=_pick(args.dim, m.dim), dim_mults=mults,
                        block=_pick(args.block, m.block),
                        level_blocks=_pick(args.level_blocks, m.level_blocks))
    model = replace(model, num_classes=num_classes)
    t = preset.train
    train = replace(t, steps=_pick(args.steps, t.steps),
                    batch_size=_pick(args.batch_size, t.batch_size), lr=_pick(args.lr, t.lr),
                    loss=_pick(args.loss, t.loss), ema_decay=_pick(args.ema, t.ema_decay),
                    seed=_pick(args.seed, t.seed),
                    prediction=_pick(args.prediction, t.prediction),
                    p_uncond=_pick(getattr(args, "p_uncond", None), t.p_uncond))
    return schedule, model, train, preset.sampler


def run(argv: list[str] | None = None) -> Path | None:
    """Train and write the checkpoint; returns its directory (``None`` on ranks other than 0
    under torchrun, which write nothing)."""
    args = build_parser().parse_args(argv)
    world = distributed.World.from_env()  # torchrun's RANK, WORLD_SIZE (1 process without)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda was asked for, but no CUDA GPU is available")
    distributed.check_backend(args.backend, args.device)
    if args.p_uncond is not None and not args.conditional:
        raise CliError("--p-uncond (label dropout) applies only with --conditional")
    data, labels, dataset, image = load_labelled_data(args)
    num_classes = len(dataset["classes"]) if labels is not None else 0
    schedule_cfg, model_cfg, train_cfg, sampler = configs_from_args(args, data, image,
                                                                    num_classes)
    distributed.per_rank_batch(train_cfg.batch_size, world.world_size)  # before any waiting
    device = distributed.setup(world, args.device, args.backend)  # joins torchrun's group
    torch.manual_seed(train_cfg.seed)
    model = build_model(model_cfg).to(device)
    trainer = Trainer(model, NoiseSchedule(schedule_cfg), data.to(device), train_cfg,
                      labels=labels, rank=world.rank, world_size=world.world_size)
    bar = tqdm(total=train_cfg.steps, disable=args.quiet or not world.is_main, unit="step",
               dynamic_ncols=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    last = None
    try:
        for report in trainer.run():
            bar.update(report.run_step - bar.n)
            bar.set_postfix(loss=f"{report.loss:.4f}")
            last = report
    except TrainingDiverged as e:
        raise CliError(str(e)) from None
    finally:
        bar.close()
        distributed.teardown()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    command = "python -m diffusion_core.train " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
    training = {
        "config": train_cfg.to_dict(),
        "recipe": args.preset,  # the preset the settings default to (presets.RECIPES)
        "steps": trainer.step,
        "wall_time_s": round(wall, 2),
        "cpu_time_s": round(cpu, 2),
        "final_loss": finite_or_none(last.loss) if last else None,
        "parameters": count_parameters(model),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "world_size": world.world_size,  # processes (torchrun); the batch below is theirs in all
        "global_batch_size": train_cfg.batch_size,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": command,
        "sampler_defaults": sampler.kwargs(),
    }
    if num_classes:  # the guidance scale a sampler uses when none is given
        training["guidance_default"] = GUIDANCE_DEFAULT
    if not world.is_main:
        return None
    out = save_checkpoint(args.out, trainer.sampling_network(), model_cfg, schedule_cfg,
                          dataset=dataset, training=training, prediction=train_cfg.prediction)
    if not args.quiet:
        print(f"wrote {out} ({count_parameters(model):,} parameters, {trainer.step} steps, "
              f"{wall:.1f} s, final loss {last.loss:.4f})")
    return out


def _error(message: str) -> None:
    """Print one error line; under torchrun only local rank 0 does (one line per machine)."""
    if os.environ.get("LOCAL_RANK", "0") in ("", "0"):
        print(f"error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    try:
        run(argv)
    except CliError as e:
        _error(str(e))
        return 2
    except (ValueError, OSError) as e:  # core validation names the parameter; missing files
        _error(str(e))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    finally:
        distributed.teardown()  # a process group left by an error (no-op otherwise)
    return 0


if __name__ == "__main__":
    sys.exit(main())
