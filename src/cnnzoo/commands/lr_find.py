"""``cnnzoo lr_find CONFIG``: the learning-rate range test, as a chart and a suggested rate."""

from __future__ import annotations

import argparse

HELP = "learning-rate range test: sweep the rate over a short run, chart loss vs rate, suggest one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None, help="a config file or shipped config name")
    p.add_argument(
        "--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys"
    )
    p.add_argument("--start", type=float, default=1e-7, help="the first rate (default: 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="the last rate (default: 10)")
    p.add_argument("--steps", type=int, default=100, help="steps of the sweep (default: 100)")
    p.add_argument("--output", default="lr_find.png", help="the chart to write")


def run(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import plots
    from cnnzoo.config import load_config
    from cnnzoo.engine.lr_find import lr_range_test

    cfg = load_config(args.config, args.cfg_options)
    test = lr_range_test(cfg, start=args.start, end=args.end, steps=args.steps)
    title = f"{cfg.model.type}, {cfg.optimizer.type}"
    path = plots.plot_range_test(test.lrs, test.losses, test.suggested, args.output, title=title)
    print(
        f"swept {len(test.lrs)} steps from {test.lrs[0]:.2g} to {test.lrs[-1]:.2g}; the loss "
        f"falls fastest at lr {test.suggested:.2g} (the config has {cfg.optimizer.lr:g}): "
        f"--cfg-options optimizer.lr={test.suggested:.2g}"
    )
    print(f"chart written to {path}")
    return 0
