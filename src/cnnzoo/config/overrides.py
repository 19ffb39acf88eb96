"""``--cfg-options KEY=VALUE``: parse overrides and apply them to a resolved config.

A key must exist in the config, or be one the schema (:mod:`cnnzoo.schema`) lets the section
take: the model's architecture arguments, the keys an optimizer/scheduler/loss type or a
pipeline op takes, and the keys of an optional section that is ``None``
(``early_stopping.patience=5`` turns early stopping on with the other keys' defaults).
Changing a ``type`` drops the keys the new type does not take.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from cnnzoo import schema
from cnnzoo.data import OPS
from cnnzoo.errors import ConfigError
from cnnzoo.models import is_model, model_arguments

MAX_VALUE_DEPTH = 8  # brackets nested in one override value


def parse_cfg_options(options: Iterable[str] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``KEY=VALUE`` strings (or a mapping) as ``(key, parsed value)`` pairs, in order."""
    if isinstance(options, Mapping):
        pairs = list(options.items())
    else:
        pairs = []
        for option in options:
            key, sep, text = str(option).partition("=")
            if not sep:
                raise ConfigError(
                    f"malformed --cfg-options item {option!r}: write KEY=VALUE, e.g. model.drop_rate=0.3"
                )
            pairs.append((key.strip(), parse_value(text, option)))
    for key, _ in pairs:
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ConfigError(
                f"malformed config key {key!r}: write dotted names like data.train.batch_size"
            )
    return pairs


def parse_value(text: str, option: str | None = None) -> Any:
    """An override's value as typed after ``KEY=``, parsed like mmengine's ``--cfg-options``:
    ``[..]`` is a list, ``(..)`` a tuple, ``a,b`` a list; an item is an int, a float,
    ``True``/``False`` (any case), ``None``, else a string. Spaces and surrounding quotes are
    dropped. Unbalanced or too deeply nested brackets raise one :class:`ConfigError`."""
    where = option if option is not None else text
    text = text.strip("'\"").replace(" ", "")
    depth = 0
    for char in text:
        depth += (char in "([") - (char in ")]")
        if depth < 0 or depth > MAX_VALUE_DEPTH:
            break
    if depth != 0 or text.count("(") != text.count(")") or text.count("[") != text.count("]"):
        why = "brackets nested too deep" if depth > MAX_VALUE_DEPTH else "unbalanced brackets"
        raise ConfigError(f"malformed value in {where!r}: {why}")
    return _parse_items(text)


def _parse_items(text: str) -> Any:
    is_tuple = text.startswith("(") and text.endswith(")")
    if is_tuple or (text.startswith("[") and text.endswith("]")):
        text = text[1:-1]
    elif "," not in _top_level(text):
        return _scalar(text)
    items, start, depth = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0:
            items.append(_parse_items(text[start:i]))
            start = i + 1
    if start < len(text):
        items.append(_parse_items(text[start:]))
    return tuple(items) if is_tuple else items


def _top_level(text: str) -> str:
    """``text`` with everything inside brackets left out."""
    out, depth = [], 0
    for char in text:
        depth -= char in ")]"
        if depth == 0:
            out.append(char)
        depth += char in "(["
    return "".join(out)


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return None if text == "None" else text


# --- applying ------------------------------------------------------------------------------


def apply_option(cfg: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` to ``value`` in place (see the module docstring)."""
    parts = key.split(".")
    node: Any = cfg
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the config"
        if isinstance(node, list):
            if not part.isdigit():
                raise ConfigError(
                    f"{key!r}: {where} is a list; index it with a number (0..{len(node) - 1})"
                )
            index = int(part)
            if index >= len(node):
                raise ConfigError(
                    f"{key!r}: index {index} is out of range; {where} has {len(node)} item(s)"
                    + (f" (0..{len(node) - 1})" if node else "")
                )
            if last:
                node[index] = value
            else:
                node[index] = _descendable(node[index])
                node = node[index]
        elif isinstance(node, dict):
            if part not in node and not _may_add(cfg, parts[:depth], part):
                raise unknown_key(key, dotted_keys(cfg), cfg)
            if last:
                if part == "type" and value != node.get("type"):
                    _drop_foreign_keys(parts[:depth], node, value)
                node[part] = value
            else:
                here = ".".join(parts[: depth + 1])
                if node.get(part) is None and depth == 0:
                    node[part] = _empty_section(here)
                elif part not in node:  # a typed section's dict-valued key, e.g. optimizer.aux
                    node[part] = _key_default(cfg, parts[:depth], part)
                node[part] = _descendable(node[part])
                node = node[part]
        else:
            raise ConfigError(
                f"{key!r}: {where} is {node!r}, not a dict or list, so it has no key {part!r}"
            )


def _empty_section(name: str) -> Any:
    """What an optional section that is None becomes when an override sets one of its keys."""
    if name in schema.SECTIONS:
        return schema.SECTIONS[name].defaults()
    return {} if name == "param_scheduler" else None


def _key_default(cfg: dict[str, Any], parent: list[str], key: str) -> Any:
    """The schema's default of ``key`` in the typed section ``parent`` (a copy), else None."""
    typed = schema.TYPED.get(parent[0]) if len(parent) == 1 else None
    spec = typed.keys.get(key) if typed is not None else None
    return schema.copy_default(spec.default) if spec is not None else None


def _descendable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def section_keys(section: str, type_name: Any) -> tuple[str, ...] | None:
    """The keys a ``model``/``optimizer``/``param_scheduler``/``loss`` section of the given
    type takes, or None when the type is unknown."""
    if section == "model":
        if not isinstance(type_name, str) or not is_model(type_name):
            return None
        return (*schema.MODEL.keys, *model_arguments(type_name))
    typed = schema.TYPED.get(section)
    if typed is None or not isinstance(type_name, str) or type_name not in typed.types:
        return None
    return typed.keys_of(type_name)


def pipeline_op_keys(name: Any) -> tuple[str, ...]:
    """The keyword arguments of the data pipeline op ``name`` (none for an unknown op)."""
    if not isinstance(name, str) or name not in OPS:
        return ()
    params = inspect.signature(OPS[name].__init__).parameters
    return tuple(p for p in params if p not in ("self", "ctx"))


def _may_add(cfg: dict[str, Any], parent: list[str], key: str) -> bool:
    if len(parent) == 1 and parent[0] in ("model", *schema.TYPED):
        keys = section_keys(parent[0], cfg[parent[0]].get("type"))
        return keys is not None and key in keys
    if parent == ["optimizer", "aux"]:  # Muon's auxiliary optimizer
        aux_type = cfg["optimizer"]["aux"].get("type")
        return aux_type in schema.MUON_AUX.types and key in schema.MUON_AUX.keys_of(aux_type)
    if len(parent) == 1 and parent[0] in schema.SECTIONS:
        return key in schema.SECTIONS[parent[0]].keys
    if parent == ["train_cfg"]:
        return key in schema.TRAIN_CFG.keys
    if parent == ["data"]:
        return key in schema.DATA.keys
    if len(parent) == 2 and parent[0] == "data" and parent[1] in schema.SPLITS:
        return key in schema.SPLITS[parent[1]].keys
    if len(parent) == 4 and parent[:3] == ["data", "train", "pipeline"]:
        op = cfg["data"]["train"]["pipeline"][int(parent[3])]
        return key in pipeline_op_keys(op.get("type"))
    return False


def _drop_foreign_keys(where: list[str], node: dict[str, Any], new_type: Any) -> None:
    if len(where) == 4 and where[:3] == ["data", "train", "pipeline"]:
        keys = ("type", *pipeline_op_keys(new_type)) if pipeline_op_keys(new_type) else None
    elif len(where) == 1:
        keys = section_keys(where[0], new_type)
    elif where == ["optimizer", "aux"] and new_type in schema.MUON_AUX.types:
        keys = schema.MUON_AUX.keys_of(new_type)
    else:
        keys = None
    if keys is None:
        return  # an unknown type is reported by validation, with the closest names
    for k in [k for k in node if k not in keys]:
        del node[k]


def dotted_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of ``node`` (``data``, ``data.train``, ``data.train.batch_size``, ...)."""
    keys = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list | tuple)
        else ()
    )
    for k, v in items:
        dotted = f"{prefix}{k}"
        keys.append(dotted)
        keys.extend(dotted_keys(v, dotted + "."))
    return keys


def unknown_key(
    key: str, valid: Iterable[str], cfg: Mapping[str, Any] | None = None
) -> ConfigError:
    """``unknown config key``, with the closest names and, for a typed section, what it takes."""
    error = schema.unknown_key(key, valid)
    section = key.split(".")[0]
    if cfg is not None and section in ("model", *schema.TYPED):
        type_name = cfg[section].get("type") if isinstance(cfg.get(section), dict) else None
        keys = section_keys(section, type_name)
        if keys:
            takes = ", ".join(k for k in keys if k != "type")
            return ConfigError(f"{error} {section} {type_name!r} takes: {takes}")
    return error
