"""Training-step time of ResNet-50 (cnnzoo's) at one batch size, in bf16 autocast with
channels_last, on one device: forward, cross-entropy, backward and a fused SGD step, timed
after warm-up steps with the device synchronised around each timed block.

    python benchmarks/resnet50_step.py --device cuda --batch-size 256 --steps 30
    python benchmarks/resnet50_step.py --device cpu --batch-size 2 --size 64 --steps 2  # smoke
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from cnnzoo import create_model
from cnnzoo.machine import resolve_device


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--size", type=int, default=224, help="image side")
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--warmup", type=int, default=10)
    args = p.parse_args()

    device = resolve_device(args.device)
    model = create_model(args.model, num_classes=1000).to(device, memory_format=torch.channels_last)
    fused = device.type == "cuda"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=fused)
    images = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (args.batch_size,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{args.model} training step, batch {args.batch_size} at {args.size}x{args.size}, "
        f"bf16 autocast + channels_last on {name}: median {median * 1000:.1f} ms "
        f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, {args.steps} steps), "
        f"{args.batch_size / median:,.0f} images/s"
    )


if __name__ == "__main__":
    main()
