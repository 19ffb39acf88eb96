"""``cnnzoo train [CONFIG]``: train from a config; with no config, the offline quick start.

``--gpus N`` (N > 1) re-launches the same command under ``torch.distributed.run`` with one
process per GPU, passing SIGTERM/SIGHUP on so that a preempted job saves and can resume.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import torch

from cnnzoo import distributed
from cnnzoo.config import load_config
from cnnzoo.engine.runs import resume_config
from cnnzoo.engine.trainer import train
from cnnzoo.errors import ConfigError
from cnnzoo.signals import STOP_SIGNALS, handling

HELP = "train a model from a config (no config: the offline quick start)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config",
        nargs="?",
        default=None,
        help="a config file, or the name of a shipped config",
    )
    p.add_argument(
        "--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys"
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="RUN_DIR",
        help="continue the latest run of CONFIG, or RUN_DIR, with the run's own config "
        "(--cfg-options apply on top)",
    )
    p.add_argument(
        "--work-dir", default=None, help="parent folder of run directories (default: runs/)"
    )
    p.add_argument(
        "--gpus", type=int, default=None, help="launch torchrun with this many processes"
    )
    p.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.gpus is not None and args.gpus > 1 and "LOCAL_RANK" not in os.environ:
        return launch(args)
    if args.gpus is not None and args.gpus < 1:
        raise ConfigError(f"--gpus must be at least 1, got {args.gpus}")
    resume = args.resume
    if resume is None:
        cfg = load_config(args.config, args.cfg_options)
        if args.work_dir:
            cfg.work_dir = args.work_dir
    else:
        cfg, resume = resume_config(args.config, resume, args.cfg_options, args.work_dir)
    try:
        train(cfg, resume=resume, quiet=args.quiet, overrides=args.cfg_options or ())
    finally:
        distributed.cleanup()  # leave the process group torchrun's processes joined
    return 0


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
    """``cnnzoo train ... --gpus N``: the same training under torchrun with one process per
    GPU; returns torchrun's exit status."""
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

    passed_on = [s for s in STOP_SIGNALS if s != signal.SIGINT]
    with handling(passed_on, forward), handling([signal.SIGINT], signal.SIG_IGN):
        code = proc.wait()
    return 128 + received[0] if received and code != 0 else code
