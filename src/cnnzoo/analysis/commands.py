"""The ``cnnzoo models``, ``summary`` and ``compare`` subcommands."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path

import torch

from cnnzoo.analysis.compare import compare, compare_devices, format_table, plot_compare
from cnnzoo.analysis.flops import count_flops, separable_report
from cnnzoo.analysis.summary import layer_summary
from cnnzoo.errors import ConfigError, unknown
from cnnzoo.fileio import atomic_write
from cnnzoo.models import create_model, get_model_entry, list_families, list_models
from cnnzoo.models._registry import ModelEntry

_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``'3x224x224'`` -> ``(3, 224, 224)``; anything else is a :class:`ConfigError`."""
    m = _SIZE.match(str(text))
    if not m or min(int(g) for g in m.groups()) < 1:
        raise ConfigError(
            f"input size must be CxHxW with positive integers, e.g. 3x224x224; got {text!r}"
        )
    c, h, w = (int(g) for g in m.groups())
    return c, h, w


def human(n: float) -> str:
    """``11689512`` -> ``'11.69M'``, ``416520`` -> ``'416.5K'``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}" if unit != "K" else f"{n / scale:.1f}{unit}"
    return str(int(n))


def short_paper(paper: str) -> str:
    """``'He, Zhang, Ren and Sun, Identity mappings ..., ECCV 2016'`` -> ``'He et al. 2016'``;
    ``'Simonyan and Zisserman, ...'`` keeps both names."""
    parts = [p.strip() for p in paper.split(",")]
    authors = parts[0]
    one_author_shown = " and " not in authors and "et al" not in authors
    lists_more_authors = (
        len(parts) > 2 and len(parts[1].split()) <= 3 and parts[1].replace(" and ", " ").istitle()
    )
    if one_author_shown and lists_more_authors:
        authors += " et al."
    years = re.findall(r"\b(?:19|20)\d\d\b", paper)
    return f"{authors} {years[-1]}" if years else authors


def model_costs(entry: ModelEntry) -> tuple[int, int]:
    """Parameters and MACs of a variant at its default configuration and input, counted on
    the meta device (no memory, no arithmetic)."""
    with torch.device("meta"):
        model = create_model(entry.name)
    params = sum(p.numel() for p in model.parameters())
    return params, count_flops(model, entry.cfg.input_size)["macs"]


def cached_model_costs(names: list[str]) -> dict[str, tuple[int, int]]:
    """:func:`model_costs` of ``names``, kept in ``$CNNZOO_CACHE/model_costs.json`` (default
    ``~/.cache/cnnzoo``) under a fingerprint of the model and layer sources and the torch
    version, so that a listing after the first takes no time and any code change recounts."""
    root = Path(os.environ.get("CNNZOO_CACHE") or Path.home() / ".cache" / "cnnzoo")
    path = root / "model_costs.json"
    pkg = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1(torch.__version__.encode())
    for src in sorted([*pkg.glob("models/*.py"), *pkg.glob("layers/*.py")]):
        digest.update(src.name.encode() + src.read_bytes())
    fingerprint = digest.hexdigest()
    try:
        cache = json.loads(path.read_text())
        costs = cache["costs"] if cache.get("fingerprint") == fingerprint else {}
    except (OSError, ValueError, KeyError, AttributeError):
        costs = {}
    missing = [n for n in names if n not in costs]
    for name in missing:
        costs[name] = list(model_costs(get_model_entry(name)))
    if missing:
        try:
            root.mkdir(parents=True, exist_ok=True)
            text = json.dumps(dict(fingerprint=fingerprint, costs=costs))
            atomic_write(path, lambda f: f.write(text), binary=False)
        except OSError:
            pass  # a read-only home only costs the speed-up
    return {n: tuple(costs[n]) for n in names}


def cmd_models(args: argparse.Namespace) -> int:
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


def cmd_summary(args: argparse.Namespace) -> int:
    entry = get_model_entry(args.name)
    input_size = parse_input_size(args.input) if args.input else entry.cfg.input_size
    if args.num_classes is not None and args.num_classes < 1:
        raise ConfigError(f"--num-classes must be a positive integer, got {args.num_classes}")
    model = create_model(args.name, num_classes=args.num_classes, in_chans=input_size[0])
    print(layer_summary(model, input_size, depth=args.depth))
    counts = count_flops(model, input_size)
    print(
        f"MACs: {counts['macs']:,} ({counts['macs'] / 1e9:.3f} G)   FLOPs: {counts['flops']:,} (1 MAC = 2 FLOPs)"
    )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    input_size = parse_input_size(args.input)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be a positive integer, got {args.batch_size}")
    for name in args.names:
        get_model_entry(name)
    rows = compare(
        args.names, input_size, args.num_classes, args.batch_size, compare_devices(args.device)
    )
    print(
        f"input {args.input}, {args.num_classes} classes, inference mode; latency at batch 1 (median), throughput at batch {args.batch_size}"
    )
    print(format_table(rows, "markdown", batch_size=args.batch_size))
    print()
    print(separable_report())
    if args.chart:
        path = plot_compare(rows, args.chart, title=f"input {args.input}")
        print(f"\nchart written to {path}")
    return 0
