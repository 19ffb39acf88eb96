"""``cnnzoo study NAME``: train a shipped comparison of networks under one recipe.

``cnnzoo study efficient-cnn --budget cpu`` trains the efficient CNN families on CIFAR-10
(see :mod:`cnnzoo.analysis.study`) and writes the runs table and charts into
``{work_dir}/efficient-cnn-cpu/``. Running the same command again continues a study that
stopped and keeps the networks already trained.
"""

from __future__ import annotations

import argparse

from cnnzoo import rundir

HELP = "train a shipped comparison (e.g. efficient-cnn) under one recipe; write table and charts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cnnzoo.analysis.study import BUDGETS, STUDIES

    p.add_argument("name", choices=sorted(STUDIES), help="the study")
    p.add_argument(
        "--budget",
        choices=list(BUDGETS),
        default="cpu",
        help="what each network gets: "
        + "; ".join(f"{k}: {b.about}" for k, b in BUDGETS.items())
        + " (default: cpu)",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="the CIFAR-10 ImageFolder (train/<class>/, test/<class>/); default: "
        "$CNNZOO_DATA/cifar10-jpeg",
    )
    p.add_argument(
        "--work-dir",
        default="runs/studies",
        help="parent folder of the study's folder (default: runs/studies)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="only the networks whose model names match, e.g. 'shufflenet*' mobilenet_v2",
    )
    p.add_argument("--epochs", type=int, default=None, help="replace the budget's epochs")
    p.add_argument(
        "--cfg-options",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override keys of every network's config, e.g. optimizer.lr=0.1",
    )
    p.add_argument(
        "--progress", action="store_true", help="progress bars (default: one line per epoch)"
    )


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from cnnzoo.analysis.study import run_study

    command = shlex.join(["cnnzoo", *sys.argv[1:]]) if sys.argv[1:2] == ["study"] else ""
    out = run_study(
        args.name,
        args.budget,
        data=args.data,
        work_dir=args.work_dir,
        models=args.models,
        epochs=args.epochs,
        cfg_options=args.cfg_options,
        quiet=not args.progress,
        command=command,
    )
    print((out / "table.md").read_text(encoding="utf-8"), end="")
    print(f"study written to {out} (table.md/.csv/.json, {rundir.CURVES}, pareto_*.png)")
    return 0
