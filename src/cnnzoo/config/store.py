"""A resolved config as data: its hash, its file in a run directory, and what changed.

A run keeps its resolved config (every default filled in, no ``_base_``) as ``config.yaml``;
it reproduces the run on its own (``cnnzoo train RUN/config.yaml``). The hash identifies an
experiment wherever it runs, so ``work_dir`` is left out of it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from mmengine.config import Config

from cnnzoo.errors import ConfigError
from cnnzoo.fileio import atomic_write

LOCATION_KEYS = ("work_dir",)  # keys that say where a run is kept, not what it computes


def to_plain(cfg: Config | Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``cfg`` as plain dicts, lists and tuples."""
    data = cfg.to_dict() if isinstance(cfg, Config) else cfg
    return copy.deepcopy(dict(data))


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def config_data(cfg: Config | Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config as JSON-able plain data (tuples become lists): what checkpoints
    and run directories store, and what :func:`cnnzoo.config.load_config` reads back."""
    return json.loads(json.dumps(jsonable(to_plain(cfg))))


def config_hash(cfg: Config | Mapping[str, Any]) -> str:
    """A stable sha256 of the resolved config (its canonical JSON text, keys sorted), leaving
    out where the run is kept (``work_dir``), so the same experiment hashes the same anywhere."""
    plain = {k: v for k, v in to_plain(cfg).items() if k not in LOCATION_KEYS}
    text = json.dumps(jsonable(plain), sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def config_text(cfg: Config | Mapping[str, Any], fmt: str) -> str:
    """The resolved config as YAML or JSON text (``fmt``: ``'yaml'`` or ``'json'``)."""
    data = jsonable(to_plain(cfg))
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def dump_config(cfg: Config | Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write the resolved config to ``path`` atomically, as YAML (``.yaml``/``.yml``), JSON
    (``.json``) or Python text (``.py``); YAML and Python start with a comment naming the
    source and the hash."""
    path = Path(path)
    source = f" from {cfg.filename}" if isinstance(cfg, Config) and cfg.filename else ""
    header = f"# Resolved config{source}; sha256 {config_hash(cfg)[:16]}. Loads on its own.\n"
    if path.suffix == ".json":
        text = config_text(cfg, "json")
    elif path.suffix in (".yaml", ".yml"):
        text = header + config_text(cfg, "yaml")
    elif path.suffix == ".py":  # for users who keep their configs as code
        text = header + Config(to_plain(cfg)).pretty_text
    else:
        raise ConfigError(f"cannot write a config as {path.suffix!r}; use .yaml, .json or .py")
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: f.write(text), binary=False)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{'data.train.batch_size': 128, ...}``: the leaves of a config by dotted key (a list
    is one leaf, as overrides replace lists whole)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): jsonable(value)}


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What changed from ``old`` to ``new``, one ``key: old -> new`` line per leaf (``work_dir``
    aside); keys only one side has show ``(unset)`` on the other."""
    before, after = flatten(old), flatten(new)
    lines = []
    for key in sorted(before.keys() | after.keys()):
        if key.split(".")[0] in LOCATION_KEYS:
            continue
        a, b = before.get(key, _UNSET), after.get(key, _UNSET)
        if a != b:
            lines.append(f"{key}: {_show(a)} -> {_show(b)}")
    return lines


_UNSET = object()


def _show(value: Any) -> str:
    return "(unset)" if value is _UNSET else repr(value)
