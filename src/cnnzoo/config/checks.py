"""Validation of a completed config: every key against :mod:`cnnzoo.schema`, then what
only the sections together can say (the model against the data, the schedule against the
optimizer, the monitored metrics against what the run will log).

The first problem raises one :class:`~cnnzoo.errors.ConfigError` naming the key, the value
and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cnnzoo import schema
from cnnzoo.config.overrides import pipeline_op_keys
from cnnzoo.data import OPS, check_pipeline
from cnnzoo.errors import ConfigError, unknown
from cnnzoo.models import get_model_entry, model_arguments, parse_hub_name


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check a completed config (:func:`cnnzoo.schema.complete`); the first problem raises."""
    missing = [k for k in schema.NEEDED if k not in cfg]
    if missing:
        raise ConfigError(
            f"config lacks {', '.join(missing)}; inherit a part from configs/_base_/ "
            "(models/, datasets/, schedules/) for each"
        )
    for key in cfg:
        if key not in schema.TOP_LEVEL and not key.startswith("_"):
            raise schema.unknown_key(key, schema.TOP_LEVEL)
    for key, spec in schema.RUNTIME.keys.items():
        spec.accepts.check(key, cfg[key])
    for name, section in schema.SECTIONS.items():
        if not (section.optional and cfg[name] is None):
            schema.check_section(section, _section(cfg, name))
    schema.check_section(schema.TRAIN_CFG, _section(cfg, "train_cfg"))
    _check_runtime(cfg)
    _check_model(cfg)
    _check_data(cfg)
    _check_loss(cfg)
    _check_optimizer(cfg)
    _check_scheduler(cfg)
    _check_monitors(cfg)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = cfg[name]
    _require(isinstance(value, Mapping), f"{name} must be a dict, got {value!r}")
    return value


def _check_runtime(cfg: Mapping[str, Any]) -> None:
    _require(
        cfg["nan_policy"] != "skip" or cfg["sync_every"] == 1,
        f"nan_policy='skip' needs the loss checked before every step (sync_every=1); with "
        f"sync_every={cfg['sync_every']} a non-finite loss reaches the weights before it is seen. "
        "Use nan_policy='stop' or sync_every=1",
    )
    _check_weights_file("load_from", cfg["load_from"])


def _check_model(cfg: Mapping[str, Any]) -> None:
    model = _section(cfg, "model")
    _require(
        isinstance(model.get("type"), str),
        "model.type is missing: name a registered model (see `cnnzoo models`)",
    )
    entry = get_model_entry(model["type"])
    schema.check_section(schema.MODEL, model, extra=model_arguments(entry.name))
    for key, value in model.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"model.{key} must be a finite number, got {value!r}")
    _check_weights_file("model.pretrained", model["pretrained"])
    _require(
        not (model["pretrained"] and cfg["load_from"]),
        "model.pretrained and load_from both name weights to start from; set one of them",
    )


def _check_weights_file(key: str, source: Any) -> None:
    """``model.pretrained`` / ``load_from`` beyond their type: a Hub name that parses, or a
    checkpoint file that exists and looks like one."""
    if source in (None, False, True, "torchvision", "timm"):
        return
    if source.startswith("hf-hub:"):
        try:
            parse_hub_name(source)
        except ConfigError as e:
            raise ConfigError(f"{key}: {e}") from None
        return
    path = Path(source).expanduser()
    try:
        regular = path.is_file()
        head = b""
        if regular:
            with open(path, "rb") as f:
                head = f.read(4)
    except OSError as e:
        raise ConfigError(f"{key}={source!r}: cannot read it: {e.strerror or e}") from None
    _require(regular, f"{key}={source!r}: no such checkpoint file")
    _require(
        head[:2] == b"PK" or head[:1] == b"\x80" or path.suffix == ".safetensors",
        f"{key}={source!r} is not a PyTorch checkpoint (torch.save file); give a .pt/.pth "
        "state_dict or a .safetensors file, or 'torchvision'/'timm' for the published weights",
    )


def _check_data(cfg: Mapping[str, Any]) -> None:
    data = _section(cfg, "data")
    _require("type" in data, f"data.type is missing: one of {', '.join(schema.DATASETS)}")
    if not isinstance(data["type"], str) or data["type"] not in schema.DATASETS:
        raise unknown("dataset", str(data["type"]), schema.DATASETS)
    schema.check_section(schema.DATA, data)
    for split, section in schema.SPLITS.items():
        schema.check_section(section, _split(data, split))
    _require(
        data["folder"] is None or data["type"] == "imagefolder",
        f"data.folder names an ImageFolder's subfolder of $CNNZOO_DATA; data.type={data['type']} "
        "is read from its own torchvision folder there: remove data.folder",
    )
    streamed = data["loader"] == "stream" or data["format"] == "shards"
    _require(
        streamed or data["resize"] is None,
        "data.resize (the shorter side before the evaluation centre crop) belongs to the "
        "streaming path: set data.loader='stream' or drop data.resize",
    )
    _require(
        streamed or data["decode"] == "workers",
        "data.decode='device' (JPEGs decoded on the training device) belongs to the "
        "streaming path: set data.loader='stream' or drop data.decode",
    )
    pipeline = data["train"]["pipeline"]
    for i, op in enumerate(pipeline):
        keys = pipeline_op_keys(op["type"])
        if not keys and (not isinstance(op["type"], str) or op["type"] not in OPS):
            raise unknown("pipeline op", str(op["type"]), OPS)
        schema.check_keys(f"data.train.pipeline.{i}", op, ("type", *keys))
    check_pipeline(list(pipeline))
    _check_data_fits_model(cfg, data)


def _split(data: Mapping[str, Any], split: str) -> Mapping[str, Any]:
    part = data[split]
    _require(isinstance(part, Mapping), f"data.{split} must be a dict")
    return part


def _check_data_fits_model(cfg: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    num_classes, native_chans, native_size = schema.DATASETS[data["type"]]
    model = cfg["model"]
    chans = data["in_chans"] or native_chans
    if chans is not None and chans != model["in_chans"]:
        raise ConfigError(
            f"model.in_chans={model['in_chans']} but {data['type']} images have {chans} channel(s); "
            f"set model.in_chans={chans} or data.in_chans={model['in_chans']}"
        )
    if num_classes is not None and not _regression(cfg) and model["num_classes"] != num_classes:
        raise ConfigError(
            f"model.num_classes={model['num_classes']} but {data['type']} has {num_classes} classes; "
            f"set model.num_classes={num_classes}"
        )
    size = data["image_size"]
    hw = (size, size) if isinstance(size, int) else tuple(size) if size is not None else native_size
    min_hw = get_model_entry(model["type"]).cfg.min_input_size
    fixed = model.get("img_size")  # a model built for one input size (MLP-Mixer) takes that one
    if isinstance(fixed, int) and not isinstance(fixed, bool):
        min_hw = (fixed, fixed)
    elif (
        isinstance(fixed, list | tuple)
        and len(fixed) == 2
        and all(isinstance(s, int) for s in fixed)
    ):
        min_hw = tuple(fixed)
    if hw is not None and (hw[0] < min_hw[0] or hw[1] < min_hw[1]):
        raise ConfigError(
            f"{model['type']} needs inputs of at least {min_hw[0]}x{min_hw[1]} but {data['type']} images are "
            f"{hw[0]}x{hw[1]}; set data.image_size={max(min_hw)} or larger"
        )
    shift = data["test"]["tta_translate"]
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


def _regression(cfg: Mapping[str, Any]) -> bool:
    loss = cfg["loss"]
    return isinstance(loss, Mapping) and loss.get("type") in schema.REGRESSION_LOSSES


def _check_typed(
    cfg: Mapping[str, Any], typed: schema.Typed, kind_name: str, name: str | None = None
) -> Mapping[str, Any]:
    """A typed section: its type known, its keys those of the type, every value accepted
    (``name``: its key in ``cfg``, when not the section's dotted name)."""
    part = _section(cfg, name or typed.name)
    kind = part.get("type")
    if not isinstance(kind, str) or kind not in typed.types:
        raise unknown(kind_name, str(kind), typed.types)
    keys = typed.keys_of(kind)
    own = schema.Section(typed.name, {k: typed.keys[k] for k in keys if k != "type"}, typed.help)
    schema.check_section(own, part, ("type",))
    return part


def _check_loss(cfg: Mapping[str, Any]) -> None:
    loss = _check_typed(cfg, schema.LOSS, "loss")
    if loss["type"] in schema.REGRESSION_LOSSES:
        _require(
            cfg["model"]["num_classes"] == 1,
            f"loss {loss['type']!r} is a regression loss: set model.num_classes=1 (one predicted value)",
        )


def _check_optimizer(cfg: Mapping[str, Any]) -> None:
    optimizer = _check_typed(cfg, schema.OPTIMIZER, "optimizer")
    if optimizer["type"] == "Muon":
        _check_typed(optimizer, schema.MUON_AUX, "optimizer.aux type", name="aux")


def _check_scheduler(cfg: Mapping[str, Any]) -> None:
    if cfg["param_scheduler"] is None:
        return
    sched = _check_typed(cfg, schema.SCHEDULER, "LR scheduler")
    epochs = cfg["train_cfg"]["max_epochs"]
    warmup = sched.get("warmup_epochs", 0)
    _require(
        warmup < epochs,
        f"param_scheduler.warmup_epochs must be an integer in [0, max_epochs={epochs}), got {warmup!r}",
    )
    lr = cfg["optimizer"]["lr"]
    min_lr = sched.get("min_lr", 0.0)
    _require(
        min_lr <= lr,
        f"param_scheduler.min_lr={min_lr} is above optimizer.lr={lr}: the cosine schedule "
        "anneals from lr down to min_lr",
    )


def run_metrics(cfg: Mapping[str, Any]) -> list[str]:
    """The metrics each epoch of this config's run logs (what ``checkpoint.monitor``,
    ``early_stopping.monitor`` and ReduceLROnPlateau's monitor may name)."""
    regression = _regression(cfg)
    names = ["loss", "top1"]
    if cfg["model"]["num_classes"] >= 5 and not regression:
        names.append("top5")
    if regression:
        names += ["mae", "rmse"]
    phases = ["train", "val"] + (["val_ema"] if cfg["ema"] is not None else [])
    return [f"{phase}/{name}" for phase in phases for name in names]


def _check_monitors(cfg: Mapping[str, Any]) -> None:
    monitors = {"checkpoint.monitor": cfg["checkpoint"]["monitor"]}
    if cfg["early_stopping"] is not None:
        monitors["early_stopping.monitor"] = cfg["early_stopping"]["monitor"]
    sched = cfg["param_scheduler"]
    if sched is not None and sched["type"] == "ReduceLROnPlateau":
        monitors["param_scheduler.monitor"] = sched["monitor"]
    logged = run_metrics(cfg)
    for key, name in monitors.items():
        _require(
            name in logged,
            f"{key}={name!r} is not a metric this run logs; choose one of: {', '.join(logged)}",
        )
