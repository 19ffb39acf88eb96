"""Where configs are: cnnzoo's shipped configs, names of them, and a run directory's own.

A path that exists is used as given (a run directory means the config it trains with).
Otherwise the name is looked up in cnnzoo's config folder, so ``cnnzoo train
resnet18_b128_1x_cifar10`` works from anywhere. That folder is ``configs/`` at the root of a
source checkout; the package reaches it through the symlink ``src/cnnzoo/_configs ->
../../configs``, which setuptools follows when it builds a wheel, so an installed cnnzoo
carries the same files as package data under ``cnnzoo/_configs``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnzoo import rundir
from cnnzoo.errors import ConfigError, closest

QUICKSTART = "quickstart_lenet5_digits.py"
SUFFIXES = (".py", ".yaml", ".yml", ".json")
SHIPPED = "cnnzoo::"  # a _base_ that names a shipped config: cnnzoo::resnet18_b128_1x_cifar10.py


def configs_dir() -> Path:
    """cnnzoo's config folder: ``configs/`` of a source checkout, or the installed copy."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent.parent / "configs", here / "_configs"):
        if (candidate / "_base_").is_dir():
            return candidate
    raise ConfigError(
        "cannot find cnnzoo's configs folder (looked in cnnzoo/_configs and ../../configs); "
        "reinstall cnnzoo or pass the path of a config file"
    )


def list_configs() -> list[str]:
    """The shipped experiment configs, as paths relative to :func:`configs_dir`."""
    root = configs_dir()
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in SUFFIXES and "_base_" not in p.parts
    )


def shipped_config(name: str) -> Path:
    """The shipped config (or ``_base_/...`` part) that a ``cnnzoo::NAME`` base names."""
    rel = name.removeprefix(SHIPPED)
    root = configs_dir()
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        hint = closest(Path(rel).stem, [Path(c).stem for c in list_configs()])
        raise ConfigError(
            f"_base_ {name!r} names no shipped config"
            + (f"; similar names: {', '.join(hint)}" if hint else "; see `cnnzoo configs`")
        )
    return target


def resolve_config_path(path: str | os.PathLike | None) -> Path:
    """The config file that ``path`` names (see the module docstring for the search order)."""
    if path is None:
        return configs_dir() / QUICKSTART
    p = Path(path).expanduser()
    if p.is_dir() and rundir.config_file(p):
        return rundir.config_file(p)
    if p.is_file():
        return p
    if p.exists() and not p.is_dir():
        raise ConfigError(f"config {str(path)!r} is not a regular file (a FIFO or a device?)")
    root = configs_dir()
    names = [p, Path(p.name)] + (
        [Path(*p.parts[1:])] if len(p.parts) > 1 and p.parts[0] == "configs" else []
    )
    for name in names if not p.is_absolute() else ():
        for candidate in (root / name, root / f"{name}.py"):
            if candidate.is_file():
                return candidate
    hint = closest(p.stem, [Path(c).stem for c in list_configs()])
    msg = f"config {str(path)!r} not found"
    msg += (
        f"; shipped configs with similar names: {', '.join(hint)}"
        if hint
        else "; see `ls configs/`"
    )
    raise ConfigError(msg)
