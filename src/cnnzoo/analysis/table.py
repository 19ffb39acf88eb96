"""The model table's cells: input sizes parsed, counts in K/M/G, short paper names, and each
model's params and MACs at its default input (cached on disk)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

from cnnzoo.analysis.flops import count_flops
from cnnzoo.errors import ConfigError
from cnnzoo.fileio import atomic_write
from cnnzoo.machine import cache_dir
from cnnzoo.models import create_model, get_model_entry
from cnnzoo.models._registry import ModelEntry

MAX_INPUT_CHANNELS = 4096
MAX_INPUT_SIDE = 8192  # one 3x8192x8192 float image is 0.8 GB; the zoo's inputs are <= 299
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``'3x224x224'`` -> ``(3, 224, 224)``; anything else is a :class:`ConfigError`."""
    m = _SIZE.match(str(text))
    if not m or min(int(g) for g in m.groups()) < 1:
        raise ConfigError(
            f"input size must be CxHxW with positive integers, e.g. 3x224x224; got {text!r}"
        )
    c, h, w = (int(g) for g in m.groups())
    if c > MAX_INPUT_CHANNELS or max(h, w) > MAX_INPUT_SIDE:
        raise ConfigError(
            f"input size {text!r} is beyond what a model can be run at here (at most "
            f"{MAX_INPUT_CHANNELS} channels and {MAX_INPUT_SIDE} pixels a side); e.g. 3x224x224"
        )
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


def code_fingerprint() -> str:
    """A hash of the model and layer sources and the torch version: counts cached under it
    are recounted after any change to the code that builds the models."""
    pkg = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1(torch.__version__.encode())
    for src in sorted([*pkg.glob("models/*.py"), *pkg.glob("layers/*.py")]):
        digest.update(src.name.encode() + src.read_bytes())
    return digest.hexdigest()


def cached_model_costs(names: list[str]) -> dict[str, tuple[int, int]]:
    """:func:`model_costs` of ``names``, kept in ``$CNNZOO_CACHE/model_costs.json`` (default
    ``~/.cache/cnnzoo``) under :func:`code_fingerprint`, so that a listing after the first
    takes no time and any code change recounts."""
    path = cache_dir() / "model_costs.json"
    fingerprint = code_fingerprint()
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
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(dict(fingerprint=fingerprint, costs=costs))
            atomic_write(path, lambda f: f.write(text), binary=False)
        except OSError:
            pass  # a read-only home only costs the speed-up
    return {n: tuple(costs[n]) for n in names}
