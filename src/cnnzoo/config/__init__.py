"""Experiment configs: find, read, override, complete, validate, hash and save them.

A config is composed from four independent parts with ``_base_``
(``configs/_base_/{models,datasets,schedules}/`` and ``default_runtime.py``); an experiment
file is a small delta on its bases, named ``{model}_[setting]_{batch}_{schedule}_{dataset}.py``.

How a config becomes the one that trains, in one pass:

1. :mod:`~cnnzoo.config.files` finds the file (a path, a run directory, a shipped name).
2. :mod:`~cnnzoo.config.reader` parses it and its ``_base_`` files once each, and merges
   them: YAML/JSON as plain data (never given to another parser, no text substitution),
   ``.py`` as code.
3. :func:`cnnzoo.schema.complete` fills in every default of :mod:`cnnzoo.schema`;
   :mod:`~cnnzoo.config.overrides` applies ``--cfg-options``; defaults again for what the
   overrides turned on.
4. :mod:`~cnnzoo.config.checks` validates that object, and that very object is returned.

A run directory's ``config.yaml`` and the config inside a checkpoint are data and go the same
way. :mod:`~cnnzoo.config.store` writes, hashes and compares resolved configs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from mmengine.config import Config

from cnnzoo import schema
from cnnzoo.config.checks import run_metrics, validate_config
from cnnzoo.config.files import (
    QUICKSTART,
    SHIPPED,
    SUFFIXES,
    configs_dir,
    list_configs,
    resolve_config_path,
    shipped_config,
)
from cnnzoo.config.overrides import apply_option, dotted_keys, parse_cfg_options, parse_value
from cnnzoo.config.reader import read_config
from cnnzoo.config.store import (
    config_data,
    config_diff,
    config_hash,
    config_text,
    dump_config,
    to_plain,
)
from cnnzoo.errors import ConfigError
from cnnzoo.plaindata import check_plain

__all__ = [
    "QUICKSTART",
    "SHIPPED",
    "SUFFIXES",
    "config_data",
    "config_diff",
    "config_hash",
    "config_text",
    "configs_dir",
    "dotted_keys",
    "dump_config",
    "list_configs",
    "load_config",
    "parse_cfg_options",
    "parse_value",
    "resolve_config_path",
    "run_metrics",
    "shipped_config",
    "validate_config",
]


def load_config(
    path: str | os.PathLike | Mapping[str, Any] | None = None,
    cfg_options: Iterable[str] | Mapping[str, Any] = (),
    *,
    source: str | None = None,
) -> Config:
    """Load, complete, override and validate an experiment config.

    ``path``: a config file (.py, .yaml/.yml or .json; .py files are executed, so only load
    ones you trust), a run directory, or the name of a shipped config; ``None`` gives the
    offline quick start ``configs/quickstart_lenet5_digits.py``. A mapping is taken as an
    already resolved config (plain data, e.g. the one a checkpoint carries); ``source`` then
    names where it came from in error messages.

    ``cfg_options``: ``KEY=VALUE`` overrides as on the command line, e.g.
    ``model.drop_rate=0.3``, ``data.train.pipeline.0.type=Cutout``,
    ``'workflow=[(train,1),(val,1)]'`` (values parse as numbers, booleans, ``None``, lists
    and tuples; anything else is a string), or a mapping of already parsed values
    (see :mod:`cnnzoo.config.overrides` for which keys may be set).
    """
    if isinstance(path, Mapping):
        where = source or "the given config"
        check_plain(path, where)
        plain, filename = to_plain(path), None
    else:
        file = resolve_config_path(path)
        if file.suffix not in SUFFIXES:
            raise ConfigError(
                f"{file}: unsupported config format {file.suffix!r}; use one of {', '.join(SUFFIXES)}"
            )
        where, filename = str(file), str(file)
        plain = read_config(file)
    schema.complete(plain)
    for key, value in parse_cfg_options(cfg_options):
        apply_option(plain, key, value)
    schema.complete(plain)
    check_plain(plain, where)
    # cfg_text: mmengine would otherwise open the file again to keep its raw text
    cfg = Config(plain, cfg_text=f"# resolved from {where}\n", filename=filename)
    try:
        validate_config(cfg)
    except ConfigError as e:
        if source is None:
            raise
        raise ConfigError(f"{source}: {e}") from None
    return cfg
