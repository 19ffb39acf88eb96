"""``torch.compile`` for training on the CPU, one model per family: the compile time, the step
time against the eager step, and the steps after which compiling pays for itself.

Each model trains in the engine's default form (fp32, channels_last, SGD with momentum) on a
fixed random batch at the input and batch of ``channels_last.py``'s table. Eager: the median
step over ``--steps`` steps after one warm-up step. Compiled: ``torch.compile(model)`` (the
engine's ``compile=True``); the first step's time, less an eager step, is the compile time;
then the median step over ``--steps``. Break-even: compile time / (eager - compiled step),
the steps a run must take before compiling saves time (never, when compiled is not faster).

    python benchmarks/compile_families.py [--models lenet5 resnet20 ...] [--steps 10]
        [--output benchmarks/results/compile_families.md]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from _report import save_report
from channels_last import MODELS

import cnnzoo


def trainer(name: str, compiled: bool):
    """A function that takes one training step and returns its seconds."""
    torch.manual_seed(0)
    side, batch = MODELS[name]
    kwargs = {"img_size": side} if name.startswith("mixer") else {}
    in_chans = 1 if name == "lenet5" else 3
    model = cnnzoo.create_model(name, num_classes=10, in_chans=in_chans, **kwargs)
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, in_chans, side, side).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model) if compiled else model

    def step() -> float:
        start = time.perf_counter()
        loss = F.cross_entropy(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def measure(name: str, steps: int) -> dict[str, float]:
    eager = trainer(name, compiled=False)
    eager()  # warm-up: allocator, oneDNN primitive caches
    eager_s = statistics.median(eager() for _ in range(steps))
    compiled = trainer(name, compiled=True)
    first = compiled()
    compiled_s = statistics.median(compiled() for _ in range(steps))
    compile_s = max(0.0, first - eager_s)
    saved = eager_s - compiled_s
    return dict(
        eager_ms=eager_s * 1000,
        compiled_ms=compiled_s * 1000,
        compile_s=compile_s,
        speedup=eager_s / compiled_s,
        break_even=compile_s / saved if saved > 0 else math.inf,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--output", default=None)
    args = p.parse_args()
    lines = [
        "## torch.compile for training on the CPU, one model per family",
        "",
        f"- benchmark: `python benchmarks/compile_families.py {shlex.join(sys.argv[1:])}`",
        f"- machine: {platform.platform()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}; 1-min load average at the start {os.getloadavg()[0]:.2f}",
        f"- fp32, channels_last, SGD; median of {args.steps} steps each",
        "",
        "| model | input | batch | eager ms/step | compiled ms/step | speed-up | compile s "
        "| break-even steps |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in args.models:
        side, batch = MODELS[name]
        r = measure(name, args.steps)
        even = "never" if math.isinf(r["break_even"]) else f"{r['break_even']:,.0f}"
        lines.append(
            f"| {name} | {side}x{side} | {batch} | {r['eager_ms']:.1f} | {r['compiled_ms']:.1f} "
            f"| {r['speedup']:.2f}x | {r['compile_s']:.1f} | {even} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
        torch._dynamo.reset()  # each model compiles from nothing
    print("\n".join(lines))
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
