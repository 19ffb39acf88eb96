"""Several models side by side: parameters, MACs, latency and throughput, as a table and a chart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from cnnzoo.analysis.flops import count_flops
from cnnzoo.analysis.speed import measure_speed, resolve_device
from cnnzoo.errors import ConfigError
from cnnzoo.models import create_model, get_model_entry


def compare_devices(device: str = "auto") -> list[str]:
    """The devices to time on: ``'auto'`` is the CPU, plus CUDA where a GPU is present."""
    if device == "auto":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    return [str(resolve_device(device))]


def compare(
    names: Sequence[str],
    input_size: Sequence[int] = (3, 224, 224),
    num_classes: int = 1000,
    batch_size: int = 8,
    devices: Sequence[str] | None = None,
    warmup: int = 2,
    repeats: int = 5,
) -> list[dict]:
    """One row per model: ``name, family, params, flops, macs`` and, for every device ``d``,
    ``{d}_latency_ms`` (batch 1) and ``{d}_throughput`` (images/s at ``batch_size``), all in
    inference mode at ``input_size`` = (C, H, W)."""
    if not names:
        raise ConfigError("give at least one model name to compare")
    devices = list(devices) if devices is not None else compare_devices()
    entries = [get_model_entry(n) for n in names]
    input_size = tuple(input_size)
    rows = []
    for entry in entries:
        model = create_model(entry.name, num_classes=num_classes, in_chans=input_size[0])
        counts = count_flops(model, input_size)
        row = dict(
            name=entry.name,
            family=entry.family,
            params=sum(p.numel() for p in model.parameters()),
            flops=counts["flops"],
            macs=counts["macs"],
        )
        for dev in devices:
            speed = measure_speed(
                model, input_size, batch_size, dev, warmup=warmup, repeats=repeats
            )
            key = torch.device(dev).type
            row[f"{key}_latency_ms"] = speed["latency_ms"]
            row[f"{key}_throughput"] = speed["throughput"]
        rows.append(row)
    return rows


def _columns(rows: list[dict], batch_size: int | None) -> list[tuple[str, str, Callable]]:
    bs = f" @bs{batch_size}" if batch_size else ""
    cols = [
        ("model", "name", str),
        ("family", "family", str),
        ("params (M)", "params", lambda v: f"{v / 1e6:.2f}"),
        ("MACs (G)", "macs", lambda v: f"{v / 1e9:.3f}"),
        ("FLOPs (G)", "flops", lambda v: f"{v / 1e9:.3f}"),
    ]
    for dev in ("cpu", "cuda"):
        if rows and f"{dev}_latency_ms" in rows[0]:
            name = dev.upper() if dev == "cpu" else "GPU"
            cols.append((f"{name} latency bs1 (ms)", f"{dev}_latency_ms", lambda v: f"{v:.2f}"))
            cols.append(
                (f"{name} throughput{bs} (img/s)", f"{dev}_throughput", lambda v: f"{v:.1f}")
            )
    return cols


def format_table(rows: list[dict], fmt: str = "markdown", batch_size: int | None = None) -> str:
    """The rows of :func:`compare` as a markdown table (``fmt='markdown'``) or aligned text."""
    cols = _columns(rows, batch_size)
    header = [c[0] for c in cols]
    body = [[fn(r[key]) for _, key, fn in cols] for r in rows]
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


def plot_compare(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """A PNG: MACs against parameters (one labelled point per model) and a bar chart of
    throughput per device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ConfigError(f"cannot write the chart to {path}: folder {path.parent} does not exist")
    devs = [d for d in ("cpu", "cuda") if rows and f"{d}_throughput" in rows[0]]
    fig, axes = plt.subplots(1, 1 + bool(devs), figsize=(6 + 5 * bool(devs), 4.5), squeeze=False)
    ax = axes[0, 0]
    for r in rows:
        ax.scatter(r["params"] / 1e6, r["macs"] / 1e9)
        ax.annotate(
            r["name"],
            (r["params"] / 1e6, r["macs"] / 1e9),
            fontsize=8,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel("MACs (G)  [1 MAC = 2 FLOPs]")
    ax.set_title("cost: MACs vs parameters")
    ax.grid(alpha=0.3)
    if devs:
        ax = axes[0, 1]
        width = 0.8 / len(devs)
        xs = range(len(rows))
        for i, d in enumerate(devs):
            ax.bar(
                [x + i * width for x in xs],
                [r[f"{d}_throughput"] for r in rows],
                width,
                label="GPU" if d == "cuda" else "CPU",
            )
        ax.set_xticks(
            [x + width * (len(devs) - 1) / 2 for x in xs],
            [r["name"] for r in rows],
            rotation=30,
            ha="right",
            fontsize=8,
        )
        ax.set_ylabel("throughput (images/s)")
        values = [r[f"{d}_throughput"] for r in rows for d in devs]
        if max(values) > 20 * min(values):
            ax.set_yscale("log")
        ax.set_title("inference throughput")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
