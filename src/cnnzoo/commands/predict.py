"""``cnnzoo predict TARGET IMAGE...``: the top-k classes of image files, folders or globs."""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
from pathlib import Path

import torch

from cnnzoo.data import prepare_images
from cnnzoo.data.images import IMAGE_EXTENSIONS
from cnnzoo.engine.checkpoint import load_trained
from cnnzoo.errors import ConfigError, DataError
from cnnzoo.export import is_exported, load_exported
from cnnzoo.fileio import atomic_write

HELP = "top-k classes of images, from a run directory or exported model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target",
        metavar="RUN_DIR|MODEL_FILE",
        help="a run directory, a .pt checkpoint, or a file written by `cnnzoo export`",
    )
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, folders (every image in them, to any depth) or quoted glob patterns "
        "such as 'photos/*.jpg'",
    )
    p.add_argument("--topk", type=int, default=5, help="how many classes to give per image")
    p.add_argument(
        "--output",
        default=None,
        metavar="FILE",
        help="also write the predictions to FILE.csv (image,rank,class,probability) or "
        "FILE.json (a list of {image, top: [{class, probability}]})",
    )
    p.add_argument(
        "--batch-size", type=int, default=64, help="images per forward pass (default: 64)"
    )


def image_files(items: list[str]) -> list[Path]:
    """The image files that ``items`` name: files as given, folders expanded to their image
    files (sorted, to any depth), glob patterns expanded; anything that names nothing is a
    one-line :class:`DataError`."""
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                raise DataError(
                    f"{item}: the folder holds no image files ({', '.join(IMAGE_EXTENSIONS)})"
                )
            files += found
        elif path.exists():
            files.append(path)
        elif glob.has_magic(item):
            found = sorted(
                Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file()
            )
            if not found:
                raise DataError(f"{item}: no file matches this pattern")
            files += found
        else:
            raise DataError(f"{item}: no such image file or folder")
    return files


def run(args: argparse.Namespace) -> int:
    """Print the top-k classes (names and probabilities) of each image; with ``--output``,
    write them as CSV or JSON too."""
    if args.topk < 1:
        raise ConfigError(f"--topk must be at least 1, got {args.topk}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.output and Path(args.output).suffix.lower() not in (".csv", ".json"):
        raise ConfigError(f"--output {args.output}: give a .csv or .json file name")
    target = Path(args.target)
    if target.is_file() and target.suffix not in (".pt", ".pth", ".onnx"):
        raise ConfigError(
            f"{target}: predict takes a run directory, a .pt checkpoint or an exported .onnx/.pt file"
        )
    if target.suffix == ".onnx" or is_exported(target):  # written by `cnnzoo export`
        model, meta = load_exported(target)
    else:
        model, meta = load_trained(target)
    files = image_files(args.images)
    names = meta["class_names"]
    results = []
    for start in range(0, len(files), args.batch_size):
        chunk = files[start : start + args.batch_size]
        images = prepare_images(
            chunk,
            in_chans=meta["in_chans"],
            image_size=meta["image_size"],
            mean=meta["mean"],
            std=meta["std"],
            resize=meta.get("resize"),
        )
        with torch.inference_mode():
            output = model(images).float()
        for path, out in zip(chunk, output, strict=True):
            results.append(_prediction(str(path), out, names, args.topk))
    for r in results:
        print(r["image"])
        if "value" in r:
            print(f"  value {r['value']:.3f} -> {r['class']}")
        for rank, t in enumerate(r.get("top", ()), 1):
            print(f"  {rank}. {t['class']:<20s} {t['probability']:.4f}")
    if args.output:
        print(f"predictions written to {_write(Path(args.output), results)}")
    return 0


def _prediction(image: str, out: torch.Tensor, names: list[str], topk: int) -> dict:
    if out.numel() == 1:  # a regression model: the predicted value and the nearest class
        value = out.item()
        return dict(
            image=image, value=value, **{"class": names[min(max(round(value), 0), len(names) - 1)]}
        )
    probs = out.softmax(0)
    top = probs.topk(min(topk, probs.numel()))
    return dict(
        image=image,
        top=[
            {"class": names[i], "probability": p}
            for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ],
    )


def _write(path: Path, results: list[dict]) -> Path:
    if path.suffix.lower() == ".json":
        text = json.dumps(results, indent=2)
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["image", "rank", "class", "probability", "value"])
        for r in results:
            if "value" in r:
                writer.writerow([r["image"], 1, r["class"], "", r["value"]])
            for rank, t in enumerate(r.get("top", ()), 1):
                writer.writerow([r["image"], rank, t["class"], t["probability"], ""])
        text = out.getvalue()
    try:
        return atomic_write(path, lambda f: f.write(text), binary=False)
    except OSError as e:
        raise DataError(f"cannot write {path}: {e.strerror or e}") from None
