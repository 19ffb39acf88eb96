"""Training checkpoints: atomic writes, safe reads, RNG states, finding runs, loading models.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only (RNG states are
tensors), so it loads with ``torch.load(weights_only=True)``. It is written to a temporary
file in the same directory, flushed, fsynced and moved over the old one with ``os.replace``:
a crash mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import contextlib
import os
import random
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from cnnzoo import rundir
from cnnzoo.errors import CheckpointError, ConfigError, TrainingError
from cnnzoo.models import create_model, extract_state_dict, load_weights, read_checkpoint
from cnnzoo.plaindata import check_plain, is_int

FORMAT_VERSION = 2  # the only format read: the config is stored as plain data
REQUIRED_KEYS = (
    "format_version",
    "model_name",
    "model_kwargs",
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "epoch",
    "global_step",
    "rng",
    "best",
    "history",
    "config",
    "config_hash",
    "data_meta",
)


def save_checkpoint(obj: Mapping[str, Any], path: str | Path) -> None:
    """Write ``obj`` to ``path`` atomically. A failed write (a full disk, a read-only folder)
    raises :class:`TrainingError` naming the path; any previous file there stays intact."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(dict(obj), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except (OSError, RuntimeError) as e:  # torch.save reports a failed write as a RuntimeError
        reason = (
            e.strerror if isinstance(e, OSError) and e.strerror else "the write failed (disk full?)"
        )
        raise TrainingError(
            f"could not write checkpoint {path}: {reason}; any previous checkpoint there is "
            f"intact. Free disk space or choose another --work-dir, then resume"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint (weights_only) and check every field against the schema
    before anything uses it; a damaged one raises :class:`CheckpointError` naming the field,
    one of another format a :class:`CheckpointError` naming its format number."""
    path = Path(path)
    if path.is_file() and path.stat().st_size and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated: it is not a PyTorch zip archive"
        )
    ckpt = read_checkpoint(path)
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{path} is not a cnnzoo training checkpoint (missing {', '.join(missing)}); "
            f"to use plain weights, pass them as model.pretrained"
        )
    _check_format(path, ckpt["format_version"])
    for field, (ok, expected) in SCHEMA.items():
        if field in ckpt and not ok(ckpt[field]):
            raise CheckpointError(
                f"checkpoint {path} is damaged or not a cnnzoo checkpoint: {field} should be "
                f"{expected}, got {brief(ckpt[field])}"
            )
    _check_callback_states(ckpt, path)
    if not isinstance(ckpt["config"], Mapping):
        raise CheckpointError(
            f"checkpoint {path} is damaged or not a cnnzoo checkpoint: config should be the "
            f"resolved config as plain data, got {brief(ckpt['config'])}"
        )
    return ckpt


def _check_format(path: Path, version: Any) -> None:
    """Refuse, in one line, a checkpoint of any format but :data:`FORMAT_VERSION` (a version
    that is not an integer is left to the schema check, which names it as damaged)."""
    if not is_int(version) or version == FORMAT_VERSION:
        return
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, newer than this cnnzoo "
            f"understands ({FORMAT_VERSION}); upgrade cnnzoo"
        )
    raise CheckpointError(
        f"{path} has checkpoint format {version}, which this cnnzoo no longer reads (it reads "
        f"format {FORMAT_VERSION} only): train the run again, or use its weights as "
        f"model.pretrained"
    )


def _check_callback_states(ckpt: Mapping[str, Any], path: Path) -> None:
    """The state of each built-in callback, as that callback checks it (its ``check_state``)."""
    from cnnzoo.engine.callbacks import STATEFUL  # the callbacks use this module

    for callback in STATEFUL:
        if ckpt.get(callback.state_key) is not None:
            try:
                callback.check_state(ckpt[callback.state_key])
            except CheckpointError as e:
                raise CheckpointError(
                    f"checkpoint {path} is damaged or not a cnnzoo checkpoint: {e}"
                ) from None


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_scalar(x: Any) -> bool:
    return x is None or isinstance(x, int | float | str)


def _is_str_dict(x: Any) -> bool:
    return isinstance(x, Mapping) and all(isinstance(k, str) for k in x)


def _is_tensor_dict(x: Any) -> bool:
    return _is_str_dict(x) and all(isinstance(v, torch.Tensor) for v in x.values())


def _is_list_of(x: Any, ok: Callable[[Any], bool]) -> bool:
    return isinstance(x, list | tuple) and all(ok(v) for v in x)


def _plain(x: Any) -> bool:
    try:
        check_plain(x, "value")
    except ConfigError:
        return False
    return True


def _optimizer_state(x: Any) -> bool:
    return (
        isinstance(x, Mapping)
        and isinstance(x.get("state"), Mapping)
        and all(_is_str_dict(v) or isinstance(v, Mapping) for v in x["state"].values())
        and _is_list_of(x.get("param_groups"), lambda g: _is_str_dict(g) and "params" in g)
    )


def _rng(x: Any) -> bool:
    return (
        _is_str_dict(x)
        and isinstance(x.get("torch"), torch.Tensor)
        and x["torch"].dtype == torch.uint8
        and _is_list_of(x.get("cuda"), lambda t: isinstance(t, torch.Tensor))
        and isinstance(x.get("python"), torch.Tensor)
        and x["python"].numel() == 625
        and is_int(x.get("python_version"))
        and (x.get("python_gauss") is None or _is_number(x.get("python_gauss")))
    )


def _data_meta(x: Any) -> bool:
    return (
        _is_str_dict(x)
        and isinstance(x.get("dataset"), str)
        and _is_list_of(x.get("class_names"), lambda c: isinstance(c, str))
        and is_int(x.get("num_classes"))
        and x.get("in_chans") in (1, 3)
        and _is_list_of(x.get("image_size"), lambda v: is_int(v) and v > 0)
        and len(x["image_size"]) == 2
        and _is_list_of(x.get("mean"), _is_number)
        and _is_list_of(x.get("std"), lambda v: _is_number(v) and v > 0)
    )


def _partial(x: Any) -> bool:
    return x is None or (
        _is_str_dict(x)
        and is_int(x.get("step"))
        and x["step"] >= 0
        and isinstance(x.get("meter_sums"), torch.Tensor)
        and isinstance(x.get("meter_confusion"), torch.Tensor)
        and is_int(x.get("nan_streak", 0))
        and (x.get("step_lr") is None or _is_number(x["step_lr"]))
    )


def _non_negative_int(x: Any) -> bool:
    return is_int(x) and x >= 0


# field -> (check, what it should be); extra fields are allowed (newer minor additions). The
# state of each callback (nan_guard, lookahead, ema, best, early_stopping) is the callback's
# own to check: see _check_callback_states
SCHEMA: dict[str, tuple[Callable[[Any], bool], str]] = {
    "format_version": (lambda x: is_int(x) and x >= 1, f"an integer 1..{FORMAT_VERSION}"),
    "model_name": (lambda x: isinstance(x, str) and x != "", "a model name"),
    "model_kwargs": (lambda x: _is_str_dict(x) and _plain(x), "a dict of plain values"),
    "model": (_is_tensor_dict, "a dict of tensors (a state_dict)"),
    "optimizer": (_optimizer_state, "an optimizer state_dict (state, param_groups)"),
    "scheduler": (_is_str_dict, "a dict"),
    "scaler": (_is_str_dict, "a dict"),
    "epoch": (_non_negative_int, "an integer >= 0"),
    "global_step": (_non_negative_int, "an integer >= 0"),
    "rng": (_rng, "RNG states (torch, cuda, python)"),
    "history": (
        lambda x: _is_list_of(x, lambda r: _is_str_dict(r) and all(map(_is_scalar, r.values()))),
        "a list of dicts of numbers (one per epoch)",
    ),
    "config": (
        lambda x: isinstance(x, str) or (_is_str_dict(x) and _plain(x)),
        "the resolved config as plain data",
    ),
    "config_hash": (lambda x: isinstance(x, str), "a string"),
    "data_meta": (
        _data_meta,
        "dict(dataset, class_names, num_classes, in_chans, image_size, mean, std)",
    ),
    "partial": (_partial, "None or dict(step, meter_sums, meter_confusion)"),
    "world_size": (lambda x: is_int(x) and x >= 1, "an integer >= 1"),
    "global_batch_size": (lambda x: x is None or (is_int(x) and x >= 1), "an integer >= 1"),
    "lr_scale": (lambda x: _is_number(x) and x > 0, "a number > 0"),
}


def brief(x: Any) -> str:
    text = repr(x) if not isinstance(x, torch.Tensor) else f"a tensor {tuple(x.shape)}"
    return text if len(text) <= 60 else f"a {type(x).__name__} ({text[:50]}...)"


def rng_state() -> dict:
    """torch (CPU and CUDA) and Python RNG states, as tensors."""
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": torch.tensor(internal, dtype=torch.int64),
        "python_version": version,
        "python_gauss": gauss,
    }


def set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
    internal = tuple(int(v) for v in state["python"].tolist())
    random.setstate((state["python_version"], internal, state["python_gauss"]))


run_checkpoint = rundir.checkpoint


def latest_run(parent: Path) -> Path | None:
    """The newest run directory under ``parent`` to resume (:func:`cnnzoo.rundir.latest_run`),
    or None; a run whose last checkpoint does not load is reported and passed over."""
    return rundir.latest_run(parent, check=load_checkpoint)


def non_finite_weights(model: nn.Module) -> list[str]:
    """The names of the model's floating-point weights and buffers holding a NaN or an Inf."""
    return [
        name
        for name, t in model.state_dict().items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]


def load_trained(target: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A trained model (eval mode, on ``device``) and its metadata from a run directory or
    checkpoint file. ``meta`` holds class_names, mean, std, image_size, in_chans, num_classes,
    model_name, config (plain data), epoch and best."""
    path = run_checkpoint(target)
    ckpt = load_checkpoint(path)
    model = create_model(ckpt["model_name"], **dict(ckpt["model_kwargs"]))
    load_weights(model, extract_state_dict(ckpt), source=f"checkpoint {path}")
    bad = non_finite_weights(model)
    if bad:
        raise CheckpointError(
            f"checkpoint {path} holds NaN or infinite weights ({len(bad)} tensor(s), e.g. "
            f"{bad[0]}): it cannot score anything; use another checkpoint of the run "
            f"({rundir.BEST}, {rundir.LAST}) or train again"
        )
    meta = dict(ckpt["data_meta"])
    meta.update(
        model_name=ckpt["model_name"],
        config=ckpt["config"],
        epoch=ckpt["epoch"],
        best=ckpt["best"],
        path=str(path),
    )
    return model.to(device).eval(), meta
