"""Several processes, one model: data-parallel training with PyTorch's DistributedDataParallel.

``torchrun --nproc-per-node N -m cnnzoo train CONFIG`` starts N copies of the trainer;
``cnnzoo train CONFIG --gpus N`` runs that command for you (:func:`launch`). Each process
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

Batch size semantics (mmpretrain's ``8xb16`` naming): ``data.train.batch_size`` is the batch
of ONE process; the global batch is ``batch_size x world_size``. The learning rate is the
config's as written unless ``auto_scale_lr = dict(enable=True, base_batch_size=B)`` asks for
the linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): every learning
rate of the config (``optimizer.lr``, ``param_scheduler.max_lr``/``min_lr``) is multiplied by
``global batch / B`` (B = None: the config's own batch, so the factor is the process count).
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
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
LR_KEYS = {"optimizer": ("lr",), "param_scheduler": ("max_lr", "min_lr")}


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


# ---- batch size and learning-rate scaling --------------------------------------------------


def global_batch_size(cfg: Mapping, world_size: int) -> int:
    """``data.train.batch_size`` (per process) x ``world_size``."""
    return int(cfg["data"]["train"]["batch_size"]) * int(world_size)


def lr_scale(cfg: Mapping, world_size: int) -> float:
    """The factor of the linear scaling rule, ``global batch / auto_scale_lr.base_batch_size``,
    when ``auto_scale_lr.enable`` is True (``base_batch_size=None``: the config's own batch,
    i.e. the learning rate was tuned for one process); else 1."""
    auto = cfg.get("auto_scale_lr") or {}
    if not isinstance(auto, Mapping) or set(auto) - {"enable", "base_batch_size"}:
        raise ConfigError(
            f"auto_scale_lr must be dict(enable=True|False, base_batch_size=N), got {auto!r}"
        )
    enable = auto.get("enable", False)
    if not isinstance(enable, bool):
        raise ConfigError(f"auto_scale_lr.enable must be True or False, got {enable!r}")
    if not enable:
        return 1.0
    base = auto.get("base_batch_size")
    if base is None:  # the learning rate was tuned for one process
        return float(world_size)
    if isinstance(base, bool) or not isinstance(base, int) or base < 1:
        raise ConfigError(
            f"auto_scale_lr.base_batch_size must be a positive integer (the batch the lr was tuned for), got {base!r}"
        )
    return global_batch_size(cfg, world_size) / base


def scaled_lr_sections(cfg: Mapping, factor: float) -> dict[str, dict | None]:
    """Copies of ``optimizer`` and ``param_scheduler`` with every learning rate in them
    (``lr``, ``max_lr``, ``min_lr``) multiplied by ``factor``; the config itself is left as
    written, so the saved config stays the one the user gave."""
    out: dict[str, dict | None] = {}
    for section, keys in LR_KEYS.items():
        part = cfg.get(section)
        if part is None:
            out[section] = None
            continue
        part = dict(part)
        for key in keys:
            value = part.get(key)
            if isinstance(value, list | tuple):
                part[key] = [v * factor for v in value]
            elif isinstance(value, int | float) and not isinstance(value, bool):
                part[key] = value * factor
        out[section] = part
    return out


# ---- launching -----------------------------------------------------------------------------


def torchrun_command(args: argparse.Namespace, nproc: int) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N -m cnnzoo train ...``
    with the user's own train arguments (without ``--gpus``)."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "cnnzoo",
        "train",
    ]
    if args.config:
        cmd.append(str(args.config))
    if args.cfg_options:
        cmd += ["--cfg-options", *args.cfg_options]
    if args.resume:
        cmd += ["--resume"] if args.resume == "auto" else ["--resume", str(args.resume)]
    if args.work_dir:
        cmd += ["--work-dir", str(args.work_dir)]
    if args.quiet:
        cmd.append("--quiet")
    return cmd


def launch(args: argparse.Namespace) -> int:
    """``cnnzoo train ... --gpus N``: run the same training under torchrun with one process
    per GPU; returns torchrun's exit status."""
    n = int(args.gpus)
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n > visible:
        hint = (
            "no GPU is visible; for N CPU processes run: torchrun --nproc-per-node N -m cnnzoo train CONFIG "
            "--cfg-options device=cpu"
            if visible == 0
            else f"use --gpus {visible} or fewer"
        )
        raise ConfigError(f"--gpus {n} asks for {n} GPUs but {visible} are visible; {hint}")
    return run_forwarding_signals(torchrun_command(args, n))


def run_forwarding_signals(cmd: list[str]) -> int:
    """Run ``cmd`` and wait for it, passing SIGTERM and SIGHUP on (a cluster's preemption
    notice reaches the training processes through torchrun, which saves and stops them);
    SIGINT is left to the terminal, which sends Ctrl-C to the whole process group itself.
    Returns the command's exit status, or 128 + signum when a passed-on signal ended it."""
    proc = subprocess.Popen(cmd)
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 + received[0] if received and code != 0 else code
