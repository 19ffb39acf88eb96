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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from cnnzoo.errors import CheckpointError, TrainingError
from cnnzoo.models import create_model, extract_state_dict, load_weights, read_checkpoint

FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format_version", "model_name", "model_kwargs", "model", "optimizer", "scheduler", "scaler",
    "epoch", "global_step", "rng", "best", "history", "config", "config_hash", "data_meta",
)  # fmt: skip


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
    """Read a training checkpoint (weights_only) and check that it is complete."""
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
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {ckpt['format_version']}, newer than this cnnzoo "
            f"understands ({FORMAT_VERSION}); upgrade cnnzoo"
        )
    return ckpt


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


def run_checkpoint(target: str | Path) -> Path:
    """The checkpoint file of ``target``: itself if a file, else the run's best.pt (or last.pt)."""
    target = Path(target)
    if target.is_file():
        return target
    if not target.is_dir():
        raise CheckpointError(f"{target} is neither a run directory nor a checkpoint file")
    for name in ("best.pt", "last.pt"):
        if (target / "checkpoints" / name).is_file():
            return target / "checkpoints" / name
    raise CheckpointError(
        f"{target} holds no checkpoints/best.pt or last.pt; is it a cnnzoo run directory?"
    )


def latest_run(parent: Path) -> Path | None:
    """The newest run directory under ``parent`` to resume, or None. A run whose last.pt is
    truncated or corrupt is reported and passed over, never taken as the latest; a run that
    stopped before its first checkpoint is taken (it starts over in its own directory)."""
    runs = sorted(
        (
            p
            for p in parent.glob("*")
            if (p / "config.py").is_file() or (p / "checkpoints").is_dir()
        ),
        reverse=True,
    )
    for run in runs:
        last = run / "checkpoints" / "last.pt"
        if not last.is_file():
            return run
        try:
            load_checkpoint(last)
            return run
        except CheckpointError as e:
            print(f"note: passing over {run}: {e}")
    return None


def load_trained(target: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A trained model (eval mode, on ``device``) and its metadata from a run directory or
    checkpoint file. ``meta`` holds class_names, mean, std, image_size, in_chans, num_classes,
    model_name, config (text), epoch and best."""
    path = run_checkpoint(target)
    ckpt = load_checkpoint(path)
    model = create_model(ckpt["model_name"], **dict(ckpt["model_kwargs"]))
    load_weights(model, extract_state_dict(ckpt), source=f"checkpoint {path}")
    meta = dict(ckpt["data_meta"])
    meta.update(
        model_name=ckpt["model_name"],
        config=ckpt["config"],
        epoch=ckpt["epoch"],
        best=ckpt["best"],
        path=str(path),
    )
    return model.to(device).eval(), meta
