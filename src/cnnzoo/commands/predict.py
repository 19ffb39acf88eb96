"""``cnnzoo predict TARGET IMAGE...``: the top-k classes of image files."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cnnzoo.data import prepare_images
from cnnzoo.engine.checkpoint import load_trained
from cnnzoo.errors import ConfigError
from cnnzoo.export import is_exported, load_exported

HELP = "top-k classes of images, from a run directory or exported model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target",
        metavar="RUN_DIR|MODEL_FILE",
        help="a run directory, a .pt checkpoint, or a file written by `cnnzoo export`",
    )
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--topk", type=int, default=5, help="how many classes to print per image")


def run(args: argparse.Namespace) -> int:
    """Print the top-k classes (names and probabilities) of each image file."""
    if args.topk < 1:
        raise ConfigError(f"--topk must be at least 1, got {args.topk}")
    target = Path(args.target)
    if target.is_file() and target.suffix not in (".pt", ".pth", ".onnx"):
        raise ConfigError(
            f"{target}: predict takes a run directory, a .pt checkpoint or an exported .onnx/.pt file"
        )
    if target.suffix == ".onnx" or is_exported(target):  # written by `cnnzoo export`
        model, meta = load_exported(target)
    else:
        model, meta = load_trained(target)
    images = prepare_images(
        args.images,
        in_chans=meta["in_chans"],
        image_size=meta["image_size"],
        mean=meta["mean"],
        std=meta["std"],
    )
    names = meta["class_names"]
    with torch.inference_mode():
        output = model(images).float()
    for path, out in zip(args.images, output, strict=True):
        print(path)
        if out.numel() == 1:  # a regression model: the predicted value and the nearest class
            value = out.item()
            nearest = min(max(round(value), 0), len(names) - 1)
            print(f"  value {value:.3f} -> {names[nearest]}")
            continue
        probs = out.softmax(0)
        top = probs.topk(min(args.topk, probs.numel()))
        for rank, (p, i) in enumerate(
            zip(top.values.tolist(), top.indices.tolist(), strict=True), 1
        ):
            print(f"  {rank}. {names[i]:<20s} {p:.4f}")
    return 0
