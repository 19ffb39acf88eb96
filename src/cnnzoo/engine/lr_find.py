"""The learning-rate range test (Smith 2017; fastai's ``lr_find``): a short run that raises
the rate exponentially every step, records the loss, and suggests the rate where the loss
falls fastest. The model and optimizer are the config's, built fresh; nothing is saved. The
chart of a sweep is :func:`cnnzoo.analysis.plots.plot_range_test` (the engine draws nothing)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from cnnzoo.data import build_data
from cnnzoo.engine.losses import build_loss
from cnnzoo.engine.optim import build_optimizer
from cnnzoo.engine.trainer import build_model
from cnnzoo.errors import ConfigError, TrainingError
from cnnzoo.machine import resolve_device

SMOOTHING = 0.9  # the exponential moving average of the loss that is charted (fastai's 0.98)
DIVERGED = 4.0  # the sweep stops once the smoothed loss is this many times its lowest


@dataclass
class RangeTest:
    """The rates tried, the smoothed loss at each, and the suggested rate."""

    lrs: list[float]
    losses: list[float]
    suggested: float


def lr_range_test(cfg, *, start: float = 1e-7, end: float = 10.0, steps: int = 100) -> RangeTest:
    """Train ``cfg``'s model for up to ``steps`` steps at rates from ``start`` to ``end``
    (log-spaced), stopping when the loss diverges."""
    if not 0 < start < end or steps < 5:
        raise ConfigError(f"need 0 < start < end and steps >= 5; got {start}, {end}, {steps}")
    device = resolve_device(cfg.get("device", "auto"))
    seed = int(cfg.get("seed", 0))
    torch.manual_seed(seed)
    data = build_data(cfg.data, device=device, seed=seed)
    loss_fn = build_loss(cfg.get("loss") or {})
    model, _, _ = build_model(dict(cfg.model), data, regression=loss_fn.regression)
    model.to(device).train()
    optimizer = build_optimizer(model, cfg.optimizer)
    lrs, losses, smooth, lowest = [], [], 0.0, math.inf
    for step, (images, targets) in enumerate(_endless(data.train)):
        if step == steps:
            break
        lr = start * (end / start) ** (step / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        smooth = SMOOTHING * smooth + (1 - SMOOTHING) * loss.item()
        smoothed = smooth / (1 - SMOOTHING ** (step + 1))  # bias-corrected, as Adam's moments
        if not math.isfinite(smoothed) or smoothed > DIVERGED * lowest:
            break
        lrs.append(lr)
        losses.append(smoothed)
        lowest = min(lowest, smoothed)
    if len(lrs) < 5:
        raise TrainingError(
            f"the loss diverged after {len(lrs)} steps, from {start:g}: lower the start rate"
        )
    return RangeTest(lrs, losses, suggest(lrs, losses))


def _endless(batches) -> Iterator:
    """The training batches epoch after epoch (a sweep may be longer than one epoch)."""
    for epoch in itertools.count(1):
        batches.set_epoch(epoch)
        yield from batches


def suggest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the smoothed loss falls fastest against log(rate), before its lowest."""
    last = losses.index(min(losses))
    slopes = [
        (losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
        for i in range(max(last, 1))
    ]
    return lrs[slopes.index(min(slopes))]
