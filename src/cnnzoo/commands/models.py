"""``cnnzoo models [PATTERN]``: the registered models with params, MACs, family and paper;
``--pretrained``: only those with published weights, and where the weights come from."""

from __future__ import annotations

import argparse

from cnnzoo.analysis.costs import zoo_costs
from cnnzoo.analysis.table import human, short_paper
from cnnzoo.errors import ConfigError, unknown
from cnnzoo.models import get_model_entry, list_families, list_models, published_weights

HELP = "list registered models with params, MACs, family and paper"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'resnet*'"
    )
    p.add_argument("--family", help="only the models of this family, e.g. resnet")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="only models with published weights, and their sources (torchvision, timm, "
        "hf-hub) instead of the paper: each works as model.pretrained",
    )


def run(args: argparse.Namespace) -> int:
    if args.family is not None and args.family not in list_families():
        raise unknown("family", args.family, list_families())
    names = list_models(args.pattern, family=args.family)
    sources = {n: published_weights(get_model_entry(n)) for n in names} if args.pretrained else {}
    if args.pretrained:
        names = [n for n in names if sources[n]]
    if not names:
        raise ConfigError(
            f"no registered model{' with published weights' if args.pretrained else ''} "
            f"matches {args.pattern!r}; try 'cnnzoo models' to list all"
        )
    header = ("model", "family", "params", "MACs", "input", "weights" if sources else "paper")
    body = []
    for name, counts in zoo_costs(names).items():
        params, macs = (human(n) for n in counts) if counts else ("n/a", "n/a")
        entry = get_model_entry(name)
        size = "x".join(str(s) for s in entry.cfg.input_size)
        last = (
            "  ".join(
                v if v.startswith("hf-hub:") else f"{k}:{v}" for k, v in sources[name].items()
            )
            if sources
            else short_paper(entry.cfg.paper)
        )
        body.append((name, entry.family, params, macs, size, last))
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
    if sources:
        print(
            "weights: model.pretrained='torchvision' | 'timm' | 'hf-hub:...' (online; the same "
            "network's ImageNet weights, adapted to num_classes and in_chans)"
        )
    return 0
