"""``cnnzoo compare NAME...``: params, MACs, latency and throughput side by side, and a chart."""

from __future__ import annotations

import argparse

from cnnzoo.analysis.compare import compare, compare_devices, format_table
from cnnzoo.analysis.flops import separable_report
from cnnzoo.analysis.table import parse_input_size
from cnnzoo.errors import ConfigError
from cnnzoo.models import get_model_entry

HELP = "params, MACs, latency and throughput of several models side by side"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", help="registered model names (see `cnnzoo models`)")
    p.add_argument(
        "--input", default=None, help="CxHxW input size of every model (default: each model's own)"
    )
    p.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes of every model's head (default: each model's own)",
    )
    p.add_argument(
        "--batch-size", type=int, default=8, help="batch size of the throughput measurement"
    )
    p.add_argument(
        "--device", default="auto", help="cpu, cuda or auto (both where a GPU is present)"
    )
    p.add_argument(
        "--warmup", type=int, default=3, help="untimed passes before the timings (default: 3)"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="timings of each model; the median and its spread are shown (default: 10)",
    )
    p.add_argument("--chart", default="compare.png", help="where to write the PNG chart")


def run(args: argparse.Namespace) -> int:
    input_size = parse_input_size(args.input) if args.input else None
    if args.num_classes is not None and args.num_classes < 1:
        raise ConfigError(f"--num-classes must be a positive integer, got {args.num_classes}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.warmup < 0 or args.repeats < 1:
        raise ConfigError(
            f"need --warmup >= 0 and --repeats >= 1, got {args.warmup} and {args.repeats}"
        )
    for name in args.names:
        get_model_entry(name)
    rows = compare(
        args.names,
        input_size,
        args.num_classes,
        args.batch_size,
        compare_devices(args.device),
        warmup=args.warmup,
        repeats=args.repeats,
    )
    inputs = f"input {args.input}" if args.input else "each model's own input"
    classes = f"{args.num_classes} classes" if args.num_classes else "its own classes"
    print(
        f"{inputs}, {classes}, inference mode; latency at batch 1, throughput at batch "
        f"{args.batch_size}: median of {args.repeats} timings after {args.warmup} warm-up "
        f"passes, ± half their interquartile range"
    )
    print(format_table(rows, "markdown", batch_size=args.batch_size))
    if any(r["depthwise"] for r in rows):  # the saving those models are built on
        print()
        print(separable_report())
    if args.chart:
        from cnnzoo.analysis import plots  # matplotlib only when a chart is drawn

        path = plots.plot_compare(rows, args.chart, title=f"{inputs}, {classes}")
        print(f"\nchart written to {path}")
    return 0
