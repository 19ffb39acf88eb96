"""``cnnzoo explain RUN IMAGE...``: pictures of what a trained model sees in images."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cnnzoo.extras import require

HELP = (
    "Grad-CAM and occlusion overlays, first-layer filters and per-stage feature maps of "
    "images, from a run directory (PNGs)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="RUN_DIR|CHECKPOINT", help="a run directory or .pt checkpoint")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument(
        "--class",
        dest="class_",
        default=None,
        metavar="NAME|INDEX",
        help="also explain this class (a class name of the run, or its index), beside the "
        "predicted one",
    )
    p.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help="folder for the PNGs (default: RUN_DIR/explain)",
    )


def _names(paths: list[str]) -> list[str]:
    """File stems made safe and unique (``a.png``, ``b/a.png`` -> ``a``, ``a-2``)."""
    out: list[str] = []
    for p in paths:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(p).stem).strip("._") or "image"
        name, k = stem, 2
        while name in out:
            name, k = f"{stem}-{k}", k + 1
        out.append(name)
    return out


def run(args: argparse.Namespace) -> int:
    require("captum", purpose="cnnzoo explain (Grad-CAM, occlusion)")
    from cnnzoo import rundir
    from cnnzoo.analysis.explain import explain, resolve_class
    from cnnzoo.data import prepare_images
    from cnnzoo.engine.checkpoint import load_trained

    model, meta = load_trained(args.target)
    names = [str(c) for c in meta["class_names"]]
    target = resolve_class(args.class_, names) if args.class_ is not None else None
    images = prepare_images(
        args.images,
        in_chans=meta["in_chans"],
        image_size=meta["image_size"],
        mean=meta["mean"],
        std=meta["std"],
        resize=meta.get("resize"),
    )
    out_dir = (
        Path(args.output) if args.output else rundir.paths(rundir.run_dir_of(args.target)).explain
    )
    written = explain(
        model,
        images,
        names=_names(args.images),
        class_names=names,
        mean=meta["mean"],
        std=meta["std"],
        out_dir=out_dir,
        target=target,
    )
    for path in written:
        print(path)
    return 0
