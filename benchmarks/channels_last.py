"""Training-step time in channels_last against the default (contiguous NCHW) memory format,
one model per family, CPU fp32: the measurement behind the engine's ``channels_last=True``
default.

Each model takes SGD steps on a fixed random batch; the two formats run in turns (A, B, A, B,
...) so that machine load hits both alike; the figure is the median over repeats of the mean
step time, and the speed-up is NCHW time / channels_last time (> 1: channels_last is faster).

    python benchmarks/channels_last.py [--models resnet20 mobilenet_v2 ...] [--repeats 3]
        [--steps 8] [--output benchmarks/results/channels_last.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _report import save_report

import cnnzoo

# model: (input side, batch); the smallest input each family is trained at in configs/
MODELS = {
    "lenet5": (28, 128),
    "resnet20": (32, 32),
    "resnet18": (32, 32),
    "preact_resnet18": (32, 32),
    "mobilenet_v2": (32, 32),
    "shufflenet_v2_x1_0": (64, 32),
    "densenet_bc_100_k12": (32, 32),
    "efficientnet_b0": (64, 32),
    "vgg11_bn": (32, 32),
    "squeezenet1_1": (64, 32),
    "repvgg_a0": (32, 32),
    "xception": (71, 16),
    "mixer_s16_224": (224, 16),
}


def stepper(name: str, channels_last: bool, steps: int) -> Callable[[], float]:
    torch.manual_seed(0)
    side, batch = MODELS[name]
    kwargs = {"img_size": side} if name.startswith("mixer") else {}
    in_chans = 1 if name == "lenet5" else 3
    model = cnnzoo.create_model(name, num_classes=10, in_chans=in_chans, **kwargs)
    x = torch.randn(batch, in_chans, side, side)
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def timed() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - start) / steps

    step()  # warm-up: allocator, oneDNN primitive caches
    return timed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--output", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    lines = [
        "## channels_last vs NCHW, CPU fp32 training step\n",
        f"- command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`",
        f"- machine: {platform.platform()}, {os.cpu_count()} cores, {args.threads} threads; "
        f"torch {torch.__version__}; load average at start "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- median of {args.repeats} interleaved repeats of {args.steps} SGD steps\n",
        "| model | input | batch | NCHW ms/step | channels_last ms/step | speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for name in args.models:
        nchw, cl = stepper(name, False, args.steps), stepper(name, True, args.steps)
        a, b = [], []
        for r in range(args.repeats):
            for fn, out in ((nchw, a), (cl, b)) if r % 2 == 0 else ((cl, b), (nchw, a)):
                out.append(fn())
        ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        side, batch = MODELS[name]
        lines.append(f"| {name} | {side}x{side} | {batch} | {ma:.1f} | {mb:.1f} | {ma / mb:.2f}x |")
        print(lines[-1], flush=True)
    lines.append(f"\n- load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(lines[-1])
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
