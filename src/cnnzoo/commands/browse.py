"""``cnnzoo browse CONFIG``: a grid of a config's augmented training images, as a PNG."""

from __future__ import annotations

import argparse

HELP = "write a grid of a config's augmented training images (PNG), to see what it trains on"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None, help="a config file or shipped config name")
    p.add_argument(
        "--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys"
    )
    p.add_argument("--images", type=int, default=16, help="how many images (default: 16)")
    p.add_argument("--epoch", type=int, default=1, help="the epoch whose draws to show")
    p.add_argument("--output", default="augmented.png", help="the PNG to write")


def run(args: argparse.Namespace) -> int:
    from cnnzoo.analysis.browse import augmented_batch, plot_augmented
    from cnnzoo.config import load_config
    from cnnzoo.data import build_data
    from cnnzoo.errors import ConfigError

    if not 1 <= args.images <= 256:
        raise ConfigError(f"--images must be in [1, 256], got {args.images}")
    if args.epoch < 1:
        raise ConfigError(f"--epoch must be at least 1, got {args.epoch}")
    cfg = load_config(args.config, args.cfg_options)
    bundle = build_data(dict(cfg.data, num_workers=0), device="cpu", seed=int(cfg.get("seed", 0)))
    images, targets = augmented_batch(bundle, args.images, args.epoch)
    ops = [op.get("type") for op in cfg.data.get("train", {}).get("pipeline") or ()]
    title = f"{bundle.dataset}, epoch {args.epoch}: " + (" -> ".join(ops) or "no augmentation")
    path = plot_augmented(
        images,
        targets,
        mean=bundle.mean,
        std=bundle.std,
        class_names=bundle.class_names,
        path=args.output,
        title=title,
    )
    print(f"{len(images)} augmented training images written to {path}")
    return 0
