"""Latency and throughput, measured the plain way: warm up, then time repeated passes.

Latency is the median time of one batch-1 pass (what a single request waits for);
throughput is images per second at ``batch_size`` (what a batch job gets). Each repeat
times enough passes to last at least :data:`MIN_REPEAT_S` (a tenth of a millisecond is
below what one clock reading resolves on a busy machine), and the spread of the repeats is
reported beside the median: half their interquartile range, as a fraction of the median.
A spread above :data:`SPREAD_LIMIT` means the machine was too busy (or the repeats too few)
for the number to be trusted. On CUDA every timing is bracketed by
``torch.cuda.synchronize`` so that queued kernels are counted.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cnnzoo.errors import ConfigError
from cnnzoo.machine import resolve_device

MODES = ("inference", "train")
MIN_REPEAT_S = 0.005  # each timed repeat runs this long at least
SPREAD_LIMIT = 0.10  # a spread above this (±10% of the median) is too wide to trust


def measure_speed(
    model: nn.Module,
    input_size: Sequence[int],
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    mode: str = "inference",
    warmup: int = 3,
    repeats: int = 10,
) -> dict:
    """Median batch-1 latency (ms) and throughput (images/s at ``batch_size``) of ``model``
    over ``repeats`` timings after ``warmup`` untimed passes, each with its spread
    (``latency_spread``, ``throughput_spread``: see the module's docstring).

    ``mode='inference'``: eval mode under ``torch.inference_mode``. ``mode='train'``: a
    training step without the optimizer (train mode, forward, cross-entropy on random labels,
    backward), on a copy of the model so that its BatchNorm statistics and gradients stay
    untouched. The model is moved to ``device`` for the measurement and back afterwards.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    if batch_size < 1 or warmup < 0 or repeats < 1:
        raise ConfigError(
            f"need batch_size >= 1, warmup >= 0, repeats >= 1; got {batch_size}, {warmup}, {repeats}"
        )
    input_size = tuple(int(s) for s in input_size)
    dev = resolve_device(device)
    param = next(model.parameters(), None)
    home = param.device if param is not None else torch.device("cpu")
    if mode == "train":
        net = copy.deepcopy(model).to(dev).train()
    else:
        net = model.to(dev)
        was_training = net.training
        net.eval()
    try:
        latency, latency_spread = _time_passes(net, input_size, 1, dev, mode, warmup, repeats)
        per_batch, batch_spread = _time_passes(
            net, input_size, batch_size, dev, mode, warmup, repeats
        )
    finally:
        if mode == "inference":
            net.train(was_training)
            model.to(home)
    return dict(
        device=str(dev),
        mode=mode,
        batch_size=batch_size,
        warmup=warmup,
        repeats=repeats,
        latency_ms=latency * 1000.0,
        latency_spread=latency_spread,
        throughput=batch_size / per_batch,
        throughput_spread=batch_spread,  # the relative spread of the batch times
    )


def spread(times: Sequence[float]) -> float:
    """Half the interquartile range of ``times`` as a fraction of their median (0 for one)."""
    if len(times) < 2:
        return 0.0
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return (q3 - q1) / 2 / median if median > 0 else 0.0


def unsteady(what: str, speed: dict) -> list[str]:
    """``what``'s timings of :func:`measure_speed` whose spread is above SPREAD_LIMIT, as
    ``"lenet5 CPU throughput ±35%"``."""
    return [
        f"{what} {name} {format_spread(speed[key])}"
        for name, key in (("latency", "latency_spread"), ("throughput", "throughput_spread"))
        if speed[key] > SPREAD_LIMIT
    ]


def unsteady_warning(
    timings: Sequence[str],
    repeats: int,
    remedy: str = "measure again on a quiet machine, or with more --repeats",
) -> str:
    """The warning for the :func:`unsteady` timings of one measurement."""
    return (
        f"timings spread more than {format_spread(SPREAD_LIMIT)} of their median over "
        f"{repeats} repeats, too wide to trust ({', '.join(timings)}): the machine is busy; "
        f"{remedy}"
    )


def format_spread(value: float) -> str:
    """A spread as the table cells show it after the median: ``±3%``."""
    return f"±{value * 100:.0f}%"


def _time_passes(
    net: nn.Module,
    input_size: tuple[int, ...],
    batch_size: int,
    dev: torch.device,
    mode: str,
    warmup: int,
    repeats: int,
) -> float:
    """Median seconds of one pass over a batch of ``batch_size`` random images, and the
    spread of the ``repeats`` timings (each of as many passes as last MIN_REPEAT_S)."""
    x = torch.randn(batch_size, *input_size, device=dev)
    y = torch.randint(0, max(getattr(net, "num_classes", 1), 1), (batch_size,), device=dev)

    def one_pass() -> None:
        if mode == "inference":
            with torch.inference_mode():
                net(x)
            return
        out = net(x)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        loss = (
            F.cross_entropy(logits, y)
            if logits.dim() == 2 and logits.shape[1] > 1
            else logits.float().mean()
        )
        net.zero_grad(set_to_none=True)
        loss.backward()

    def timed(passes: int) -> float:
        _sync(dev)
        start = time.perf_counter()
        for _ in range(passes):
            one_pass()
        _sync(dev)
        return (time.perf_counter() - start) / passes

    for _ in range(warmup):
        one_pass()
    passes = max(1, math.ceil(MIN_REPEAT_S / max(timed(1), 1e-9)))
    times = [timed(passes) for _ in range(repeats)]
    return statistics.median(times), spread(times)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
