"""One epoch of decode + augment on full-size JPEGs: cnnzoo's streaming path (data.loader=
'stream', and tar shards) against torchvision's reference classification pipeline
(``datasets.ImageFolder`` + the v2 transforms of references/classification/presets.py +
``DataLoader``) with the same number of workers, batch and transform.

    python benchmarks/stream_loader.py --cifar DIR/cifar10-jpeg.tar.gz --images 3000 \\
        --workers 2 --repeats 3 --output benchmarks/results/stream_loader.md

The images: the first ``--images`` training images of the CIFAR-10 JPEG copy (spread evenly
over the classes), upsampled (bicubic) to ``--size`` (400x350, about ImageNet's mean size) and
saved as JPEGs of quality 90 in ``--folder`` (written once, reused after). Both sides read them
with the standard ImageNet training transform: RandomResizedCrop 224 (scale 0.08-1, bilinear,
antialiased) + horizontal flip, to float, normalised with ImageNet's mean/std; cnnzoo crops
per sample in the workers on uint8 and normalises the batch, torchvision crops PIL images and
normalises per sample in the workers. Each side's epoch ends with the last normalised float
batch in the main process. Epochs are timed in turns (ours, theirs, ...); the ratio is the
median over pairs of torchvision's time over cnnzoo's (> 1: cnnzoo faster).

With ``--device cuda`` every side ends its epoch with the batch on the GPU (torchvision's
DataLoader pins memory and copies), and two more rows time cnnzoo with ``data.decode='device'``:
the workers read the files and draw the crops, nvJPEG decodes each batch on the GPU, where the
crop, resize and normalisation run too.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tarfile
import time
from pathlib import Path

import torch
from _report import save_report, shown_command

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_folder(cifar: Path, folder: Path, n: int, size: tuple[int, int]) -> int:
    """Upsampled JPEGs in ``folder/train/<class>/``; returns how many there are."""
    from PIL import Image

    done = folder / ".complete"
    if done.is_file():
        return int(done.read_text())
    per_class: dict[str, int] = {}
    with tarfile.open(cifar) as tar:
        members = [m for m in tar if m.isfile() and "/train/" in m.name and m.name.endswith(".jpg")]
        classes = sorted({Path(m.name).parent.name for m in members})
        quota = -(-n // len(classes))
        for m in members:
            cls = Path(m.name).parent.name
            if per_class.get(cls, 0) >= quota:
                continue
            img = Image.open(tar.extractfile(m)).convert("RGB").resize(size, Image.BICUBIC)
            out = folder / "train" / cls / Path(m.name).name
            out.parent.mkdir(parents=True, exist_ok=True)
            img.save(out, quality=90)
            per_class[cls] = per_class.get(cls, 0) + 1
    total = sum(per_class.values())
    done.write_text(str(total))
    return total


def timed_epoch(batches, device: torch.device) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    for x, _ in batches:
        x = x.to(device, non_blocking=True)
        n += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar", required=True, help="cifar10-jpeg.tar.gz")
    p.add_argument("--folder", default="/tmp/cnnzoo-stream-bench", help="where the JPEGs go")
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--size", default="400x350", help="WxH of the upsampled JPEGs")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu, or cuda: batches end on the GPU")
    p.add_argument("--output", default=None, help="also write the report there")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    folder = Path(args.folder)
    load_before = os.getloadavg()
    count = write_folder(Path(args.cifar), folder, args.images, (w, h))

    import torchvision.datasets as tvd
    import torchvision.transforms.v2 as T
    from torch.utils.data import DataLoader

    from cnnzoo.data import build_data
    from cnnzoo.data.shards import write_shards

    shard_dir = folder / "shards"
    if not (shard_dir / "shards.json").is_file():
        write_shards(folder, shard_dir, shard_size=250)
    pipeline = [dict(type="RandomResizedCrop", size=224), dict(type="RandomHorizontalFlip")]
    cfg = dict(
        type="imagefolder", root=str(folder), image_size=224, mean=MEAN, std=STD,
        loader="stream", num_workers=args.workers, val_split=0.0,
        train=dict(batch_size=args.batch_size, pipeline=pipeline),
    )  # fmt: skip
    device = torch.device(args.device)
    shard_cfg = dict(cfg, format="shards", root=str(shard_dir))
    sides = {  # cnnzoo's sides; decoding in the workers unless named
        "stream": build_data(dict(cfg, decode="workers"), device=device, seed=0).train,
        "shards": build_data(dict(shard_cfg, decode="workers"), device=device, seed=0).train,
    }
    if device.type == "cuda":
        sides["stream-nvjpeg"] = build_data(dict(cfg, decode="device"), device=device, seed=0).train
        sides["shards-nvjpeg"] = build_data(
            dict(shard_cfg, decode="device"), device=device, seed=0
        ).train

    tf = T.Compose(
        [
            T.RandomResizedCrop(224, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
            T.RandomHorizontalFlip(0.5),
            T.PILToTensor(),
            T.ToDtype(torch.float, scale=True),
            T.Normalize(MEAN, STD),
            T.ToPureTensor(),
        ]
    )
    theirs = DataLoader(
        tvd.ImageFolder(str(folder / "train"), transform=tf),
        batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        persistent_workers=args.workers > 0, pin_memory=device.type == "cuda",
    )  # fmt: skip

    times: dict[str, list[float]] = {name: [] for name in (*sides, "torchvision")}
    for epoch in range(args.repeats + 1):  # epoch 0 warms the workers and the page cache
        for batches in sides.values():
            batches.set_epoch(epoch)
        for name, batches in (*sides.items(), ("torchvision", theirs)):
            s, n = timed_epoch(batches, device)
            if epoch:
                times[name].append(s)
    load_after = os.getloadavg()
    tv = times["torchvision"]
    lines = [
        "# One epoch of decode + augment: cnnzoo streaming vs torchvision's reference pipeline",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, "
        f"torch {torch.__version__}, torch threads {torch.get_num_threads()}"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        f"- images: {count} CIFAR-10 JPEGs upsampled to {w}x{h}, quality 90; batch "
        f"{args.batch_size}; {args.workers} workers each side; median of {args.repeats} epochs "
        f"in turns (after one warm-up epoch); [min-max] of the per-epoch ratios",
        f"- load average before {load_before[0]:.1f}, after {load_after[0]:.1f}",
        f"- command: `{shown_command(args.cifar, args.folder)}`",
        "",
        "| pipeline | epoch (s) | images/s | vs torchvision |",
        "| --- | ---: | ---: | ---: |",
    ]
    labels = {
        "torchvision": "torchvision ImageFolder + v2 transforms + DataLoader",
        "stream": "cnnzoo data.loader='stream' (ImageFolder)",
        "shards": "cnnzoo data.format='shards' (tar shards of 250)",
        "stream-nvjpeg": "cnnzoo data.loader='stream', data.decode='device' (nvJPEG)",
        "shards-nvjpeg": "cnnzoo data.format='shards', data.decode='device' (nvJPEG)",
    }
    for name in ("torchvision", *sides):
        label = labels[name]
        t = statistics.median(times[name])
        ratios = [a / b for a, b in zip(tv, times[name], strict=True)]
        rel = (
            "1.00x"
            if name == "torchvision"
            else f"**{statistics.median(ratios):.2f}x** [{min(ratios):.2f}-{max(ratios):.2f}]"
        )
        lines.append(f"| {label} | {t:.2f} | {n / t:.0f} | {rel} |")
    print("\n".join(lines))
    save_report(args.output, lines)


if __name__ == "__main__":
    main()
