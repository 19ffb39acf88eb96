"""One pass over MNIST's 60,000 training images at batch 64, no model: cnnzoo's device loader
against torchvision's ``datasets.MNIST`` + ToTensor + Normalize + DataLoader.

    python benchmarks/data_pass.py --root DIR [--device cpu|cuda] [--workers 2]

Prints the median of ``--repeats`` passes for each (the one-off loading is timed apart).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_pass(batches, device: torch.device) -> tuple[float, int]:
    _sync(device)
    t = time.perf_counter()
    n = 0
    for x, y in batches:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        n += y.shape[0]
    _sync(device)
    return time.perf_counter() - t, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--root",
        default=os.path.expanduser(os.environ.get("CNNZOO_DATA") or "~/.cache/cnnzoo/data"),
        help="holds MNIST/raw/ (default: $CNNZOO_DATA)",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="torchvision DataLoader workers")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    args = p.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    from cnnzoo.data import build_data

    t = time.perf_counter()
    bundle = build_data(
        dict(type="mnist", root=args.root, download=False, val_split=0.0, loader="device",
             train=dict(batch_size=args.batch_size, pipeline=[]), val=dict(batch_size=512),
             test=dict(batch_size=512)),
        device=device, seed=0,
    )  # fmt: skip
    load_s = time.perf_counter() - t
    ours = []
    for epoch in range(args.repeats):
        bundle.train.set_epoch(epoch)
        s, n = timed_pass(bundle.train, device)
        ours.append(s)

    import torchvision.datasets as tvd
    import torchvision.transforms as T
    from torch.utils.data import DataLoader

    t = time.perf_counter()
    tf = T.Compose([T.ToTensor(), T.Normalize(bundle.mean, bundle.std)])
    ds = tvd.MNIST(args.root, train=True, download=False, transform=tf)
    loader = DataLoader(
        ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
    )  # fmt: skip
    tv_load_s = time.perf_counter() - t
    theirs = [timed_pass(loader, device)[0] for _ in range(args.repeats)]

    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(
        f"device: {device}, {n} images per pass, batch {args.batch_size}, median of {args.repeats}"
    )
    print(
        f"cnnzoo device loader : {mo:7.3f} s/pass ({n / mo:9.0f} img/s) [{min(ours):.3f} s], one-off load {load_s:.2f} s; passes {[round(v, 3) for v in ours]}"
    )
    print(
        f"torchvision + {args.workers} workers: {mt:7.3f} s/pass ({n / mt:9.0f} img/s) [{min(theirs):.3f} s], one-off load {tv_load_s:.2f} s; passes {[round(v, 3) for v in theirs]}"
    )
    print(f"speed-up: {mt / mo:.1f}x")


if __name__ == "__main__":
    main()
