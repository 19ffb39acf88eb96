"""``cnnzoo models [PATTERN]``: the registered models with params, MACs, family and paper."""

from __future__ import annotations

import argparse

from cnnzoo.analysis.table import cached_model_costs, human, short_paper
from cnnzoo.errors import ConfigError, unknown
from cnnzoo.models import get_model_entry, list_families, list_models

HELP = "list registered models with params, MACs, family and paper"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'resnet*'"
    )
    p.add_argument("--family", help="only the models of this family, e.g. resnet")


def run(args: argparse.Namespace) -> int:
    if args.family is not None and args.family not in list_families():
        raise unknown("family", args.family, list_families())
    names = list_models(args.pattern, family=args.family)
    if not names:
        raise ConfigError(
            f"no registered model matches {args.pattern!r}; try 'cnnzoo models' to list all"
        )
    header = ("model", "family", "params", "MACs", "input", "paper")
    body = []
    for name, (params, macs) in cached_model_costs(names).items():
        entry = get_model_entry(name)
        size = "x".join(str(s) for s in entry.cfg.input_size)
        body.append(
            (name, entry.family, human(params), human(macs), size, short_paper(entry.cfg.paper))
        )
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    right = {2, 3}

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(fmt(header))
    print(fmt(tuple("-" * w for w in widths)))
    for b in body:
        print(fmt(b))
    print(
        f"{len(body)} model(s); params and MACs at each model's default input and classes (1 MAC = 2 FLOPs)"
    )
    return 0
