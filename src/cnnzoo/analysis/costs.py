"""Parameters and MACs of a model, counted once and kept: the one model-cost cache.

A cost is asked for by the model's name, its arguments and the input size (C, H, W): the zoo
table (``cnnzoo models``) asks for each variant at its defaults, the runs table for the model
of a run that recorded no counts. Counting builds the model on the meta device (no memory,
no arithmetic). The counts are kept in ``$CNNZOO_CACHE/model_costs.json`` under a fingerprint
of cnnzoo's model code and the torch version, so any change to the code recounts.

The cache file is untrusted like everything read back from disk: a file that is not JSON,
nests too deep, holds the wrong types or counts that are not plausible (negative, past
``MAX_COUNT``), or a folder, FIFO, device or dangling link at its path, is ignored with a
warning and the counts are made again; the file is rewritten atomically, and a cache that
cannot be written only costs the time of counting again.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from cnnzoo.errors import CnnzooError
from cnnzoo.fileio import atomic_write, read_failure, read_regular_text
from cnnzoo.machine import cache_dir

CACHE_FILE = "model_costs.json"
MAX_COUNT = 10**15  # no network here comes near a quadrillion parameters or MACs

Request = tuple[str, Mapping[str, Any], Sequence[int]]  # model name, its arguments, (C, H, W)


def code_fingerprint() -> str:
    """A hash of the model and layer sources and the torch version: counts cached under it
    are recounted after any change to the code that builds the models."""
    pkg = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1(torch.__version__.encode())
    for src in sorted([*pkg.glob("models/*.py"), *pkg.glob("layers/*.py")]):
        digest.update(src.name.encode() + src.read_bytes())
    return digest.hexdigest()


def cost_key(model: str, kwargs: Mapping[str, Any], size: Sequence[int]) -> str:
    """The cache's key of a model built as ``create_model(model, **kwargs)`` and run at
    ``size``: canonical JSON, so equal arguments give one key in any order."""
    return json.dumps([model, dict(kwargs), list(size)], sort_keys=True, default=str)


def count_costs(model: str, kwargs: Mapping[str, Any], size: Sequence[int]) -> tuple[int, int]:
    """Parameters and MACs of ``create_model(model, **kwargs)`` at input ``size``, counted on
    the meta device; a model that does not build raises."""
    from cnnzoo.analysis.flops import count_flops
    from cnnzoo.models import create_model

    with torch.device("meta"):
        net = create_model(model, **kwargs)
    params = sum(p.numel() for p in net.parameters())
    return params, count_flops(net, tuple(size))["macs"]


def cached_costs(requests: Sequence[Request]) -> list[tuple[int, int] | None]:
    """:func:`count_costs` of each request, in order, answered from the cache where it can
    be; None for a model that does not build (a run's config is untrusted)."""
    path = cache_dir() / CACHE_FILE
    fingerprint = code_fingerprint()
    costs = read_cache(path, fingerprint)
    answers: list[tuple[int, int] | None] = []
    counted = False
    for model, kwargs, size in requests:
        key = cost_key(model, kwargs, size)
        if key not in costs:
            try:
                costs[key] = count_costs(model, kwargs, size)
            except (CnnzooError, TypeError, ValueError, RuntimeError):
                answers.append(None)
                continue
            counted = True
        answers.append(costs[key])
    if counted:
        _write_cache(path, fingerprint, costs)
    return answers


def zoo_costs(names: Sequence[str]) -> dict[str, tuple[int, int] | None]:
    """The costs of registered variants at their default configuration and input."""
    from cnnzoo.models import get_model_entry

    requests = [(n, {}, get_model_entry(n).cfg.input_size) for n in names]
    return dict(zip(names, cached_costs(requests), strict=True))


def read_cache(path: Path, fingerprint: str) -> dict[str, tuple[int, int]]:
    """The valid counts of the cache at ``path`` made under ``fingerprint``: {} when it is
    missing or was made by other code; a damaged file (or a damaged entry) warns and counts
    nothing (the counts are made again)."""
    try:
        data = json.loads(read_regular_text(path))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as e:  # ValueError: not UTF-8, not JSON
        return _damaged(path, read_failure(e))
    if not (isinstance(data, dict) and isinstance(data.get("costs"), dict)):
        return _damaged(path, "not an object with a 'costs' object")
    if data.get("fingerprint") != fingerprint:
        return {}  # counted by other code: recounted, not damaged
    costs = {k: tuple(v) for k, v in data["costs"].items() if _is_cost(v)}
    if len(costs) < len(data["costs"]):
        _damaged(path, f"{len(data['costs']) - len(costs)} entries are not two counts")
    return costs


def _is_cost(value: Any) -> bool:
    """``[params, macs]``: two whole numbers in [0, MAX_COUNT]."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and all(0 <= n <= MAX_COUNT for n in value)
    )


def _damaged(path: Path, why: str) -> dict[str, tuple[int, int]]:
    warnings.warn(
        f"the model-cost cache {path} is damaged ({why}); its counts are made again",
        stacklevel=3,
    )
    return {}


def _write_cache(path: Path, fingerprint: str, costs: Mapping[str, tuple[int, int]]) -> None:
    text = json.dumps(dict(fingerprint=fingerprint, costs={k: list(v) for k, v in costs.items()}))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(text), binary=False)
    except OSError:
        pass  # a read-only cache (or a folder in its place) only costs the time of counting
