"""Time to accuracy (benchmark 3 of issue 4): run a speedrun config over several seeds, each as
its own ``cnnzoo train`` command timed from the command's start to its exit (Python start-up,
imports, data loading, training, the final test and the reports all count), and report the
test accuracy of each run and their mean, min and max.

The recipe is fixed: a speedrun config trains a set number of epochs on the whole training
set and tests the last epoch, so the test set never stops or selects anything.

    python benchmarks/speedrun.py configs/speedrun/mnist_99.py --data DIR \\
        [--seeds 5] [--target 99.0] [--output benchmarks/results/speedrun_mnist.md]
    python benchmarks/speedrun.py configs/speedrun/cifar10_94.py --data DIR \\
        --seeds 1 --budget 600
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import save_report

from cnnzoo.analysis.report import cpu_name


def _placeholders(argv: list[str]) -> list[str]:
    """The command line with this machine's paths as DIR, WORK and FILE, for the report."""
    names = {"--data": "DIR", "--work-dir": "WORK", "--output": "FILE"}
    return [names.get(prev, arg) for prev, arg in zip(["", *argv], argv, strict=False)]


def run_once(config: str, seed: int, data: str, work_dir: str, extra: list[str]) -> dict:
    """One timed ``cnnzoo train`` command; returns its time, summary and load averages."""
    exe = shutil.which("cnnzoo")
    cmd = [exe] if exe else [sys.executable, "-m", "cnnzoo"]
    cmd += [
        "train",
        config,
        "--work-dir",
        work_dir,
        "--quiet",
        "--cfg-options",
        f"seed={seed}",
        *extra,
    ]
    env = dict(os.environ, CNNZOO_DATA=data)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed}: `{shlex.join(cmd)}` failed:\n{proc.stderr.strip()[-2000:]}")
    run_dir = next(
        line.split(":", 1)[1].strip()
        for line in proc.stdout.splitlines()
        if line.startswith("run dir:")
    )
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    return dict(
        seed=seed,
        time=elapsed,
        summary=summary,
        # as a reader types it: no interpreter or install path of this machine
        command=shlex.join(
            ["CNNZOO_DATA=DIR", "cnnzoo"]
            + ["WORK" if arg == work_dir else arg for arg in cmd[cmd.index("train") :]]
        ),
        load=(load_before, os.getloadavg()[0]),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--data", required=True, help="CNNZOO_DATA for the runs")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--target", type=float, default=None, help="test top-1 goal in percent")
    p.add_argument("--budget", type=float, default=None, help="time goal in seconds")
    p.add_argument("--work-dir", default=None, help="keep the runs here (default: a temp dir)")
    p.add_argument("--cfg-options", nargs="*", default=[], help="passed on to cnnzoo train")
    p.add_argument("--output", default=None, help="also write the report to this file")
    args = p.parse_args()

    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    extra = list(args.cfg_options)
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.work_dir or tmp
        runs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            runs.append(run_once(args.config, seed, args.data, work_dir, extra))
            r = runs[-1]
            print(f"  seed {seed}: {r['time']:.1f} s, test top1 {r['summary']['test/top1']:.2f}",
                  file=sys.stderr, flush=True)  # fmt: skip

    accs = [r["summary"]["test/top1"] for r in runs]
    times = [r["time"] for r in runs]
    first = runs[0]["summary"]
    out(f"## Speedrun: {Path(args.config).name}\n")
    out(f"- command (per seed): `{runs[0]['command']}`")
    out(f"- benchmark: `python {shlex.join(_placeholders(sys.argv))}`")
    out(f"- machine: {platform.platform()}; CPU: {cpu_name()}, {os.cpu_count()} cores; "
        f"device {first['device']}; model {first['model']} ({first['params']:,} parameters), "
        f"{first['epochs']} epochs")  # fmt: skip
    out("- time: from the command's start to its exit (start-up, data, training, test, reports)\n")
    out("| seed | time s | training s | test top-1 % | load avg before / after |")
    out("|---|---|---|---|---|")
    for r in runs:
        s = r["summary"]
        out(f"| {r['seed']} | {r['time']:.1f} | {s['train_time_s']:.1f} | {s['test/top1']:.2f} | "
            f"{r['load'][0]:.2f} / {r['load'][1]:.2f} |")  # fmt: skip
    mean_acc, mean_time = statistics.mean(accs), statistics.mean(times)
    out(f"| **mean** | **{mean_time:.1f}** (min {min(times):.1f}, max {max(times):.1f}) | "
        f"{statistics.mean(r['summary']['train_time_s'] for r in runs):.1f} | "
        f"**{mean_acc:.2f}** (min {min(accs):.2f}, max {max(accs):.2f}) | |")  # fmt: skip
    verdicts = []
    if args.target is not None:
        verdicts.append(
            f"accuracy goal {args.target}%: {'met' if mean_acc >= args.target else 'NOT met'}"
        )
    if args.budget is not None:
        verdicts.append(
            f"time goal {args.budget:.0f} s: {'met' if mean_time <= args.budget else 'NOT met'}"
        )
    if verdicts:
        out("\n- " + "; ".join(verdicts))
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
