"""``cnnzoo shards IMAGEFOLDER OUT``: an ImageFolder tree as tar shards in WebDataset's layout."""

from __future__ import annotations

import argparse

HELP = "write an ImageFolder tree as tar shards (WebDataset's layout) for data.format='shards'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "folder", metavar="IMAGEFOLDER", help="a folder with train/<class>/ (val/, test/)"
    )
    p.add_argument("out", metavar="OUT", help="the folder to write the shards and shards.json to")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default: 1000)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the shuffle of training samples over shards"
    )
    p.add_argument(
        "--val-split",
        type=float,
        default=0.0,
        help="without val/: hold out this fraction of train/ as val shards, as data.val_split would",
    )
    p.add_argument(
        "--split-seed", type=int, default=0, help="the hold-out's seed, as data.split_seed"
    )


def run(args: argparse.Namespace) -> int:
    """Write the shards, one line per split."""
    from pathlib import Path

    from cnnzoo.data.shards import write_shards
    from cnnzoo.errors import ConfigError

    if args.shard_size < 1:
        raise ConfigError(f"--shard-size must be at least 1, got {args.shard_size}")
    if not 0.0 <= args.val_split < 1.0:
        raise ConfigError(f"--val-split must be in [0, 1), got {args.val_split}")
    write_shards(
        Path(args.folder),
        Path(args.out),
        shard_size=args.shard_size,
        seed=args.seed,
        val_split=args.val_split,
        split_seed=args.split_seed,
        say=print,
    )
    print(
        f"wrote {Path(args.out) / 'shards.json'}; train with data.format='shards' data.root={args.out}"
    )
    return 0
