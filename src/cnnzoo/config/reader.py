"""The one reader of config files: each file is parsed once, and ``_base_`` merged here.

- ``.yaml``/``.yml``/``.json`` files are data (:func:`cnnzoo.plaindata.read_data_file`:
  safe YAML, strict JSON, duplicate keys refused). No text is substituted: mmengine's
  ``{{ fileDirname }}`` and ``{{$VAR:default}}`` are refused with one line, since the value
  a data config holds is the value that runs. Their ``_base_`` files must be YAML/JSON too,
  inside the config's own folder (``CNNZOO_ALLOW_EXTERNAL_BASE=1`` lifts that), or a
  shipped config named ``cnnzoo::NAME``.
- ``.py`` files are code and run as Python, as mmengine runs them: the ``_base_`` list is
  read from the file's syntax tree (it must be literal), the bases are merged first and
  offered to the file's code as ``_base_``, and the file's top-level names (those not
  starting with ``_``, modules and functions aside) are merged onto them. ``__file__`` is
  the file's path. A ``.py`` config may base on YAML/JSON files, read as above.

Merging follows mmengine's rules: the bases of one file must not share top-level keys; a
child's dict merges into the base's dict key by key; ``_delete_=True`` replaces it instead;
any other value (a list too) replaces the base's.
"""

from __future__ import annotations

import ast
import os
import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnzoo.config.files import SHIPPED, shipped_config
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.plaindata import DATA_SUFFIXES, MAX_DEPTH, check_plain, read_data_file

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
SUBSTITUTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)  # mmengine's {{ fileDirname }}, {{$VAR}}
MAX_BASES = 64  # files in one config tree; the shipped ones have at most 6


def read_config(file: Path) -> dict[str, Any]:
    """The config that ``file`` and its bases resolve to, as plain data (no ``_base_``)."""
    return _Tree(file).read(file, ())


def external_bases_allowed() -> bool:
    return os.environ.get("CNNZOO_ALLOW_EXTERNAL_BASE", "") not in ("", "0")


class _Tree:
    """One config tree being read: the folder its data bases must stay in, and a count."""

    def __init__(self, top: Path) -> None:
        self.root = top.resolve().parent
        self.files = 0

    def read(self, path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
        self.files += 1
        if self.files > MAX_BASES:
            raise ConfigError(f"{path}: more than {MAX_BASES} files in one config's _base_ tree")
        if path.suffix == ".py":
            return self._read_python(path, chain)
        data = read_data_file(path)
        _refuse_substitutions(data, path)
        if "custom_imports" in data:
            raise ConfigError(
                f"{path}: custom_imports is refused in a YAML/JSON config: it would import (run) "
                "modules, and these configs are plain data. Import your module in a .py config "
                "you trust, or before calling cnnzoo from Python"
            )
        bases = data.pop(BASE_KEY, [])
        paths = [self._data_base(base, path) for base in _base_list(bases, path)]
        return merge(data, self._merged_bases(paths, path, chain), where=str(path))

    def _read_python(self, path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source, filename=str(path))
        except SyntaxError as e:
            raise ConfigError(f"{path}: syntax error at line {e.lineno}: {e.msg}") from None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ConfigError(f"{path}: cannot read: {e}") from None
        bases, tree.body = _split_base(tree, path)
        paths = [_python_base(base, path) for base in _base_list(bases, path)]
        base_cfg = self._merged_bases(paths, path, chain)
        names = {
            "__file__": str(path),
            "__name__": "__cnnzoo_config__",
            BASE_KEY: _Namespace(base_cfg),
        }
        try:
            exec(compile(tree, str(path), "exec"), names)  # noqa: S102 - a .py config is code
        except CnnzooError:
            raise
        except Exception as e:  # noqa: BLE001 - anything a config's code raises becomes one line
            detail = " ".join(str(e).split())
            raise ConfigError(f"{path}: cannot load config: {type(e).__name__}: {detail}") from None
        own = {
            k: _plain(v)
            for k, v in names.items()
            if not k.startswith("_")
            and not isinstance(v, types.ModuleType | types.FunctionType | type)
        }
        if "custom_imports" in own:
            raise ConfigError(
                f"{path}: custom_imports is not supported; import your module at the top of a .py "
                "config (code you trust), or before calling cnnzoo from Python"
            )
        check_plain(own, str(path))
        return merge(own, base_cfg, where=str(path))

    def _merged_bases(
        self, paths: list[Path], path: Path, chain: tuple[Path, ...]
    ) -> dict[str, Any]:
        here = path.resolve()
        merged: dict[str, Any] = {}
        for target in paths:
            if target in chain or target == here:
                cycle = " -> ".join(p.name for p in (*chain, here, target))
                raise ConfigError(f"{path}: _base_ cycle: {cycle}")
            part = self.read(target, (*chain, here))
            shared = sorted(set(merged) & set(part))
            if shared:
                raise ConfigError(
                    f"{path}: its bases both set {', '.join(shared)}; a key may come from one base "
                    "only (set it in this file to override both)"
                )
            merged.update(part)
        return merged

    def _data_base(self, base: str, path: Path) -> Path:
        """The file a YAML/JSON config's ``_base_`` entry names, if it may be read as data."""
        if base.startswith(SHIPPED):
            return shipped_config(base)  # part of the installed package, trusted with it
        if "::" in base:
            raise ConfigError(
                f"{path}: _base_ {base!r} names a package config; a YAML/JSON config may build on "
                "YAML/JSON files in its folder and on cnnzoo's own configs (cnnzoo::NAME) only"
            )
        if Path(base).suffix not in DATA_SUFFIXES:
            raise ConfigError(
                f"{path}: _base_ {base!r} is refused: a YAML/JSON config may only build on "
                f"YAML/JSON files ({', '.join(DATA_SUFFIXES)}); a .py base would run as code"
            )
        target = (path.parent / base).resolve()
        if not external_bases_allowed() and not target.is_relative_to(self.root):
            raise ConfigError(
                f"{path}: _base_ {base!r} is outside the config's folder {self.root}; bases may "
                "not climb out of it (set CNNZOO_ALLOW_EXTERNAL_BASE=1 if you trust it)"
            )
        return _existing(target, base, path)


def _python_base(base: str, path: Path) -> Path:
    """The file a ``.py`` config's ``_base_`` entry names (code may base on anything)."""
    if base.startswith(SHIPPED):
        return shipped_config(base)
    if "::" in base:
        raise ConfigError(
            f"{path}: _base_ {base!r}: package configs other than cnnzoo's own (cnnzoo::NAME) "
            "are not supported; copy the file beside your config"
        )
    target = (path.parent / Path(base).expanduser()).resolve()
    if target.suffix not in (".py", *DATA_SUFFIXES):
        raise ConfigError(f"{path}: _base_ {base!r} is not a .py, .yaml, .yml or .json config")
    return _existing(target, base, path)


def _existing(target: Path, base: str, path: Path) -> Path:
    if not target.is_file():
        what = "does not exist" if not target.exists() else "is not a regular file"
        raise ConfigError(f"{path}: _base_ {base!r} {what} ({target})")
    return target


def _base_list(bases: Any, path: Path) -> list[str]:
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list | tuple) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(f"{path}: _base_ must be a file name or a list of file names")
    return list(bases)


def _split_base(tree: ast.Module, path: Path) -> tuple[Any, list[ast.stmt]]:
    """A ``.py`` config's literal ``_base_`` value, and its other statements."""
    bases: Any = []
    body = []
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in targets):
            try:
                bases = ast.literal_eval(stmt.value)
            except (ValueError, SyntaxError):
                raise ConfigError(
                    f"{path}: line {stmt.lineno}: _base_ must be a literal file name or list of "
                    "them, so the bases are known before the config runs"
                ) from None
        else:
            body.append(stmt)
    return bases, body


def _refuse_substitutions(data: Any, path: Path, where: str = "") -> None:
    """mmengine rewrites ``{{ ... }}`` in a config's raw text; cnnzoo never does."""
    if isinstance(data, str) and SUBSTITUTION.search(data):
        raise ConfigError(
            f"{path}: {where or 'a value'} holds {SUBSTITUTION.search(data)[0]!r}: YAML/JSON configs "
            "are read as plain data, with no mmengine {{ }} substitution; write the value itself "
            "(a _base_ is already relative to this file) or use a .py config"
        )
    if isinstance(data, Mapping):
        for k, v in data.items():
            _refuse_substitutions(k, path, f"{where}.{k}".lstrip(".") or "a key")
            _refuse_substitutions(v, path, f"{where}.{k}".lstrip("."))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _refuse_substitutions(v, path, f"{where}.{i}".lstrip("."))


def merge(
    child: Mapping[str, Any], base: Mapping[str, Any], *, where: str, _depth: int = 0
) -> dict[str, Any]:
    """``child`` merged onto ``base`` by mmengine's rules (see the module docstring); neither
    is changed."""
    if _depth > MAX_DEPTH:
        raise ConfigError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, Mapping):
            value = dict(value)
            replace = value.pop(DELETE_KEY, False)
            if key in out and not replace:
                if not isinstance(out[key], Mapping):
                    raise ConfigError(
                        f"{where}: {key} is a dict here but {out[key]!r} in its base; add "
                        f"{DELETE_KEY}=True to replace the base's value"
                    )
                out[key] = merge(value, out[key], where=where, _depth=_depth + 1)
            else:
                out[key] = _without_delete(value)
        else:
            out[key] = value
    return out


def _without_delete(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_delete(v) for k, v in value.items() if k != DELETE_KEY}
    return value


def _plain(value: Any) -> Any:
    """A value of a ``.py`` config as plain data (mmengine's ConfigDict and friends are dicts)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


class _Namespace(dict):
    """The bases as a ``.py`` config sees them: ``_base_.model.depth`` or ``_base_['model']``."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(f"the bases set no {name!r}") from None
        return _Namespace(value) if isinstance(value, dict) else value
