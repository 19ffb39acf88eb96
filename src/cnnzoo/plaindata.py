"""Configs as plain data: read them so that nothing in a file can run code or exhaust memory.

A config that comes from elsewhere (a YAML or JSON file, a run directory, the config inside a
checkpoint) is data: dicts with string keys, lists, strings, numbers, booleans and ``None``,
nothing else. This module is the one gate such configs pass through:

- :func:`check_plain` walks a value with a budget (at most :data:`MAX_NODES` values, nested
  at most :data:`MAX_DEPTH` deep), so a YAML "billion laughs" (aliases nested ten deep, a 1 KB
  file that expands to 10^9 values) is refused after a few thousand steps instead of hanging;
- :func:`read_data_file` parses one YAML (PyYAML's safe loader) or JSON file into such data
  and refuses a mapping that names a key twice (both parsers would keep the last silently);
  :mod:`cnnzoo.config.reader` follows ``_base_`` from there.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cnnzoo.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB; the largest shipped config is ~2 KB
MAX_NODES = 100_000  # values in one config, counting every alias expansion
MAX_DEPTH = 32  # nesting; the shipped configs nest 4 deep
DATA_SUFFIXES = (".yaml", ".yml", ".json")


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader (the C one where built) that refuses a key named twice."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *base' merges an anchor; its keys may be overridden
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                continue  # an unhashable key: check_plain names it
            if key in seen:
                raise DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class DuplicateKey(Exception):
    def __init__(self, key, line: int | None = None) -> None:
        super().__init__(key, line)
        self.key, self.line = key, line


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON's ``object_pairs_hook``: a dict, refusing a key named twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def is_int(x: Any) -> bool:
    """An int of a config or a checkpoint, where ``True`` is not one (bool is an int subclass)."""
    return isinstance(x, int) and not isinstance(x, bool)


def check_plain(value: Any, where: str) -> None:
    """Refuse ``value`` unless it is plain data within the size and depth budget."""
    budget = [MAX_NODES]

    def walk(v: Any, depth: int, path: str) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise ConfigError(
                f"{where}: more than {MAX_NODES:,} values (nested YAML aliases?); a config is "
                "a few hundred values at most"
            )
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: nested more than {MAX_DEPTH} levels deep at {path}")
        if isinstance(v, Mapping):
            for k, item in v.items():
                if not isinstance(k, str):
                    raise ConfigError(f"{where}: key {k!r} at {path} is not a string")
                walk(item, depth + 1, f"{path}.{k}")
        elif isinstance(v, list | tuple):
            for i, item in enumerate(v):
                walk(item, depth + 1, f"{path}.{i}")
        elif not (v is None or isinstance(v, str | bool | int | float)):
            raise ConfigError(
                f"{where}: {path} is a {type(v).__name__}; a config holds plain data only "
                "(dicts, lists, strings, numbers, booleans, None)"
            )

    walk(value, 0, "config")


def read_data_file(path: Path) -> dict[str, Any]:
    """One YAML or JSON config file as a checked dict (its ``_base_`` not followed)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
            raise ConfigError(f"{path}: not a regular file; a config is a text file")
        size = info.st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: {size:,} bytes is too large for a config (limit {MAX_CONFIG_BYTES:,})"
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a config is a text file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text, object_pairs_hook=_unique_pairs)
        else:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader
    except DuplicateKey as e:
        at = f" (line {e.line})" if e.line else ""
        raise ConfigError(
            f"{path}: key {e.key!r} is given twice in one mapping{at}; keep one of them"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep") from None
    except yaml.constructor.ConstructorError as e:
        raise ConfigError(
            f"{path}: refused: {e.problem}; YAML configs may hold plain data only (a .py config "
            f"is the place for code, and runs as code)"
        ) from None
    except (ValueError, yaml.YAMLError) as e:
        detail = " ".join(str(e).split())[:300]
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {detail}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a config file must hold a mapping of keys (model:, data:, ...), "
            f"not a {type(data).__name__}"
        )
    check_plain(data, str(path))
    return data
