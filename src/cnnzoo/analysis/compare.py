"""Several models side by side: parameters, MACs, latency and throughput, as a table (the
chart is :func:`cnnzoo.analysis.plots.compare_chart`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch

from cnnzoo.analysis.flops import count_flops, format_count, has_depthwise_conv
from cnnzoo.analysis.speed import (
    format_spread,
    measure_speed,
    unsteady,
    unsteady_warning,
)
from cnnzoo.errors import ConfigError
from cnnzoo.machine import resolve_device
from cnnzoo.models import create_model, get_model_entry


def compare_devices(device: str = "auto") -> list[str]:
    """The devices to time on: ``'auto'`` is the CPU, plus CUDA where a GPU is present."""
    if device == "auto":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    return [str(resolve_device(device))]


def compare(
    names: Sequence[str],
    input_size: Sequence[int] | None = None,
    num_classes: int | None = None,
    batch_size: int = 8,
    devices: Sequence[str] | None = None,
    warmup: int = 3,
    repeats: int = 10,
) -> list[dict]:
    """One row per model: ``name, family, input_size, num_classes, params, flops, macs,
    depthwise`` (whether it has depthwise convolutions) and, for every device ``d``,
    ``{d}_latency_ms`` (batch 1) and ``{d}_throughput`` (images/s at ``batch_size``), all in
    inference mode, medians of ``repeats`` timings after ``warmup`` passes, with their
    spreads ``{d}_latency_spread`` and ``{d}_throughput_spread``; a warning names the timings
    whose spread is too wide to trust. Each model runs at its own default input (C, H, W) and
    number of classes unless ``input_size`` / ``num_classes`` set them for all."""
    if not names:
        raise ConfigError("give at least one model name to compare")
    devices = list(devices) if devices is not None else compare_devices()
    entries = [get_model_entry(n) for n in names]
    rows, unsteady_timings = [], []
    for entry in entries:
        size = tuple(int(s) for s in (input_size or entry.cfg.input_size))
        classes = int(num_classes or entry.cfg.num_classes)
        model = create_model(entry.name, num_classes=classes, in_chans=size[0])
        counts = count_flops(model, size)
        row = dict(
            name=entry.name,
            family=entry.family,
            input_size=list(size),
            num_classes=classes,
            params=sum(p.numel() for p in model.parameters()),
            flops=counts["flops"],
            macs=counts["macs"],
            depthwise=has_depthwise_conv(model),
        )
        for dev in devices:
            speed = measure_speed(model, size, batch_size, dev, warmup=warmup, repeats=repeats)
            key = torch.device(dev).type
            for name in ("latency_ms", "latency_spread", "throughput", "throughput_spread"):
                row[f"{key}_{name}"] = speed[name]
            unsteady_timings += unsteady(f"{entry.name} {_device_name(key)}", speed)
        rows.append(row)
    if unsteady_timings:
        warnings.warn(unsteady_warning(unsteady_timings, repeats), stacklevel=2)
    return rows


def _device_name(device_type: str) -> str:
    return "CPU" if device_type == "cpu" else "GPU"


def _columns(rows: list[dict], batch_size: int | None) -> list[tuple[str, Callable[[dict], str]]]:
    """(header, the cell of a row) of every column of the table."""
    bs = f" @bs{batch_size}" if batch_size else ""
    cols: list[tuple[str, Callable[[dict], str]]] = [
        ("model", lambda r: str(r["name"])),
        ("family", lambda r: str(r["family"])),
        ("input", lambda r: "x".join(str(s) for s in r["input_size"])),
        ("classes", lambda r: str(r["num_classes"])),
        ("params", lambda r: format_count(r["params"])),
        ("MACs", lambda r: format_count(r["macs"])),
        ("FLOPs", lambda r: format_count(r["flops"])),
    ]
    for dev in ("cpu", "cuda"):
        if rows and f"{dev}_latency_ms" in rows[0]:
            name = _device_name(dev)
            latency = _timing(f"{dev}_latency_ms", f"{dev}_latency_spread", 2)
            throughput = _timing(f"{dev}_throughput", f"{dev}_throughput_spread", 1)
            cols += [
                (f"{name} latency bs1 (ms)", latency),
                (f"{name} throughput{bs} (img/s)", throughput),
            ]
    return cols


def _timing(key: str, spread_key: str, digits: int) -> Callable[[dict], str]:
    """The cell of the timing ``key``: its median, then its spread where measured
    (``11.59 ±2%``)."""

    def cell(row: dict) -> str:
        spread = row.get(spread_key)
        text = f"{row[key]:.{digits}f}"
        return text if spread is None else f"{text} {format_spread(spread)}"

    return cell


def format_table(rows: list[dict], fmt: str = "markdown", batch_size: int | None = None) -> str:
    """The rows of :func:`compare` as a markdown table (``fmt='markdown'``) or aligned text."""
    cols = _columns(rows, batch_size)
    header = [c[0] for c in cols]
    body = [[cell(r) for _, cell in cols] for r in rows]
    if fmt == "markdown":
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" if i < 2 else "---:" for i in range(len(cols))) + "|",
        ]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    if fmt != "text":
        raise ConfigError(f"table format must be 'markdown' or 'text', got {fmt!r}")
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    just = [str.ljust if i < 2 else str.rjust for i in range(len(cols))]
    lines = ["  ".join(j(h, w) for j, h, w in zip(just, header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(j(c, w) for j, c, w in zip(just, b, widths, strict=True)) for b in body]
    return "\n".join(lines)
