"""Several processes, one model: data-parallel training with PyTorch's DistributedDataParallel.

``torchrun --nproc-per-node N -m cnnzoo train CONFIG`` starts N copies of the trainer;
``cnnzoo train CONFIG --gpus N`` runs that command for you (``cnnzoo.commands.train``). This
module holds the process-group primitives only; each process
reads its rank from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), takes
one GPU (``cuda:LOCAL_RANK``, backend NCCL) or the CPU (backend gloo), trains on its own
shard of every epoch, and DDP averages the gradients, so all ranks hold the same weights
after every step. Metrics are exact: every rank adds up sums (loss x samples, hits, samples,
the confusion matrix) and the sums are all-reduced. Only rank 0 logs, draws progress bars
and writes checkpoints, which hold the unwrapped model, so a run resumes on any number of
processes.

Several machines: ``torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d
--rdzv-endpoint HOST:PORT -m cnnzoo train CONFIG`` on each. The global ``RANK`` chooses the
shard of the data and the one process that writes (so one run directory, named by rank 0
and broadcast); ``LOCAL_RANK`` only chooses the GPU of its machine. The work directory must
be on a filesystem every machine shares: resuming reads the checkpoint on every process.

``data.train.batch_size`` is the batch of ONE process (mmpretrain's ``8xb16``); the linear
learning-rate scaling rule lives with the optimizers (:func:`cnnzoo.engine.optim.lr_scale`).
"""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from cnnzoo.errors import ConfigError, TrainingError

TIMEOUT = datetime.timedelta(minutes=30)  # a rank waiting longer than this on the others fails


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` processes, its device, and
    the process-group backend (None when it trains alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_ranks() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` outside it)."""
    values = []
    for key, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        raw = os.environ.get(key, "")
        try:
            values.append(int(raw) if raw.strip() else default)
        except ValueError:
            raise TrainingError(
                f"environment variable {key}={raw!r} is not an integer; start with torchrun or unset it"
            ) from None
    rank, world_size, local_rank = values
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise TrainingError(
            f"RANK={rank}, WORLD_SIZE={world_size}, LOCAL_RANK={local_rank} do not describe a process group"
        )
    return rank, world_size, local_rank


def setup(device: torch.device) -> DistContext:
    """Join the process group torchrun describes (once per process). ``device`` is the one
    the config resolved to; under torchrun a CUDA device becomes ``cuda:LOCAL_RANK`` with the
    NCCL backend, the CPU uses gloo. Alone (``WORLD_SIZE`` 1 or unset) nothing is started."""
    rank, world_size, local_rank = env_ranks()
    device = torch.device(device)
    if world_size == 1:
        return DistContext(device=device)
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if local_rank >= visible:
            raise TrainingError(
                f"process {rank} has LOCAL_RANK={local_rank} but only {visible} GPUs are visible; "
                f"start at most {visible} processes per machine, or train on the CPU with device='cpu'"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(f"distributed training runs on 'cuda' or 'cpu', not {device.type!r}")
    if not dist.is_initialized():
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=world_size,
            timeout=TIMEOUT,
            device_id=device if backend == "nccl" else None,
        )
    return DistContext(
        rank=rank, local_rank=local_rank, world_size=world_size, device=device, backend=backend
    )


def cleanup() -> None:
    """Leave the process group (no-op when none was started)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else env_ranks()[0]


def get_world_size() -> int:
    return (
        dist.get_world_size() if dist.is_available() and dist.is_initialized() else env_ranks()[1]
    )


def is_main() -> bool:
    """True on rank 0 (and when training alone): the process that logs and saves."""
    return get_rank() == 0


def barrier() -> None:
    """Wait until every process gets here."""
    if _active():
        dist.barrier()


def all_reduce_sum(*tensors: Tensor) -> None:
    """Replace each tensor, in place, by its sum over all processes. Sum counts and totals
    (``loss x n``, hits, ``n``, confusion matrices), never per-rank averages: the averages
    are computed from the sums afterwards, so they are exact whatever each rank holds."""
    if _active():
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every process when ``flag`` is True on at least one: lets all ranks take the
    same branch (skip a non-finite step, stop on Ctrl-C) so none waits for the others."""
    if not _active():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` as rank ``src`` has it (a path, a small dict), on every process."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def file_on_every_rank(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file, as every process sees it: on several nodes the run
    directory (a checkpoint to resume from) must be on a filesystem they all share, else a
    node would start afresh while the others resume. Raises :class:`TrainingError` naming
    the processes that do not see what the others see."""
    here = Path(path).is_file()
    if not _active():
        return here
    seen: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(seen, (here, socket.gethostname()))
    if all(found == here for found, _ in seen):
        return here
    missing = ", ".join(f"rank {r} on {host}" for r, (found, host) in enumerate(seen) if not found)
    raise TrainingError(
        f"{path} is not visible to {missing}: with several nodes, --work-dir must be on a "
        "filesystem every node shares (NFS, Lustre, ...)"
    )


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy the parameters and buffers of rank ``src``'s ``module`` into every process's."""
    if _active():
        for t in module.state_dict().values():
            dist.broadcast(t, src=src)


def wrap_model(model: nn.Module, ctx: DistContext, *, sync_bn: bool = False) -> nn.Module:
    """``model`` inside :class:`~torch.nn.parallel.DistributedDataParallel` when several
    processes train (unchanged when one does). ``sync_bn`` first turns every BatchNorm into a
    :class:`~torch.nn.SyncBatchNorm`, whose batch statistics span the global batch (same
    parameter and buffer names, so checkpoints load into the plain model). The conversion
    replaces modules in place; call :func:`unwrap` on the result for the model itself."""
    if not isinstance(sync_bn, bool):
        raise ConfigError(f"sync_bn must be True or False, got {sync_bn!r}")
    if not ctx.distributed:
        return model
    if sync_bn:
        if ctx.device.type != "cuda":
            raise ConfigError(
                "sync_bn=True needs CUDA GPUs (PyTorch's SyncBatchNorm does not run on the CPU); set sync_bn=False"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, gradient_as_bucket_view=True)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside DDP and/or ``torch.compile`` wrappers."""
    while True:
        if isinstance(module, DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module
