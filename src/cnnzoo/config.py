"""Experiment configs: find, load, override, validate, hash and save them.

A config is an mmengine config composed from four independent parts with ``_base_``
(``configs/_base_/{models,datasets,schedules}/`` and ``default_runtime.py``); an experiment
file is a small delta on its bases, named ``{model}_[setting]_{batch}_{schedule}_{dataset}.py``.

Where configs are found: a path that exists is used as given (a run directory means its
``config.py``). Otherwise the name is looked up in cnnzoo's own config folder, so
``cnnzoo train resnet18_b128_1x_cifar10`` works from anywhere. That folder is ``configs/``
at the root of a source checkout; the package reaches it through the symlink
``src/cnnzoo/_configs -> ../../configs``, which setuptools follows when it builds a wheel,
so an installed cnnzoo carries the same files as package data under ``cnnzoo/_configs``.

Formats: ``.py`` configs are Python and are *executed* when loaded, so load only ``.py``
files you trust; ``.yaml``/``.yml`` and ``.json`` configs are plain data and are the safe
choice for configs that come from elsewhere (:mod:`cnnzoo.plaindata` checks them and their
``_base_`` files before mmengine reads them). All three support ``_base_`` and
``_delete_=True``. A run directory's resolved config (``config.yaml``) and the dict a
checkpoint carries are data too, and so is the ``config.py`` of older runs (read by a
literal-only parser, never executed).

Every loaded config has every key of ``configs/_base_/default_runtime.py`` and the data keys
of ``DATA_DEFAULTS`` (missing ones take those defaults), and is validated: unknown keys,
unknown names (model, dataset, optimizer, scheduler, loss, pipeline op), bad numbers and
inconsistent model/data settings raise one :class:`~cnnzoo.errors.ConfigError` naming the
key and what to do.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import inspect
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from mmengine.config import Config
from mmengine.fileio.handlers import YamlHandler
from mmengine.fileio.io import file_handlers

from cnnzoo.errors import CnnzooError, ConfigError, closest, unknown
from cnnzoo.fileio import atomic_write
from cnnzoo.plaindata import (
    DATA_SUFFIXES,
    check_data_config_tree,
    check_plain,
    is_int,
    literal_config,
    read_data_file,
)

QUICKSTART = "quickstart_lenet5_digits.py"
RUN_CONFIG_NAMES = ("config.yaml", "config.py")  # a run's resolved config (.py: older runs)
RESUME_CONFIG = re.compile(r"config\.resume-([1-9][0-9]*)\.yaml")  # a resume that changed it
SUFFIXES = (".py", ".yaml", ".yml", ".json")

RUNTIME_DEFAULTS: dict[str, Any] = dict(
    seed=0,
    deterministic=False,
    device="auto",
    work_dir="runs",
    workflow=[("train", 1), ("val", 1)],
    log=dict(interval=50, tensorboard=True),
    checkpoint=dict(monitor="val/top1", mode="max"),
    early_stopping=None,
    amp=dict(enabled=False, dtype="bfloat16"),
    channels_last=True,
    compile=False,
    nan_policy="stop",
    sync_bn=False,
    auto_scale_lr=dict(enable=False, base_batch_size=None),
    lookahead=None,
    ema=None,
    sync_every=1,
    loss=dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3),
    clip_grad=None,
    param_scheduler=None,
    load_from=None,
)
DATA_DEFAULTS: dict[str, Any] = dict(
    root=None,
    download=True,
    val_split=0.1,
    split_seed=0,
    image_size=None,
    in_chans=None,
    mean=None,
    std=None,
    loader="auto",
    num_workers=2,
    train=dict(batch_size=128, pipeline=[]),
    val=dict(batch_size=512),
    test=dict(batch_size=512, tta_flip=False),
)
REQUIRED = ("model", "data", "optimizer", "train_cfg")
MAX_IMAGE_SIZE = 4096  # larger sizes only exhaust memory (a 32-image batch at 4096^2 is 6 GB)

# What an optional section becomes when an override sets one of its keys while it is None.
OPTIONAL_SECTIONS: dict[str, dict[str, Any]] = dict(
    early_stopping=dict(monitor="val/loss", mode="min", patience=5, min_delta=0.0),
    clip_grad=dict(max_norm=1.0),
    param_scheduler=dict(),
    lookahead=dict(k=5, alpha=0.5),
    ema=dict(decay=0.9998, every=1, warmup=False),
)

# Built-in datasets: number of classes, native channels and native (H, W).
DATASETS: dict[str, tuple[int | None, int | None, tuple[int, int] | None]] = dict(
    digits=(10, 1, (8, 8)),
    mnist=(10, 1, (28, 28)),
    fashion_mnist=(10, 1, (28, 28)),
    cifar10=(10, 3, (32, 32)),
    cifar100=(100, 3, (32, 32)),
    imagefolder=(None, None, None),
    imagenet=(1000, 3, None),
)
# train_cfg keys besides max_epochs: gradient accumulation (optimizer steps every N batches)
TRAIN_CFG_OPTIONAL = ("accumulate",)
# Data keys that the data side reads but configs need not set (not filled in by default).
DATA_OPTIONAL = ("skip_bad", "train_subset", "folder", "format", "resize", "decode")
SPLIT_OPTIONAL = ("drop_last", "tta_translate")
SCHEDULER_REQUIRED: dict[str, tuple[str, ...]] = dict(
    StepLR=("step_size",), MultiStepLR=("milestones",)
)
# Bounds that catch typos and overflows before anything starts (a seed must fit numpy's and
# torch's generators; sizes beyond these only exhaust memory or time).
MAX_SEED = 2**32 - 1
MAX_EPOCHS = 100_000
MAX_STEPS = 10_000_000
MAX_BATCH = 1 << 20
MAX_CLASSES = 1_000_000
MAX_WORKERS = 256
OPEN, CLOSED = True, False
OPTIMIZER_RANGES: dict[str, tuple | type] = dict(
    weight_decay=(0.0, 1.0, CLOSED, CLOSED),  # 5e-4 (SGD) to 0.05 (AdamW) in the papers
    momentum=(0.0, 1.0, CLOSED, OPEN),
    dampening=(0.0, 1.0, CLOSED, CLOSED),
    eps=(0.0, 1.0, OPEN, OPEN),
    rho=(0.0, 1.0, CLOSED, CLOSED),
    alpha=(0.0, 1.0, OPEN, CLOSED),
    centered=bool,
    nesterov=bool,
    amsgrad=bool,
    decay_norm_and_bias=bool,
    fused=(bool, None),
)
SCHEDULER_RANGES: dict[str, tuple | type] = dict(
    step_size=(int, 1, MAX_EPOCHS),
    gamma=(0.0, 1.0, OPEN, CLOSED),
    min_lr=(0.0, math.inf, CLOSED, OPEN),
    max_lr=(0.0, math.inf, OPEN, OPEN),
    pct_start=(0.0, 1.0, OPEN, OPEN),
    factor=(0.0, 1.0, OPEN, OPEN),
    patience=(int, 0, MAX_EPOCHS),
)
MODEL_EXTRA_KEYS = ("type", "num_classes", "in_chans", "pretrained", "pretrained_strict")


@functools.cache
def schemas() -> dict[str, dict[str, tuple[str, ...]]]:
    """The typed sections (``model`` aside): each type and the keys it takes besides
    ``type``, read from the code that builds it, so what is accepted is what runs."""
    from cnnzoo.engine.losses import LOSS_KEYS
    from cnnzoo.engine.optim import OPTIMIZER_KEYS, OPTIMIZER_OWN_KEYS, SCHEDULER_KEYS

    return dict(
        optimizer={k: (*OPTIMIZER_OWN_KEYS, *v) for k, v in OPTIMIZER_KEYS.items()},
        param_scheduler=SCHEDULER_KEYS,
        loss=LOSS_KEYS,
    )


def _optional_keys(section: str) -> tuple[str, ...]:
    """The keys of an optional section (``clip_grad``: those of the function that clips)."""
    if section == "clip_grad":
        from cnnzoo.engine.optim import CLIP_GRAD_KEYS

        return CLIP_GRAD_KEYS
    return tuple(OPTIONAL_SECTIONS[section])


def _regression_losses() -> tuple[str, ...]:
    from cnnzoo.engine.losses import REGRESSION

    return REGRESSION


def configs_dir() -> Path:
    """cnnzoo's config folder: ``configs/`` of a source checkout, or the installed copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "configs", here / "_configs"):
        if (candidate / "_base_").is_dir():
            return candidate
    raise ConfigError(
        "cannot find cnnzoo's configs folder (looked in cnnzoo/_configs and ../../configs); "
        "reinstall cnnzoo or pass the path of a config file"
    )


SHIPPED = "cnnzoo::"  # a _base_ that names a shipped config: cnnzoo::resnet18_b128_1x_cifar10.py


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


@contextlib.contextmanager
def _shipped_bases():
    """Let ``_base_`` name a shipped config as ``cnnzoo::NAME`` (mmengine's ``package::path``
    form). mmengine would look for the package's ``.mim`` metafiles and tag the base with a
    scope; cnnzoo's own configs are read like a base beside the config instead."""
    original = Config.__dict__["_get_cfg_path"]

    def get_cfg_path(cfg_path: str, filename: str):
        if cfg_path.startswith(SHIPPED):
            return str(shipped_config(cfg_path)), None
        return original.__func__(cfg_path, filename)

    Config._get_cfg_path = staticmethod(get_cfg_path)
    try:
        yield
    finally:
        Config._get_cfg_path = original


def list_configs() -> list[str]:
    """The shipped experiment configs, as paths relative to :func:`configs_dir`."""
    root = configs_dir()
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in SUFFIXES and "_base_" not in p.parts
    )


def run_config_file(run_dir: str | os.PathLike) -> Path | None:
    """The resolved config a run directory trains with now: its latest
    ``config.resume-N.yaml`` (a resume that changed the config), else ``config.yaml``
    (``config.py`` in runs of earlier cnnzoo versions, read as data too), or None."""
    run_dir = Path(run_dir)
    resumes = [
        (int(m[1]), p)
        for p in (run_dir.glob("config.resume-*.yaml") if run_dir.is_dir() else ())
        if (m := RESUME_CONFIG.fullmatch(p.name)) and p.is_file()
    ]
    if resumes:
        return max(resumes)[1]
    for name in RUN_CONFIG_NAMES:
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def is_run_config_name(name: str) -> bool:
    """``name`` is that of a resolved config a run directory keeps."""
    return name in RUN_CONFIG_NAMES or RESUME_CONFIG.fullmatch(name) is not None


def _is_run_config(file: Path) -> bool:
    """A run directory's own resolved config (data, never executed), not a user's .py."""
    return is_run_config_name(file.name) and (file.parent / "checkpoints").is_dir()


def resolve_config_path(path: str | os.PathLike | None) -> Path:
    """The config file that ``path`` names (see the module docstring for the search order)."""
    if path is None:
        return configs_dir() / QUICKSTART
    p = Path(path).expanduser()
    if p.is_dir() and run_config_file(p):
        return run_config_file(p)
    if p.is_file():
        return p
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
    and tuples; anything else is a string), or a mapping of already parsed values.
    A key must exist in the config, except the model's architecture arguments, the keys an
    optimizer/scheduler/loss type or a pipeline op takes, and the keys of an optional section that is ``None``
    (``early_stopping.patience=5`` turns early stopping on with the other keys' defaults).
    Changing a ``type`` drops the keys the new type does not take.
    """
    if isinstance(path, Mapping):
        where = source or "the given config"
        check_plain(path, where)
        cfg, filename = _to_plain(path), None
    else:
        file = resolve_config_path(path)
        if file.suffix not in SUFFIXES:
            raise ConfigError(
                f"{file}: unsupported config format {file.suffix!r}; use one of {', '.join(SUFFIXES)}"
            )
        where, cfg, filename = str(file), _read(file), str(file)
    _fill_defaults(cfg)
    for key, value in parse_cfg_options(cfg_options):
        _apply_option(cfg, key, value)
    check_plain(cfg, where)
    try:
        validate_config(cfg)
    except ConfigError as e:
        if source is None:
            raise
        raise ConfigError(f"{source}: {e}") from None
    return Config(cfg, filename=filename)


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
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(
                f"malformed config key {key!r}: write dotted names like data.train.batch_size"
            )
    return pairs


MAX_VALUE_DEPTH = 8  # brackets nested in one override value


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


# keys that say where a run is kept, not what it computes
_LOCATION_KEYS = ("work_dir",)


def config_hash(cfg: Config | Mapping[str, Any]) -> str:
    """A stable sha256 of the resolved config (its canonical JSON text, keys sorted), leaving
    out where the run is kept (``work_dir``), so the same experiment hashes the same anywhere."""
    plain = {k: v for k, v in _to_plain(cfg).items() if k not in _LOCATION_KEYS}
    return hashlib.sha256(_canonical_text(plain).encode()).hexdigest()


def dump_config(cfg: Config, path: str | os.PathLike) -> Path:
    """Write the resolved config (no ``_base_``) to ``path`` atomically; it reproduces the run
    on its own: ``cnnzoo train <run>/config.yaml``. The format follows the suffix (.yaml/.yml
    and .json are plain data; .py is Python text, for users who keep their configs as code)."""
    path = Path(path)
    data = _to_plain(cfg)
    source = f" from {cfg.filename}" if isinstance(cfg, Config) and cfg.filename else ""
    header = f"# Resolved config{source}; sha256 {config_hash(data)[:16]}. Loads on its own.\n"
    if path.suffix == ".py":
        text = header + Config(data).pretty_text
    elif path.suffix == ".json":
        text = json.dumps(_jsonable(data), indent=2) + "\n"
    elif path.suffix in (".yaml", ".yml"):
        text = header + yaml.safe_dump(_jsonable(data), sort_keys=False)
    else:
        raise ConfigError(f"cannot write a config as {path.suffix!r}; use .py, .json or .yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: f.write(text), binary=False)


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check a resolved config; the first problem raises a :class:`ConfigError`."""
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise ConfigError(
            f"config lacks {', '.join(missing)}; inherit a part from configs/_base_/ "
            "(models/, datasets/, schedules/) for each"
        )
    known = set(RUNTIME_DEFAULTS) | set(REQUIRED)
    for key in cfg:
        if key not in known and not key.startswith("_"):
            raise _unknown_key(key, known)
    _check_runtime(cfg)
    _check_model(cfg)
    _check_data(cfg)
    _check_loss(cfg)
    _check_optim(cfg)


# --- reading -------------------------------------------------------------------------------


class _SafeYamlHandler(YamlHandler):
    """mmengine's YAML handler with PyYAML's safe loader: plain data only. (mmengine's own
    uses ``yaml.Loader``, which runs ``!!python/object/apply`` tags, i.e. code.)"""

    def load_from_fileobj(self, file, **kwargs):
        return yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@contextlib.contextmanager
def _safe_yaml():
    """Load YAML configs (and their YAML ``_base_`` files) with the safe loader."""
    saved = {k: file_handlers[k] for k in ("yaml", "yml")}
    file_handlers.update(yaml=_SafeYamlHandler(), yml=_SafeYamlHandler())
    try:
        yield
    finally:
        file_handlers.update(saved)


def _read(file: Path) -> dict[str, Any]:
    if _is_run_config(file):
        return read_run_config(file)
    if file.suffix in DATA_SUFFIXES:
        allow = os.environ.get("CNNZOO_ALLOW_EXTERNAL_BASE", "") not in ("", "0")
        check_data_config_tree(file, allow_external_base=allow)
    try:
        with _safe_yaml(), _shipped_bases():
            # never import modules a config names: a .py config imports what it needs itself
            cfg = Config.fromfile(str(file), import_custom_modules=False)
    except CnnzooError:
        raise
    except yaml.constructor.ConstructorError as e:
        raise ConfigError(
            f"{file}: refused: {e.problem}; YAML configs may hold plain data only (a .py config "
            f"is the place for code, and runs as code)"
        ) from None
    except FileNotFoundError as e:
        missing = e.filename or str(e)
        raise ConfigError(
            f"{file}: cannot read {missing} (a _base_ file that does not exist?)"
        ) from None
    except SyntaxError as e:
        raise ConfigError(f"{file}: syntax error at line {e.lineno}: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - anything a config file can raise becomes one line
        detail = " ".join(str(e).split())
        raise ConfigError(f"{file}: cannot load config: {type(e).__name__}: {detail}") from None
    cfg = _to_plain(cfg)
    if "custom_imports" in cfg:
        raise ConfigError(
            f"{file}: custom_imports is not supported; import your module at the top of a .py "
            "config (code you trust), or before calling cnnzoo from Python"
        )
    return cfg


def read_run_config(file: Path) -> dict[str, Any]:
    """A run directory's resolved config, read as data: YAML through the safe loader, an
    older run's ``config.py`` through the literal-only parser, never executed."""
    if file.suffix == ".py":
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{file}: cannot read: {e}") from None
        return literal_config(text, str(file))
    return read_data_file(file)


def config_data(cfg: Config | Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config as JSON-able plain data (tuples become lists): what checkpoints
    and run directories store, and what :func:`load_config` reads back."""
    return json.loads(json.dumps(_jsonable(_to_plain(cfg))))


def _to_plain(cfg: Config | Mapping[str, Any]) -> dict[str, Any]:
    data = cfg.to_dict() if isinstance(cfg, Config) else cfg
    return copy.deepcopy(dict(data))


def _fill_defaults(cfg: dict[str, Any]) -> None:
    for key, value in RUNTIME_DEFAULTS.items():
        cfg.setdefault(key, copy.deepcopy(value))
    for key in ("log", "checkpoint", "amp", "auto_scale_lr"):
        if isinstance(cfg[key], dict):
            for k, v in RUNTIME_DEFAULTS[key].items():
                cfg[key].setdefault(k, v)
    data = cfg.get("data")
    if isinstance(data, dict):
        for key, value in DATA_DEFAULTS.items():
            data.setdefault(key, copy.deepcopy(value))
            if isinstance(value, dict) and isinstance(data[key], dict):
                for k, v in value.items():
                    data[key].setdefault(k, copy.deepcopy(v))


# --- overrides -----------------------------------------------------------------------------


def _apply_option(cfg: dict[str, Any], key: str, value: Any) -> None:
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
                raise _unknown_key(key, _dotted_keys(cfg), cfg)
            if last:
                if part == "type" and value != node.get("type"):
                    _drop_foreign_keys(parts[:depth], node, value)
                node[part] = value
            else:
                here = ".".join(parts[: depth + 1])
                if node.get(part) is None and here in OPTIONAL_SECTIONS:
                    node[part] = copy.deepcopy(OPTIONAL_SECTIONS[here])
                node[part] = _descendable(node[part])
                node = node[part]
        else:
            raise ConfigError(
                f"{key!r}: {where} is {node!r}, not a dict or list, so it has no key {part!r}"
            )


def _descendable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _type_keys(section: str, type_name: Any) -> tuple[str, ...] | None:
    """The keys a section of the given type takes, or None when the type is unknown."""
    if section == "model":
        return _model_keys(str(type_name))
    table = schemas().get(section)
    if table is None or not _known(type_name, table):
        return None
    return ("type", *table[type_name])


@functools.cache
def _model_keys(name: str) -> tuple[str, ...] | None:
    from cnnzoo.models import is_model, model_arguments

    return (*MODEL_EXTRA_KEYS, *model_arguments(name)) if is_model(name) else None


def _may_add(cfg: dict[str, Any], parent: list[str], key: str) -> bool:
    if len(parent) == 1 and parent[0] in ("model", "optimizer", "param_scheduler", "loss"):
        keys = _type_keys(parent[0], cfg[parent[0]].get("type"))
        return keys is not None and key in keys
    if len(parent) == 1 and parent[0] in OPTIONAL_SECTIONS:
        return key in _optional_keys(parent[0])
    if len(parent) == 4 and parent[:3] == ["data", "train", "pipeline"]:
        op = cfg["data"]["train"]["pipeline"][int(parent[3])]
        return key in _pipeline_op_keys(op.get("type"))
    if parent == ["data"]:
        return key in DATA_OPTIONAL
    if parent == ["train_cfg"]:
        return key in TRAIN_CFG_OPTIONAL
    if len(parent) == 2 and parent[0] == "data" and parent[1] in ("train", "val", "test"):
        return key in SPLIT_OPTIONAL
    return False


def _pipeline_op_keys(name: Any) -> tuple[str, ...]:
    """The keyword arguments of the data pipeline op ``name`` (none for an unknown op)."""
    from cnnzoo.data import OPS

    if not _known(name, OPS):
        return ()
    params = inspect.signature(OPS[name].__init__).parameters
    return tuple(p for p in params if p not in ("self", "ctx"))


def _drop_foreign_keys(where: list[str], node: dict[str, Any], new_type: Any) -> None:
    if len(where) == 4 and where[:3] == ["data", "train", "pipeline"]:
        keys = ("type", *_pipeline_op_keys(new_type)) if _pipeline_op_keys(new_type) else None
    elif len(where) == 1:
        keys = _type_keys(where[0], new_type)
    else:
        keys = None
    if keys is None:
        return  # an unknown type is reported by validation, with the closest names
    for k in [k for k in node if k not in keys]:
        del node[k]


def _dotted_keys(node: Any, prefix: str = "") -> list[str]:
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
        keys.extend(_dotted_keys(v, dotted + "."))
    return keys


def _unknown_key(
    key: str, valid: Iterable[str], cfg: Mapping[str, Any] | None = None
) -> ConfigError:
    msg = f"unknown config key {key!r}"
    hint = closest(key, valid, n=3)
    if hint:
        msg += f"; did you mean: {', '.join(hint)}?"
    if cfg is not None and key.split(".")[0] in ("model", "optimizer", "param_scheduler", "loss"):
        section = key.split(".")[0]
        type_name = cfg[section].get("type") if isinstance(cfg.get(section), dict) else None
        keys = _type_keys(section, type_name)
        if keys:
            msg += f" {section} {type_name!r} takes: {', '.join(k for k in keys if k != 'type')}"
    return ConfigError(msg)


# --- validation ----------------------------------------------------------------------------


def _is_number(x: Any) -> bool:
    """A finite int or float (not a bool, not inf or nan)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _known(name: Any, table: Mapping[str, Any]) -> bool:
    """``name`` is one of ``table``'s names (False for lists and other unhashable values)."""
    return isinstance(name, str) and name in table


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _section(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = cfg[name]
    _require(isinstance(value, Mapping), f"{name} must be a dict, got {value!r}")
    return value


def _check_keys(name: str, section: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for key in section:
        if key not in allowed:
            raise _unknown_key(f"{name}.{key}", [f"{name}.{k}" for k in sorted(allowed)])


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    _require(
        is_int(value) and lo <= value <= hi,
        f"{name} must be an integer in [{lo}, {hi:,}], got {value!r}",
    )


def _check_number(
    name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> None:
    inside = _is_number(value) and (value > lo if lo_open else value >= lo)
    if not (inside and (value < hi if hi_open else value <= hi)):
        span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ConfigError(f"{name} must be a number in {span}, got {value!r}")


def _check_ranges(section: str, values: Mapping[str, Any], ranges: Mapping[str, tuple]) -> None:
    """Check the keys of ``values`` that ``ranges`` names: ``(lo, hi, lo_open, hi_open)`` for
    numbers, ``int`` for an integer range ``(int, lo, hi)``, ``bool`` for True/False."""
    for key, spec in ranges.items():
        if key not in values:
            continue
        name, value = f"{section}.{key}", values[key]
        if spec is bool:
            _require(isinstance(value, bool), f"{name} must be True or False, got {value!r}")
        elif spec == (bool, None):
            _require(
                value is None or isinstance(value, bool),
                f"{name} must be True, False or None, got {value!r}",
            )
        elif spec[0] is int:
            _check_int(name, value, spec[1], spec[2])
        else:
            _check_number(name, value, spec[0], spec[1], lo_open=spec[2], hi_open=spec[3])


def _check_pipeline(pipeline: list) -> None:
    """Each op's arguments, checked by the op itself (see :func:`cnnzoo.data.check_pipeline`)."""
    from cnnzoo.data import check_pipeline

    check_pipeline(list(pipeline))


def _check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = list(choices)
    _require(
        value in choices, f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
    )


def _check_runtime(cfg: Mapping[str, Any]) -> None:
    _check_int("seed", cfg["seed"], 0, MAX_SEED)
    for key in ("deterministic", "channels_last", "compile"):
        _require(isinstance(cfg[key], bool), f"{key} must be True or False, got {cfg[key]!r}")
    device = cfg["device"]
    _require(
        device in ("auto", "cpu", "cuda")
        or (isinstance(device, str) and device.startswith("cuda:")),
        f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}",
    )
    _require(isinstance(cfg["work_dir"], str) and cfg["work_dir"], "work_dir must be a folder path")
    workflow = cfg["workflow"]
    _require(
        isinstance(workflow, list | tuple)
        and len(workflow) > 0
        and all(
            isinstance(s, list | tuple)
            and len(s) == 2
            and s[0] in ("train", "val")
            and is_int(s[1])
            and 0 < s[1] <= MAX_EPOCHS
            for s in workflow
        ),
        f"workflow must be a list of (phase, epochs) with phase 'train' or 'val', e.g. "
        f"[('train', 1), ('val', 1)]; got {workflow!r}",
    )
    log = _section(cfg, "log")
    _check_keys("log", log, RUNTIME_DEFAULTS["log"])
    _require(
        is_int(log["interval"]) and log["interval"] > 0,
        f"log.interval must be an integer > 0, got {log['interval']!r}",
    )
    _require(isinstance(log["tensorboard"], bool), "log.tensorboard must be True or False")
    ckpt = _section(cfg, "checkpoint")
    _check_keys("checkpoint", ckpt, RUNTIME_DEFAULTS["checkpoint"])
    _require(
        isinstance(ckpt["monitor"], str),
        "checkpoint.monitor must be a metric name such as 'val/top1'",
    )
    _check_choice("checkpoint.mode", ckpt["mode"], ("min", "max"))
    es = cfg["early_stopping"]
    if es is not None:
        es = _section(cfg, "early_stopping")
        _check_keys("early_stopping", es, OPTIONAL_SECTIONS["early_stopping"])
        full = {**OPTIONAL_SECTIONS["early_stopping"], **es}
        _check_choice("early_stopping.mode", full["mode"], ("min", "max"))
        _check_int("early_stopping.patience", full["patience"], 0, MAX_EPOCHS)
        _require(
            _is_number(full["min_delta"]) and full["min_delta"] >= 0,
            "early_stopping.min_delta must be a number >= 0",
        )
    amp = _section(cfg, "amp")
    _check_keys("amp", amp, RUNTIME_DEFAULTS["amp"])
    _require(isinstance(amp["enabled"], bool), "amp.enabled must be True or False")
    _check_choice("amp.dtype", amp["dtype"], ("bfloat16", "float16"))
    _check_choice("nan_policy", cfg["nan_policy"], ("stop", "skip"))
    _require(
        isinstance(cfg["sync_bn"], bool), f"sync_bn must be True or False, got {cfg['sync_bn']!r}"
    )
    _check_keys("auto_scale_lr", _section(cfg, "auto_scale_lr"), RUNTIME_DEFAULTS["auto_scale_lr"])
    lookahead = cfg["lookahead"]
    if lookahead is not None:
        lookahead = _section(cfg, "lookahead")
        _check_keys("lookahead", lookahead, OPTIONAL_SECTIONS["lookahead"])
        full = {**OPTIONAL_SECTIONS["lookahead"], **lookahead}
        _check_int("lookahead.k", full["k"], 1, MAX_STEPS)
        _require(
            _is_number(full["alpha"]) and 0 < full["alpha"] <= 1,
            f"lookahead.alpha must be in (0, 1], got {full['alpha']!r}",
        )
    ema = cfg["ema"]
    if ema is not None:
        ema = _section(cfg, "ema")
        _check_keys("ema", ema, OPTIONAL_SECTIONS["ema"])
        full = {**OPTIONAL_SECTIONS["ema"], **ema}
        _require(
            _is_number(full["decay"]) and 0 < full["decay"] < 1,
            f"ema.decay must be in (0, 1), e.g. 0.9998; got {full['decay']!r}",
        )
        _check_int("ema.every", full["every"], 1, MAX_STEPS)
        _require(isinstance(full["warmup"], bool), "ema.warmup must be True or False")
    _check_int("sync_every", cfg["sync_every"], 1, MAX_STEPS)
    _require(
        cfg["nan_policy"] != "skip" or cfg["sync_every"] == 1,
        f"nan_policy='skip' needs the loss checked before every step (sync_every=1); with "
        f"sync_every={cfg['sync_every']} a non-finite loss reaches the weights before it is seen. "
        "Use nan_policy='stop' or sync_every=1",
    )
    clip = cfg["clip_grad"]
    if clip is not None:
        clip = _section(cfg, "clip_grad")
        _check_keys("clip_grad", clip, _optional_keys("clip_grad"))
        _require(
            _is_number(clip.get("max_norm")) and clip["max_norm"] > 0,
            f"clip_grad.max_norm must be a number > 0, got {clip.get('max_norm')!r}",
        )
        _check_number("clip_grad.norm_type", clip.get("norm_type", 2.0), 0, math.inf, lo_open=True)


def _check_model(cfg: Mapping[str, Any]) -> None:
    from cnnzoo.models import get_model_entry

    model = _section(cfg, "model")
    _require(
        "type" in model, "model.type is missing: name a registered model (see `cnnzoo models`)"
    )
    entry = get_model_entry(str(model["type"]))
    _check_keys("model", model, _type_keys("model", entry.name))
    for key in ("num_classes", "in_chans"):
        _require(key in model, f"model.{key} is missing")
        _check_int(f"model.{key}", model[key], 1, MAX_CLASSES)
    _check_weights_source("model.pretrained", model.get("pretrained"))
    _check_weights_source("load_from", cfg.get("load_from"))
    _require(
        not (model.get("pretrained") and cfg.get("load_from")),
        "model.pretrained and load_from both name weights to start from; set one of them",
    )
    strict = model.get("pretrained_strict", True)
    _require(
        isinstance(strict, bool),
        f"model.pretrained_strict must be True (refuse weights that do not fit) or False (load "
        f"what fits, report the rest); got {strict!r}",
    )


def _check_weights_source(key: str, source: Any) -> None:
    """``model.pretrained`` / ``load_from``: None, a library, a Hub name or a checkpoint file."""
    from cnnzoo.models import parse_hub_name

    if source in (None, False, True, "torchvision", "timm"):
        return
    _require(
        isinstance(source, str) and source != "",
        f"{key} must be None, 'torchvision', 'timm', 'hf-hub:OWNER/NAME' or the path of a "
        f"checkpoint file; got {source!r}",
    )
    if source.startswith("hf-hub:"):
        try:
            parse_hub_name(source)
        except ConfigError as e:
            raise ConfigError(f"{key}: {e}") from None
        return
    path = Path(source).expanduser()
    _require(path.is_file(), f"{key}={source!r}: no such checkpoint file")
    with open(path, "rb") as f:
        head = f.read(4)
    _require(
        head[:2] == b"PK" or head[:1] == b"\x80" or path.suffix == ".safetensors",
        f"{key}={source!r} is not a PyTorch checkpoint (torch.save file); give a .pt/.pth "
        "state_dict or a .safetensors file, or 'torchvision'/'timm' for the published weights",
    )


def _check_data(cfg: Mapping[str, Any]) -> None:
    from cnnzoo.data import OPS
    from cnnzoo.models import get_model_entry

    data = _section(cfg, "data")
    _require("type" in data, f"data.type is missing: one of {', '.join(DATASETS)}")
    if not _known(data["type"], DATASETS):
        raise unknown("dataset", str(data["type"]), DATASETS)
    _check_keys("data", data, ("type", *DATA_DEFAULTS, *DATA_OPTIONAL))
    for split in ("train", "val", "test"):
        part = data[split]
        _require(isinstance(part, Mapping), f"data.{split} must be a dict")
        _check_keys(f"data.{split}", part, (*DATA_DEFAULTS[split], *SPLIT_OPTIONAL))
        _check_int(f"data.{split}.batch_size", part["batch_size"], 1, MAX_BATCH)
    root = data["root"]
    _require(
        root is None or (isinstance(root, str) and root != ""),
        f"data.root must be None (the default data folder) or a folder path, got {root!r}",
    )
    folder = data.get("folder")
    _require(
        folder is None
        or (
            isinstance(folder, str)
            and folder not in ("", ".", "..")
            and not set("/\\") & set(folder)
        ),
        f"data.folder must be None or the name of one subfolder of $CNNZOO_DATA, got {folder!r}",
    )
    _require(
        folder is None or data["type"] == "imagefolder",
        f"data.folder names an ImageFolder's subfolder of $CNNZOO_DATA; data.type={data['type']} "
        "is read from its own torchvision folder there: remove data.folder",
    )
    _require(isinstance(data["test"]["tta_flip"], bool), "data.test.tta_flip must be True or False")
    shift = data["test"].get("tta_translate", 0)
    _check_int("data.test.tta_translate", shift, 0, MAX_IMAGE_SIZE)
    pipeline = data["train"]["pipeline"]
    _require(
        isinstance(pipeline, list | tuple),
        "data.train.pipeline must be a list of dict(type=..., ...)",
    )
    for i, op in enumerate(pipeline):
        _require(
            isinstance(op, Mapping) and "type" in op,
            f"data.train.pipeline.{i} must be dict(type=..., ...)",
        )
        keys = _pipeline_op_keys(op["type"])
        if not keys and not _known(op["type"], OPS):
            raise unknown("pipeline op", str(op["type"]), OPS)
        _check_keys(f"data.train.pipeline.{i}", op, ("type", *keys))
    _check_pipeline(pipeline)
    vs = data["val_split"]
    _require(
        _is_number(vs) and 0 <= vs < 1, f"data.val_split must be a fraction in [0, 1), got {vs!r}"
    )
    _check_int("data.split_seed", data["split_seed"], 0, MAX_SEED)
    subset = data.get("train_subset")
    _require(
        subset is None
        or (is_int(subset) and subset >= 1)
        or (isinstance(subset, float) and 0 < subset <= 1),
        f"data.train_subset must be None, a fraction in (0, 1] (e.g. 0.1) or a number of "
        f"training images (e.g. 5000); got {subset!r}",
    )
    _require(isinstance(data["download"], bool), "data.download must be True or False")
    _check_choice("data.loader", data["loader"], ("auto", "device", "dataloader", "stream"))
    _check_choice("data.format", data.get("format", "folder"), ("folder", "shards"))
    if data.get("resize") is not None:
        _check_int("data.resize", data["resize"], 1, MAX_IMAGE_SIZE)
    _check_choice("data.decode", data.get("decode", "workers"), ("workers", "device"))
    _check_int("data.num_workers", data["num_workers"], 0, MAX_WORKERS)
    _check_choice("data.in_chans", data["in_chans"], (None, 1, 3))
    size = data["image_size"]
    if size is not None:
        ok = (is_int(size) and size > 0) or (
            isinstance(size, list | tuple)
            and len(size) == 2
            and all(is_int(s) and s > 0 for s in size)
        )
        _require(ok, f"data.image_size must be None, an integer or (height, width); got {size!r}")
        largest = size if is_int(size) else max(size)
        _require(
            largest <= MAX_IMAGE_SIZE,
            f"data.image_size={size!r} is larger than {MAX_IMAGE_SIZE} pixels, far beyond what "
            f"these networks take (224 for ImageNet-sized inputs); choose a smaller size",
        )
    for key in ("mean", "std"):
        v = data[key]
        if v is not None:
            _require(
                isinstance(v, list | tuple) and len(v) > 0 and all(_is_number(x) for x in v),
                f"data.{key} must be None or a sequence of numbers, one per channel; got {v!r}",
            )
    _require(
        data["std"] is None or all(s > 0 for s in data["std"]),
        f"data.std must be positive, got {data['std']!r}",
    )

    num_classes, native_chans, native_size = DATASETS[data["type"]]
    model = cfg["model"]
    chans = data["in_chans"] or native_chans
    if chans is not None and chans != model["in_chans"]:
        raise ConfigError(
            f"model.in_chans={model['in_chans']} but {data['type']} images have {chans} channel(s); "
            f"set model.in_chans={chans} or data.in_chans={model['in_chans']}"
        )
    regression = (
        isinstance(cfg["loss"], Mapping) and cfg["loss"].get("type") in _regression_losses()
    )
    if num_classes is not None and not regression and model["num_classes"] != num_classes:
        raise ConfigError(
            f"model.num_classes={model['num_classes']} but {data['type']} has {num_classes} classes; "
            f"set model.num_classes={num_classes}"
        )
    hw = (size, size) if is_int(size) else tuple(size) if size is not None else native_size
    min_hw = get_model_entry(model["type"]).cfg.min_input_size
    fixed = model.get("img_size")  # a model built for one input size (MLP-Mixer) takes that one
    if is_int(fixed):
        min_hw = (fixed, fixed)
    elif isinstance(fixed, list | tuple) and len(fixed) == 2 and all(map(is_int, fixed)):
        min_hw = tuple(fixed)
    if hw is not None and (hw[0] < min_hw[0] or hw[1] < min_hw[1]):
        raise ConfigError(
            f"{model['type']} needs inputs of at least {min_hw[0]}x{min_hw[1]} but {data['type']} images are "
            f"{hw[0]}x{hw[1]}; set data.image_size={max(min_hw)} or larger"
        )
    if hw is not None and shift >= min(hw):
        raise ConfigError(
            f"data.test.tta_translate={shift} must be smaller than the images ({hw[0]}x{hw[1]}); "
            "airbench uses 2 pixels at 32x32"
        )
    for key in ("mean", "std"):
        if chans is not None and data[key] is not None and len(data[key]) != chans:
            raise ConfigError(
                f"data.{key} has {len(data[key])} value(s) but the images have {chans} channel(s); "
                f"give one per channel or None to compute them"
            )


def _check_loss(cfg: Mapping[str, Any]) -> None:
    loss = _section(cfg, "loss")
    if not _known(loss.get("type"), schemas()["loss"]):
        raise unknown("loss", str(loss.get("type")), schemas()["loss"])
    _check_keys("loss", loss, _type_keys("loss", loss["type"]))
    ls = loss.get("label_smoothing", 0.0)
    _require(_is_number(ls) and 0 <= ls < 1, f"loss.label_smoothing must be in [0, 1), got {ls!r}")
    aux = loss.get("aux_weight", 0.0)
    _require(_is_number(aux) and aux >= 0, f"loss.aux_weight must be a number >= 0, got {aux!r}")
    _check_number("loss.delta", loss.get("delta", 1.0), 0, math.inf, lo_open=True)
    if loss["type"] in _regression_losses():
        _require(
            cfg["model"]["num_classes"] == 1,
            f"loss {loss['type']!r} is a regression loss: set model.num_classes=1 (one predicted value)",
        )


def _check_optim(cfg: Mapping[str, Any]) -> None:
    opt = _section(cfg, "optimizer")
    if not _known(opt.get("type"), schemas()["optimizer"]):
        raise unknown("optimizer", str(opt.get("type")), schemas()["optimizer"])
    _check_keys("optimizer", opt, _type_keys("optimizer", opt["type"]))
    lr = opt.get("lr")
    _require(_is_number(lr) and lr > 0, f"optimizer.lr must be a number > 0, got {lr!r}")
    _check_ranges("optimizer", opt, OPTIMIZER_RANGES)
    betas = opt.get("betas", (0.9, 0.999))
    _require(
        isinstance(betas, list | tuple)
        and len(betas) == 2
        and all(_is_number(b) and 0 <= b < 1 for b in betas),
        f"optimizer.betas must be two numbers in [0, 1), e.g. (0.9, 0.999); got {betas!r}",
    )

    train_cfg = _section(cfg, "train_cfg")
    _check_keys("train_cfg", train_cfg, ("max_epochs", *TRAIN_CFG_OPTIONAL))
    epochs = train_cfg.get("max_epochs")
    _check_int("train_cfg.max_epochs", epochs, 1, MAX_EPOCHS)
    _check_int("train_cfg.accumulate", train_cfg.get("accumulate", 1), 1, MAX_STEPS)

    sched = cfg["param_scheduler"]
    if sched is None:
        return
    sched = _section(cfg, "param_scheduler")
    if not _known(sched.get("type"), schemas()["param_scheduler"]):
        raise unknown("LR scheduler", str(sched.get("type")), schemas()["param_scheduler"])
    _check_keys("param_scheduler", sched, _type_keys("param_scheduler", sched["type"]))
    for key in SCHEDULER_REQUIRED.get(sched["type"], ()):
        _require(key in sched, f"param_scheduler {sched['type']!r} needs param_scheduler.{key}")
    warmup = sched.get("warmup_epochs", 0)
    _require(
        is_int(warmup) and 0 <= warmup < epochs,
        f"param_scheduler.warmup_epochs must be an integer in [0, max_epochs={epochs}), got {warmup!r}",
    )
    milestones = sched.get("milestones")
    if milestones is not None:
        _require(
            isinstance(milestones, list | tuple)
            and all(is_int(m) and 0 < m <= MAX_EPOCHS for m in milestones)
            and list(milestones) == sorted(milestones),
            f"param_scheduler.milestones must be increasing epoch numbers, got {milestones!r}",
        )
    _check_ranges("param_scheduler", sched, SCHEDULER_RANGES)
    min_lr = sched.get("min_lr", 0.0)
    _require(
        min_lr <= lr,
        f"param_scheduler.min_lr={min_lr} is above optimizer.lr={lr}: the cosine schedule "
        "anneals from lr down to min_lr",
    )
    if sched["type"] == "ReduceLROnPlateau":
        _check_choice("param_scheduler.mode", sched.get("mode", "min"), ("min", "max"))
        _require(
            isinstance(sched.get("monitor", "val/loss"), str),
            "param_scheduler.monitor must be a metric name such as 'val/loss'",
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _canonical_text(cfg: Config | Mapping[str, Any]) -> str:
    return json.dumps(
        _jsonable(_to_plain(cfg)), sort_keys=True, separators=(",", ":"), default=repr
    )
