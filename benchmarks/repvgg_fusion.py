"""CPU inference latency of RepVGG before and after structural re-parameterisation.

Times the training form (three branches per block, in eval mode) against the fused form (one
3x3 conv per block) of the same weights, and prints a markdown table with the speed-up.

    python benchmarks/repvgg_fusion.py [--models repvgg_a0 repvgg_b0] [--repeats 10] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time

import torch

import cnnzoo


def median_latencies_ms(
    models: list[torch.nn.Module], x: torch.Tensor, repeats: int, warmup: int = 2
) -> list[float]:
    """Median wall time per forward pass of each model; the models take turns, run by run, so
    that a change in machine load affects them alike."""
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for _ in range(warmup):
            for model in models:
                model(x)
        for _ in range(repeats):
            for model, t in zip(models, times, strict=True):
                t0 = time.perf_counter()
                model(x)
                t.append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in times]


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["repvgg_a0", "repvgg_b0"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--image-sizes", nargs="+", type=int, default=[224, 32])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}; "
        f"torch {torch.__version__}; threads: {torch.get_num_threads()}"
    )
    print(f"command: python {' '.join(sys.argv)}")
    print(f"load average before the run (other processes share the CPU): {os.getloadavg()[0]:.2f}")
    print(
        f"median of {args.repeats} runs (the two forms alternating) after 2 warm-up runs, ms per batch\n"
    )
    print("| model | batch | input | training form (ms) | fused (ms) | speed-up | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    params = []
    for name in args.models:
        train_form = cnnzoo.create_model(name).eval()
        fused = copy.deepcopy(train_form)
        fused.reparameterize()
        params.append((name, _count(train_form), _count(fused)))
        for size in args.image_sizes:
            for batch in args.batch_sizes:
                x = torch.randn(batch, 3, size, size)
                t_train, t_fused = median_latencies_ms([train_form, fused], x, args.repeats)
                with torch.inference_mode():
                    diff = (train_form(x) - fused(x)).abs().max().item()
                print(
                    f"| {name} | {batch} | {size}x{size} | {t_train:.2f} | {t_fused:.2f} | "
                    f"{t_train / t_fused:.2f}x | {diff:.1e} |"
                )
    print()
    for name, n_train, n_fused in params:
        print(
            f"{name}: {n_train / 1e6:.2f}M parameters in training form, {n_fused / 1e6:.2f}M fused"
        )


if __name__ == "__main__":
    main()
