"""``cnnzoo summary NAME``: per-layer output shapes, parameters and mult-adds of one model,
as a table or as JSON."""

from __future__ import annotations

import argparse

from cnnzoo.analysis.summary import layer_summary
from cnnzoo.analysis.table import parse_input_size
from cnnzoo.errors import ConfigError
from cnnzoo.models import create_model, get_model_entry

HELP = "per-layer output shapes, parameters and mult-adds of one model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="a registered model name (see `cnnzoo models`)")
    p.add_argument("--input", default=None, help="CxHxW, e.g. 3x32x32 (default: the model's own)")
    p.add_argument(
        "--num-classes", type=int, default=None, help="classes of the head (default: the model's)"
    )
    p.add_argument("--depth", type=int, default=None, help="only modules up to this nesting depth")
    p.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="a table (default) or JSON: every row with its shapes, parameters and mult-adds",
    )


def run(args: argparse.Namespace) -> int:
    entry = get_model_entry(args.name)
    input_size = parse_input_size(args.input) if args.input else entry.cfg.input_size
    if args.num_classes is not None and args.num_classes < 1:
        raise ConfigError(f"--num-classes must be a positive integer, got {args.num_classes}")
    model = create_model(args.name, num_classes=args.num_classes, in_chans=input_size[0])
    summary = layer_summary(model, input_size, depth=args.depth)
    print(summary.to_json() if args.format == "json" else summary)
    return 0
