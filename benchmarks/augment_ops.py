"""Images per second of each augmentation op: cnnzoo's whole-batch op against
torchvision.transforms.v2 applied per sample (the usual way: in a Dataset, one image at a
time), on the same uint8 images; kornia's batched op as a third column when kornia is
installed.

Both sides start from uint8 images and end with floats on [0, 1], as a training pipeline
must: cnnzoo turns the batch into floats and augments it whole (what its loader does);
torchvision augments each uint8 image (its fastest path), then ``ToDtype(float32,
scale=True)``, and the results are stacked (what a DataLoader's collation does). The sides run in turns (A, B, A, B, ...) so that machine load hits them
alike; the figure is the median over repeats, and the ratio is cnnzoo images/s over
torchvision's (> 1: cnnzoo faster). The images are seeded random noise: none of these ops
takes longer on one picture than another.

    python benchmarks/augment_ops.py [--cases cifar imagenet] [--repeats 5] [--threads 1]
        [--clock cpu] [--output benchmarks/results/augment_ops.md]
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
import torchvision.transforms.v2 as T
from _report import save_report

from cnnzoo.data import AugContext, build_pipeline

try:
    import kornia.augmentation as K
except ImportError:
    K = None

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}

# case: (batch, side, [(label, cnnzoo op, torchvision transform, kornia op or None), ...])
CASES: dict[str, tuple[int, int, list[tuple]]] = {
    "cifar": (
        512,
        32,
        [
            (
                "RandomCrop(32, padding=4)",
                dict(type="RandomCrop", size=32, padding=4),
                lambda: T.RandomCrop(32, padding=4),
                lambda: K.RandomCrop((32, 32), padding=4),
            ),
            (
                "RandomHorizontalFlip()",
                dict(type="RandomHorizontalFlip"),
                lambda: T.RandomHorizontalFlip(),
                lambda: K.RandomHorizontalFlip(),
            ),
            (
                "ColorJitter(0.4, 0.4, 0.4, 0.1)",
                dict(type="ColorJitter", brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
                lambda: T.ColorJitter(0.4, 0.4, 0.4, 0.1),
                lambda: K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0),
            ),
            (
                "RandomErasing()",
                dict(type="RandomErasing"),
                lambda: T.RandomErasing(),
                lambda: K.RandomErasing(),
            ),
            (
                "RandAugment()",
                dict(type="RandAugment"),
                lambda: T.RandAugment(),
                lambda: K.auto.RandAugment(n=2, m=9),
            ),
            (
                "TrivialAugmentWide()",
                dict(type="TrivialAugmentWide"),
                lambda: T.TrivialAugmentWide(),
                lambda: K.auto.TrivialAugment(),
            ),
            (
                "AutoAugment('cifar10')",
                dict(type="AutoAugment", policy="cifar10"),
                lambda: T.AutoAugment(T.AutoAugmentPolicy.CIFAR10),
                lambda: K.auto.AutoAugment("cifar10"),
            ),
        ],
    ),
    "imagenet": (
        32,
        224,
        [
            (
                "RandomResizedCrop(224)",
                dict(type="RandomResizedCrop", size=224),
                lambda: T.RandomResizedCrop(224, antialias=False),
                lambda: K.RandomResizedCrop((224, 224)),
            ),
            (
                "ColorJitter(0.4, 0.4, 0.4, 0.1)",
                dict(type="ColorJitter", brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
                lambda: T.ColorJitter(0.4, 0.4, 0.4, 0.1),
                lambda: K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0),
            ),
            (
                "RandomErasing()",
                dict(type="RandomErasing"),
                lambda: T.RandomErasing(),
                lambda: K.RandomErasing(),
            ),
            (
                "RandAugment()",
                dict(type="RandAugment"),
                lambda: T.RandAugment(),
                lambda: K.auto.RandAugment(n=2, m=9),
            ),
            (
                "TrivialAugmentWide()",
                dict(type="TrivialAugmentWide"),
                lambda: T.TrivialAugmentWide(),
                lambda: K.auto.TrivialAugment(),
            ),
            (
                "AutoAugment('imagenet')",
                dict(type="AutoAugment", policy="imagenet"),
                lambda: T.AutoAugment(T.AutoAugmentPolicy.IMAGENET),
                lambda: K.auto.AutoAugment("imagenet"),
            ),
        ],
    ),
}


def runners(spec: dict, tv, kornia_op, x: torch.Tensor) -> dict[str, Callable[[], None]]:
    """One call of each side on the uint8 batch ``x``."""
    pipe = build_pipeline([spec], AugContext(num_classes=10, mean=(0.5, 0.5, 0.5)))
    y = torch.zeros(len(x), dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    per_sample = T.Compose([tv, T.ToDtype(torch.float32, scale=True)])
    sides = {
        "cnnzoo": lambda: pipe(x.float().div_(255.0), y, g),
        "torchvision": lambda: torch.stack([per_sample(img) for img in x]),
    }
    if kornia_op is not None:
        sides["kornia"] = lambda: kornia_op(x.float().div_(255.0))
    return sides


def measure(sides: dict[str, Callable[[], None]], repeats: int, clock) -> dict[str, float]:
    """Median seconds per call of each side, the sides taking turns."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for fn in sides.values():
        fn()  # warm-up
    names = list(sides)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = clock()
            sides[name]()
            times[name].append(clock() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--clock",
        choices=list(CLOCKS),
        default="cpu",
        help="cpu: the process's CPU time (steadier on a shared machine; use with --threads 1)",
    )
    p.add_argument("--no-kornia", action="store_true", help="leave kornia out even if installed")
    p.add_argument("--output", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    use_kornia = K is not None and not args.no_kornia
    kornia_note = (
        f"kornia {__import__('kornia').__version__} (batched, float input)"
        if use_kornia
        else "kornia not installed"
    )
    lines = [
        "## Augmentation ops: cnnzoo whole-batch vs torchvision v2 per sample (CPU)\n",
        f"- command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`",
        f"- machine: {platform.platform()}, {os.cpu_count()} cores, {args.threads} threads; "
        f"torch {torch.__version__}, torchvision {__import__('torchvision').__version__}, "
        f"{kornia_note}; load average at start {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"- median of {args.repeats} interleaved calls per side, {args.clock} clock; "
        "ratio = cnnzoo images/s / torchvision images/s\n",
        "| images | op | cnnzoo img/s | torchvision img/s | ratio | kornia img/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for case in args.cases:
        batch, side, ops = CASES[case]
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (batch, 3, side, side), generator=g, dtype=torch.uint8)
        for label, spec, tv, kornia_op in ops:
            sides = runners(spec, tv(), kornia_op() if use_kornia else None, x)
            secs = measure(sides, args.repeats, CLOCKS[args.clock])
            rate = {name: batch / s for name, s in secs.items()}
            k = f"{rate['kornia']:,.0f}" if "kornia" in rate else "-"
            lines.append(
                f"| {batch}x{side}x{side} | {label} | {rate['cnnzoo']:,.0f} | "
                f"{rate['torchvision']:,.0f} | {rate['cnnzoo'] / rate['torchvision']:.2f}x | {k} |"
            )
            print(lines[-1], flush=True)
    lines.append(f"\n- load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(lines[-1])
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
