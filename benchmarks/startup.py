"""Start-up: the time from ``cnnzoo train [CONFIG]`` to its first training step, in phases.

Each repeat is a fresh process that runs the command as the console script does, with timers
around the set-up functions of the trainer; the process ends at the first optimizer step.
Phases: Python start-up (process start to the driver's first line), torch's import, cnnzoo's
own modules, the config, the data, the model, the optimizer (which imports torch._dynamo:
``torch.optim.Optimizer`` methods are wrapped by ``torch._disable_dynamo``, and every step of
``_use_grad_for_differentiable`` imports it), the rest of the set-up (schedule, run directory,
callbacks) and the first step.

    python benchmarks/startup.py [CONFIG] [--repeats 5] [--cfg-options K=V ...] [--output FILE]

CONFIG: default the quick start (``cnnzoo train`` with no config).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _report import save_report

PHASES = (
    "python start-up",
    "torch import",
    "cnnzoo modules",
    "config",
    "data",
    "model",
    "optimizer",
    "rest of set-up",
    "first step",
)

# the driver of one repeat: marks the end of each phase, prints them as JSON at the first step
DRIVER = r"""
import json, os, sys, time
marks = [("python start-up", time.time())]
from cnnzoo import cli
cli.before_torch()
cli.before_torch = lambda: None  # done: the load's window spans torch's import, as in the CLI
import torch
marks.append(("torch import", time.time()))
import cnnzoo.commands.train as train_command
from cnnzoo.engine import trainer
marks.append(("cnnzoo modules", time.time()))

def timed(module, name, phase):
    inner = getattr(module, name)
    def wrapper(*args, **kwargs):
        out = inner(*args, **kwargs)
        marks.append((phase, time.time()))
        return out
    setattr(module, name, wrapper)

timed(train_command, "load_config", "config")
timed(trainer, "build_data", "data")
timed(trainer, "build_model", "model")
timed(trainer, "build_optimizer", "optimizer")
defaults = trainer.default_callbacks

class FirstStep(trainer.Callback):
    def on_fit_start(self, run):
        marks.append(("rest of set-up", time.time()))
    def on_train_batch_end(self, run, info):
        marks.append(("first step", time.time()))
        print("MARKS " + json.dumps(dict(start=START, marks=marks, threads=torch.get_num_threads())))
        sys.stdout.flush()
        os._exit(0)

trainer.default_callbacks = lambda run: defaults(run) + [FirstStep()]
sys.exit(cli.main(sys.argv[1:]))
"""


def one_run(argv: list[str]) -> dict[str, float]:
    """The seconds of each phase of one fresh process."""
    start = time.time()
    driver = DRIVER.replace("START", repr(start))
    proc = subprocess.run(
        [sys.executable, "-c", driver, *argv], capture_output=True, text=True, check=False
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("MARKS ")), None)
    if line is None:
        raise SystemExit(f"`cnnzoo {' '.join(argv)}` did not reach a step:\n{proc.stderr[-2000:]}")
    data = json.loads(line[len("MARKS ") :])
    times, last = {}, data["start"]
    for phase, t in data["marks"]:
        times[phase] = times.get(phase, 0.0) + t - last
        last = t
    times["total"] = last - data["start"]
    times["threads"] = data["threads"]
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--work-dir", default="/tmp/cnnzoo-startup-bench")
    p.add_argument("--cfg-options", nargs="*", default=[])
    p.add_argument("--output", default=None)
    args = p.parse_args()
    argv = ["train", *([args.config] if args.config else [])]
    argv += ["--work-dir", args.work_dir, "--quiet"]
    argv += ["--cfg-options", *args.cfg_options] if args.cfg_options else []
    runs, loads = [], []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        runs.append(one_run(argv))
    loads.append(os.getloadavg()[0])
    lines = [
        f"## Start-up: `cnnzoo {' '.join(argv[:2] if args.config else argv[:1])}` to its first "
        "training step",
        "",
        f"- benchmark: `python benchmarks/startup.py {' '.join(sys.argv[1:])}`",
        f"- {args.repeats} fresh processes; {os.cpu_count()} CPUs; 1-min load average "
        f"{min(loads):.2f}-{max(loads):.2f}; torch threads "
        f"{sorted({int(r['threads']) for r in runs})}",
        "",
        "| phase | median s | min | max |",
        "|---|---:|---:|---:|",
    ]
    for phase in (*PHASES, "total"):
        values = [r.get(phase, 0.0) for r in runs]
        lines.append(
            f"| {phase} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        )
    print("\n".join(lines))
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
