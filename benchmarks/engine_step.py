"""The engine's training step before and after its redesign, and what ``sync_every`` saves.

Each variant trains the shipped config in a fresh process for ``--warmup + --steps``
optimizer steps and reports the median wall time of one step (between two consecutive
step callbacks: data, forward, loss, backward, step and the callbacks themselves). Variants:

* ``before``: the engine as it was at ``--before-rev`` (one long ``train()``; a git worktree
  of that commit made by this script), which read the loss on the host every step;
* ``after``: this checkout, ``sync_every=1`` (the default: the same per-step checks);
* ``after-sync50``: this checkout, ``sync_every=50`` (the loss read every 50 steps).

The variants run in turns (A, B, C, A, B, C, ...) so that machine load hits all alike.

    python benchmarks/engine_step.py --mnist-root DIR --cifar-root DIR/cifar10-jpeg \\
        [--cases lenet5_mnist resnet14_cifar10] [--repeats 3] [--steps 60] \\
        [--output benchmarks/results/engine_step.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import save_report

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "lenet5_mnist": ("lenet5_b128_20e_mnist.py", "mnist"),
    "resnet14_cifar10": ("resnet14_adam-plateau_b64_es5_cifar10.py", "cifar"),
}

# Run in the child: train until enough steps are timed, then stop by raising StopTiming.
CHILD = r"""
import json, os, sys, time
from cnnzoo.config import load_config
from cnnzoo.engine import trainer

config, options, warmup, steps, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
times = []

class StopTiming(Exception):
    pass

def hook(event, info):
    if event != "step":
        return
    times.append(time.perf_counter())
    if len(times) > warmup + steps:
        raise StopTiming

cfg = load_config(config, options)
kw = "callbacks" if "callbacks" in trainer.train.__wrapped__.__code__.co_varnames else "hooks"
try:
    trainer.train(cfg, quiet=True, **{kw: [hook]})
except StopTiming:
    pass
step = sorted(b - a for a, b in zip(times[warmup:], times[warmup + 1:]))
with open(out + ".tmp", "w") as f:  # then renamed: the parent never reads half of it
    json.dump(dict(median=step[len(step) // 2], n=len(step)), f)
os.replace(out + ".tmp", out)
"""


def run_variant(src: Path, case: str, options: dict, args, work: Path) -> float:
    config, _ = CASES[case]
    out = work / "out.json"
    # each engine keeps its own cache folder: their decoded-image caches differ in format
    cache = work / "cache" / src.parent.name
    env = dict(
        os.environ,
        PYTHONPATH=str(src),
        OMP_NUM_THREADS=str(args.threads),
        CNNZOO_CACHE=str(cache),
    )
    cmd = [
        sys.executable,
        "-c",
        CHILD,
        config,
        json.dumps(options),
        str(args.warmup),
        str(args.steps),
        str(out),
    ]
    subprocess.run(cmd, env=env, check=True, cwd=work, capture_output=True)
    return json.loads(out.read_text())["median"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist-root", required=True, help="folder holding MNIST/raw/")
    p.add_argument("--cifar-root", required=True, help="the CIFAR-10 ImageFolder (train/, test/)")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--before-rev", default="46ce88b", help="the commit of the old engine")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (1: steadiest)")
    p.add_argument("--output", default=None, help="write the Markdown table here")
    args = p.parse_args()
    roots = dict(mnist=args.mnist_root, cifar=args.cifar_root)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = tmp / "before"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before_rev],
            check=True,
            capture_output=True,
        )
        try:
            rows = []
            for case in args.cases:
                base = {
                    "data.root": roots[CASES[case][1]],
                    "data.download": False,
                    "work_dir": str(tmp / "runs"),
                    "log.tensorboard": False,
                    "device": "cpu",
                }
                if CASES[case][1] == "cifar":  # the JPEG copy, read as an ImageFolder
                    base.update(
                        {"data.type": "imagefolder", "data.in_chans": 3, "data.loader": "device"}
                    )
                variants = {
                    "before": (before / "src", base),
                    "after": (REPO / "src", base),
                    "after-sync50": (REPO / "src", {**base, "sync_every": 50}),
                }
                times: dict[str, list[float]] = {v: [] for v in variants}
                for _ in range(args.repeats):
                    for name, (src, options) in variants.items():
                        times[name].append(run_variant(src, case, options, args, tmp))
                        print(case, name, f"{times[name][-1] * 1e3:.2f} ms", flush=True)
                rows.append((case, {v: statistics.median(t) for v, t in times.items()}))
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)],
                check=False,
                capture_output=True,
            )
    lines = [
        "## The engine's training step, before and after the redesign",
        "",
        f"- command: `python benchmarks/engine_step.py {' '.join(sys.argv[1:])}`",
        f"- machine: {platform.platform()}, {os.cpu_count()} cores; {args.threads} torch threads;"
        f" load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- median step time over {args.steps} steps after {args.warmup} warm-up steps, median of "
        f"{args.repeats} interleaved runs; before = `{args.before_rev}`",
        "",
        "| case | before ms | after ms (sync_every=1) | after ms (sync_every=50) | after / before |",
        "|---|---|---|---|---|",
    ]
    for case, m in rows:
        cells = [m["before"], m["after"], m["after-sync50"]]
        ms = " | ".join(f"{t * 1e3:.2f}" for t in cells)
        lines.append(f"| {case} | {ms} | {m['after'] / m['before']:.3f} |")
    print("\n".join(lines))
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
