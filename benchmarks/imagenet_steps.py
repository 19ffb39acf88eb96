"""Training images/s of an ImageNet recipe on the streaming path, launched as users launch it:
``torchrun ... -m cnnzoo train configs/imagenet/...`` (NCCL on GPUs, gloo on CPUs), once with
the JPEGs decoded in the DataLoader workers (``data.decode=workers``) and once on the training
device (``data.decode=device``: nvJPEG on CUDA).

    python benchmarks/imagenet_steps.py --cifar DIR/cifar10-jpeg.tar.gz --images 20000 \\
        --gpus 1 --batch-size 256 --workers 12 --epochs 3 --output benchmarks/results/imagenet_gpu.md

The images are :mod:`stream_loader`'s (CIFAR-10 JPEGs upsampled to ImageNet's mean size, in
``--folder``); the recipe (ResNet-50's by default) runs with its own model, optimiser, schedule,
AMP and transforms, changed only where the data asks it: ``data.type=imagefolder`` with the
folder's 10 classes, the batch per process, the workers, the epochs, 2% of the images held out
for validation and no TensorBoard. The figure is the training images of the last epoch over
its time (the epoch row of metrics.csv, which includes validating the 2%; the first epochs warm
up the workers, cuDNN and the page cache), all processes together. On a CPU (``--device cpu``) the same command runs as a smoke test of the
script, with a small model and images.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from _report import save_report, shown_command
from stream_loader import write_folder  # the same JPEGs as the loader benchmark

RECIPE = "configs/imagenet/resnet50_sgd-step_8xb32_90e_imagenet.py"
VAL_SPLIT = 0.02  # a run needs a split to score; its evaluation is inside the epoch's time


def run(args: argparse.Namespace, folder: Path, decode: str, work_dir: Path) -> float:
    """images/s of the last epoch of one ``torchrun ... cnnzoo train`` with ``data.decode``."""
    options = [
        "data.type=imagefolder",
        "model.num_classes=10",
        f"data.root={folder}",
        f"data.decode={decode}",
        f"data.num_workers={args.workers}",
        f"data.train.batch_size={args.batch_size}",
        f"data.val_split={VAL_SPLIT}",
        f"train_cfg.max_epochs={args.epochs}",
        "param_scheduler.warmup_epochs=0",
        "log.tensorboard=False",
        f"device={args.device}",
        f"work_dir={work_dir}",
        *args.cfg_options,
    ]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={args.gpus}", "-m", "cnnzoo", "train", args.recipe, "--quiet",
        "--cfg-options", *options,
    ]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    (metrics,) = work_dir.glob("*/*/metrics.csv")  # work_dir/CONFIG/TIMESTAMP/
    with open(metrics, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("time")]
    return args.train_images / float(rows[-1]["time"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar", required=True, help="cifar10-jpeg.tar.gz")
    p.add_argument("--folder", default="/tmp/cnnzoo-stream-bench", help="where the JPEGs go")
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--size", default="400x350", help="WxH of the upsampled JPEGs")
    p.add_argument("--recipe", default=RECIPE)
    p.add_argument("--gpus", type=int, default=1, help="processes (one per GPU)")
    p.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test")
    p.add_argument("--batch-size", type=int, default=256, help="per process")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers per process")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--decode", nargs="+", default=["workers", "device"])
    p.add_argument("--cfg-options", nargs="*", default=[], help="more recipe overrides")
    p.add_argument("--output", default=None, help="also write the report there")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    count = write_folder(Path(args.cifar), Path(args.folder), args.images, (w, h))
    # the processes train on all the images but the held-out ones (the partial batch included)
    args.train_images = count - round(count * VAL_SPLIT)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for decode in args.decode:
            figures[decode] = run(args, Path(args.folder), decode, Path(tmp) / decode)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "no GPU"
    lines = [
        f"# Training images/s: {Path(args.recipe).stem}",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}",
        f"- {count} JPEGs of {w}x{h}; {args.gpus} process(es) x batch {args.batch_size}, "
        f"{args.workers} workers each; last of {args.epochs} epochs",
        f"- command: `{shown_command(args.cifar, args.folder)}`",
        "",
        "| data.decode | images/s |",
        "| --- | ---: |",
        *(f"| {d} | {v:.0f} |" for d, v in figures.items()),
    ]
    print("\n".join(lines))
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
