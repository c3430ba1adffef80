"""Data-parallel training under ``torchrun``: the process group and the split of the batch.

    torchrun --nproc_per_node N -m diffusion_core.train --dataset digits --out runs/d

starts N copies of the CLI. Each reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``; :meth:`World.from_env`), joins one process group
(:func:`setup`: gloo on CPU, NCCL on CUDA, where rank r uses ``cuda:LOCAL_RANK``) and runs the
same :class:`~diffusion_core.training.Trainer` with ``rank``/``world_size``, which wraps the
network in PyTorch's ``DistributedDataParallel`` (:func:`wrap_ddp`). Without torchrun
(``WORLD_SIZE`` unset or 1) nothing here runs and training is the 1-process loop, bit for bit.

Why W processes with B/W examples each make the 1-process update with B (exact up to the
order of float sums; ``tests/core/test_distributed.py`` checks it):

* ``TrainConfig.batch_size`` B is the *global* batch. Every rank draws the whole batch — the
  example indices, t ∈ {0, …, T−1}, the noise ε, the label dropout and the Stable Target
  Field's extra references — from the same seeded generator, and keeps rows
  ``[r·B/W, (r+1)·B/W)`` (:func:`rank_rows`). The W slices together are the 1-process batch:
  this is the distributed sampler over the data, with the same data order for any W.
* Each rank's loss is the mean of its B/W per-example losses (DDPM eq. 14); DDP averages the
  gradients: (1/W) Σ_r (W/B) Σ_{i ∈ r} ∇ℓ_i = (1/B) Σ_i ∇ℓ_i, the batch-B gradient.
* The averaged gradient is the same on every rank, so gradient clipping, AdamW and the EMA
  update are too; DDP broadcasts rank 0's initial weights, so the ranks start equal.
* The STF target's reference set is the *global* batch's x0 (and the extra draws) on every
  rank, so each example's target is the one the 1-process run computes.
* The reported loss, the per-t loss bins and the NaN guard use the global batch: one small
  all-reduce per step (:func:`all_reduce_sum`) gives every rank the same figures, so a
  diverged loss stops all ranks before the update.

Only rank 0 writes (checkpoint, progress bar, messages); the checkpoint format is unchanged and
its training summary records ``world_size`` and ``global_batch_size``.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

BACKENDS: tuple[str, ...] = ("gloo", "nccl")


class DistributedError(ValueError):
    """A distributed run cannot start: one line that says why and what to do."""


@dataclass(frozen=True)
class World:
    """Where this process sits in a torchrun job (1 process without torchrun).

    ``rank`` in 0..world_size−1 over all machines; ``local_rank`` in 0..local_world_size−1 on
    this machine (the GPU it uses with ``--device cuda``).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.world_size, int) and self.world_size >= 1
                and isinstance(self.rank, int) and 0 <= self.rank < self.world_size):
            raise DistributedError(f"rank {self.rank!r} must lie in 0..world_size − 1 "
                                   f"(world_size {self.world_size!r})")
        if not (isinstance(self.local_world_size, int)
                and 1 <= self.local_world_size <= self.world_size
                and isinstance(self.local_rank, int)
                and 0 <= self.local_rank < self.local_world_size):
            raise DistributedError(f"local rank {self.local_rank!r} must lie in "
                                   f"0..local_world_size − 1 (local_world_size "
                                   f"{self.local_world_size!r}, world_size {self.world_size})")

    @property
    def distributed(self) -> bool:
        """True when there is more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the checkpoint and the messages."""
        return self.rank == 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> World:
        """The world torchrun describes in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
        ``LOCAL_WORLD_SIZE`` (``environ`` defaults to ``os.environ``); unset means 1 process.
        A malformed value raises :class:`DistributedError`."""
        env = os.environ if environ is None else environ

        def read(name: str, default: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError:
                raise DistributedError(f"environment variable {name}={raw!r} is not an "
                                       "integer (torchrun sets it)") from None

        world_size = read("WORLD_SIZE", 1)
        local_rank = read("LOCAL_RANK", 0)
        return cls(rank=read("RANK", 0), world_size=world_size, local_rank=local_rank,
                   local_world_size=read("LOCAL_WORLD_SIZE",
                                         local_rank + 1 if world_size > 1 else 1))


def default_backend(device_type: str) -> str:
    """gloo for ``"cpu"``, NCCL for ``"cuda"``."""
    return "nccl" if device_type == "cuda" else "gloo"


def check_backend(backend: str | None, device_type: str) -> str:
    """The backend to use (``backend`` or the default for ``device_type``); NCCL without CUDA
    or an unknown name raise :class:`DistributedError`."""
    if device_type not in ("cpu", "cuda"):
        raise DistributedError(f"device must be cpu or cuda; got {device_type!r}")
    backend = default_backend(device_type) if backend is None else backend
    if backend not in BACKENDS:
        raise DistributedError(f"backend must be gloo or nccl; got {backend!r}")
    if backend == "nccl" and device_type != "cuda":
        raise DistributedError("the nccl backend runs on CUDA GPUs only: add --device cuda, "
                               "or use --backend gloo on CPU")
    return backend


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """B/W, the examples each rank trains on; raises :class:`DistributedError` unless the
    global batch B splits evenly over the W processes."""
    if world_size < 1 or batch_size % world_size:
        raise DistributedError(f"batch size {batch_size} does not split over {world_size} "
                               f"processes: choose a multiple of {world_size} (it is the "
                               "global batch; each process trains on batch size ÷ processes)")
    return batch_size // world_size


def rank_rows(batch_size: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s rows ``[r·B/W, (r+1)·B/W)`` of the global batch of ``batch_size``."""
    b = per_rank_batch(batch_size, world_size)
    return slice(rank * b, (rank + 1) * b)


def device_for(world: World, device_type: str) -> torch.device:
    """The device this process trains on: the CPU, ``cuda`` for 1 process (as without
    torchrun), ``cuda:LOCAL_RANK`` for several. Raises :class:`DistributedError` when this
    machine has fewer GPUs than processes."""
    if device_type == "cpu":
        return torch.device("cpu")
    if device_type != "cuda":
        raise DistributedError(f"device must be cpu or cuda; got {device_type!r}")
    if not torch.cuda.is_available():
        raise DistributedError("--device cuda was asked for, but no CUDA GPU is available")
    if not world.distributed:
        return torch.device("cuda")
    have = torch.cuda.device_count()
    if world.local_world_size > have:
        raise DistributedError(f"{world.local_world_size} processes on this machine need "
                               f"{world.local_world_size} GPUs (one each); it has {have}: "
                               f"use --nproc_per_node {have}")
    return torch.device("cuda", world.local_rank)


def setup(world: World, device_type: str = "cpu", backend: str | None = None, *,
          timeout_s: float = 600.0) -> torch.device:
    """Join torchrun's process group; returns this process's device (:func:`device_for`).

    For 1 process it only returns the device. Otherwise it selects ``cuda:LOCAL_RANK`` (CUDA)
    and calls ``init_process_group`` with ``backend`` (default: :func:`default_backend`) over
    torchrun's rendezvous (``MASTER_ADDR``/``MASTER_PORT``); a group that is already up with
    this rank and size is reused. Failures raise :class:`DistributedError`. Pair with
    :func:`teardown`.
    """
    backend = check_backend(backend, device_type)
    device = device_for(world, device_type)
    if not world.distributed:
        return device
    if dist.is_initialized():
        if (dist.get_rank(), dist.get_world_size()) != (world.rank, world.world_size):
            raise DistributedError(
                f"a process group (rank {dist.get_rank()} of {dist.get_world_size()}) is "
                f"already up; this process is rank {world.rank} of {world.world_size}")
        return device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise DistributedError(f"WORLD_SIZE={world.world_size} but {' and '.join(missing)} "
                               "unset: start the run with torchrun")
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.world_size,
                                timeout=timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as e:  # DistNetworkError, DistStoreError are RuntimeErrors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DistributedError(
            f"rank {world.rank} could not join the {backend} process group at "
            f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}: {first}") from None
    return device


def teardown() -> None:
    """Leave the process group, if this process is in one (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_process_group(rank: int, world_size: int) -> None:
    """Raise ``ValueError`` unless a process group of ``world_size`` is up with this process
    as ``rank`` (what a Trainer with ``world_size`` > 1 needs)."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(f"world_size={world_size} needs a process group: call "
                         "diffusion_core.training.distributed.setup() first (under torchrun)")
    if (dist.get_rank(), dist.get_world_size()) != (rank, world_size):
        raise ValueError(f"rank={rank}, world_size={world_size} do not match the process "
                         f"group (rank {dist.get_rank()} of {dist.get_world_size()})")


def wrap_ddp(model: nn.Module) -> nn.Module:
    """``DistributedDataParallel(model)`` on the model's device (its GPU, or the CPU).

    DDP broadcasts rank 0's parameters once here and averages the gradients in ``backward``
    (into its buckets, which the gradients are views of: no copy). Buffers are not re-sent at
    each forward (``forward_sync_buffers``, before torch 2.13 ``broadcast_buffers``, = False):
    our networks' buffers are constants (sinusoidal frequencies), so it would only cost a
    collective.
    """
    from torch.nn.parallel import DistributedDataParallel

    # The channels-last U-Net's [1, C, 1, 1] output weight has two valid stride sets; autograd
    # hands its gradient over in the other one and DDP warns (once per process) that it copies
    # those C numbers.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides",
                            category=UserWarning)
    device = next(model.parameters()).device
    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    # torch ≥ 2.13 renamed broadcast_buffers (and warns about the old name)
    no_sync = ("forward_sync_buffers" if "forward_sync_buffers"
               in inspect.signature(DistributedDataParallel).parameters else "broadcast_buffers")
    return DistributedDataParallel(model, device_ids=ids, gradient_as_bucket_view=True,
                                   **{no_sync: False})


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all ranks, as a new tensor on ``tensor``'s device (NCCL
    reduces on this process's GPU, gloo wherever the tensor lies)."""
    buf = tensor.clone()
    if dist.get_backend() == "nccl" and buf.device.type != "cuda":
        buf = buf.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.to(tensor.device)
