"""``cnnzoo config CONFIG|RUN_DIR``: print the resolved config and validate it, training nothing.

The config printed is the one ``cnnzoo train`` would run (every default filled in, the
overrides applied), mmpretrain's ``print_config``; for a run directory, the config the run
trains with (its latest ``config.resume-N.yaml``, else ``config.yaml``). ``--keys`` lists
every key of the schema instead, with its default and help.
"""

from __future__ import annotations

import argparse
import sys

HELP = "print the resolved config of CONFIG or RUN_DIR and validate it (trains nothing)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config",
        nargs="?",
        default=None,
        help="a config file, a shipped config's name or a run directory (none: the quick start)",
    )
    p.add_argument(
        "--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys"
    )
    p.add_argument("--format", choices=("yaml", "json"), default="yaml", help="output format")
    p.add_argument(
        "--keys", action="store_true", help="list every key of the schema with its default and help"
    )


def run(args: argparse.Namespace) -> int:
    from cnnzoo.config import config_text, load_config

    if args.keys:
        from cnnzoo.schema import describe_keys

        sys.stdout.write("".join(f"{line}\n" for line in describe_keys()))
        return 0
    cfg = load_config(args.config, args.cfg_options)
    if cfg.filename:
        sys.stdout.write(f"# {cfg.filename}: valid\n" if args.format == "yaml" else "")
    sys.stdout.write(config_text(cfg, args.format))
    return 0
