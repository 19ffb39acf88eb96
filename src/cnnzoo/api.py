"""Training from Python: ``load_config``, ``train`` with callbacks and your own data, ``load_run``.

import cnnzoo

cfg = cnnzoo.load_config("quickstart_lenet5_digits", {"train_cfg.max_epochs": 3})
result = cnnzoo.train(cfg, callbacks=[PrintLoss()])
result.metrics["test/top1"], result.best_checkpoint
model, meta = cnnzoo.load_run(result.run_dir)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmengine.config import Config

from cnnzoo import rundir
from cnnzoo.config import load_config
from cnnzoo.data import DataBundle
from cnnzoo.engine import trainer
from cnnzoo.engine.callbacks import Callback
from cnnzoo.engine.checkpoint import load_trained


@dataclass(frozen=True)
class TrainResult:
    """What a finished run left: its directory, the final test metrics (``summary.json``;
    ``test/...``, or ``val/...`` for data without a test split) and the checkpoint tested."""

    run_dir: Path
    metrics: dict[str, float]
    best_checkpoint: Path
    summary: dict[str, Any]


def train(
    cfg: Config | str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    callbacks: Sequence[Callback | Callable[[str, dict], None]] = (),
    data: DataBundle | None = None,
    resume: str | os.PathLike | None = None,
    quiet: bool = True,
) -> TrainResult:
    """Train ``cfg`` (a loaded config, a config file or name, or a dict; ``None``: the offline
    quick start) and return the :class:`TrainResult`. ``data`` replaces the data the config
    describes (see :class:`~cnnzoo.data.DataBundle`); ``resume`` as ``cnnzoo train --resume``."""
    if not isinstance(cfg, Config):
        cfg = load_config(cfg)
    run_dir = trainer.train(cfg, resume=resume, quiet=quiet, callbacks=callbacks, data=data)
    summary = json.loads(rundir.paths(run_dir).summary.read_text())
    metrics = {k: v for k, v in summary.items() if k.startswith(("test/", "val/"))}
    return TrainResult(run_dir, metrics, Path(summary["checkpoint"]), summary)


def load_run(run: str | os.PathLike, device: str = "cpu"):
    """A trained model (eval mode) and its metadata (classes, mean/std, config, epoch, best)
    from a run directory or checkpoint file: the best checkpoint of a run directory."""
    return load_trained(run, device=device)
