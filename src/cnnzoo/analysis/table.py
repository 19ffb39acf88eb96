"""The model table's cells: input sizes parsed, counts in K/M/G, short paper names (each
model's params and MACs come from the one model-cost cache, :mod:`cnnzoo.analysis.costs`)."""

from __future__ import annotations

import re

from cnnzoo.errors import ConfigError

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
