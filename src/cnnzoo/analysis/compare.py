"""Several models side by side: parameters, MACs, latency and throughput, as a table and a chart."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from cnnzoo.analysis.flops import count_flops, format_count, has_depthwise_conv
from cnnzoo.analysis.speed import (
    format_spread,
    measure_speed,
    unsteady,
    unsteady_warning,
)
from cnnzoo.errors import ConfigError
from cnnzoo.fileio import atomic_write
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


def plot_compare(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """A PNG of :func:`compare_chart`, written atomically."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ConfigError(f"cannot write the chart to {path}: folder {path.parent} does not exist")
    fig = compare_chart(rows, title)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    return path


def compare_chart(rows: list[dict], title: str = ""):
    """A matplotlib figure: MACs against parameters (one labelled point per model, log
    scales when the models span over 100x) and, when the rows were timed, horizontal bars
    of throughput per device. No two labels overlap: each model's name goes to the nearest
    free place around its point (with a leader line when it had to move away), and the
    figure grows (up to 1.3^6 = 4.8 times) when the plot has no room left; past that (some
    hundreds of models) the points go unlabelled rather than labelled on top of each other."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # drawn without pyplot: no backend is chosen or changed
    from matplotlib.ticker import FuncFormatter, NullFormatter

    devs = [d for d in ("cpu", "cuda") if rows and f"{d}_throughput" in rows[0]]
    bars_height = 0.25 * len(rows) * max(1, len(devs)) + 1.5
    fig = Figure(figsize=(6 + 5 * bool(devs), max(4.5, bars_height)), dpi=DPI)
    FigureCanvasAgg(fig)  # the renderer that places the labels
    axes = fig.subplots(1, 1 + bool(devs), squeeze=False)
    ax = axes[0, 0]
    xs, ys = [r["params"] for r in rows], [r["macs"] for r in rows]
    ax.scatter(xs, ys, s=16, zorder=3)
    for axis, values in ((ax.xaxis, xs), (ax.yaxis, ys)):
        if min(values) > 0 and max(values) > 100 * min(values):
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: format_count(v)))
        axis.set_minor_formatter(NullFormatter())
    ax.margins(0.15)
    ax.set_xlabel("parameters")
    ax.set_ylabel("MACs  [1 MAC = 2 FLOPs]")
    ax.set_title("cost: MACs vs parameters")
    ax.grid(alpha=0.3)
    if devs:
        bx = axes[0, 1]
        height = 0.8 / len(devs)
        ypos = range(len(rows) - 1, -1, -1)  # the first model on top
        for i, d in enumerate(devs):
            bx.barh(
                [y + (len(devs) - 1 - i) * height for y in ypos],
                [r[f"{d}_throughput"] for r in rows],
                height,
                label="GPU" if d == "cuda" else "CPU",
            )
        bx.set_yticks(
            [y + height * (len(devs) - 1) / 2 for y in ypos], [r["name"] for r in rows], fontsize=8
        )
        bx.set_xlabel("throughput (images/s)")
        values = [r[f"{d}_throughput"] for r in rows for d in devs]
        if max(values) > 20 * min(values):
            bx.set_xscale("log")
            bx.xaxis.set_minor_formatter(NullFormatter())
        bx.set_title("inference throughput")
        bx.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    for attempt in range(MAX_GROWTH + 1):
        if attempt:
            w, h = fig.get_size_inches()
            fig.set_size_inches(w * 1.3, h * 1.3)
        fig.set_layout_engine("tight")
        fig.canvas.draw()
        fig.set_layout_engine("none")  # no more moving axes: the labels are placed on them
        if _place_labels(ax, [r["name"] for r in rows], xs, ys):
            break
    return fig


DPI = 120
MAX_GROWTH = 6  # the figure grows by 1.3x at most this many times to make room for labels
GAP = 3  # pixels between a point and its label, and around every label


def _place_labels(ax, names: list[str], xs: list[float], ys: list[float]) -> bool:
    """Annotate every point with its name where the label meets no other label, no point
    and stays inside the axes: first beside the point, then on rings ever farther out (with
    a leader line). False, with no labels left, when some label found no place."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    points = ax.transData.transform(list(zip(xs, ys, strict=True)))
    dots = [Bbox.from_bounds(px - GAP, py - GAP, 2 * GAP, 2 * GAP) for px, py in points]
    taken: list[Bbox] = []
    labels = []
    for i in sorted(range(len(names)), key=lambda i: (-points[i][1], points[i][0])):
        px, py = points[i]
        probe = ax.text(0, 0, names[i], fontsize=8)
        box = probe.get_window_extent(renderer)
        probe.remove()
        for dx, dy, near in _candidates(box.width, box.height, max(frame.width, frame.height)):
            spot = Bbox.from_bounds(px + dx, py + dy, box.width, box.height).padded(GAP)
            inside = frame.contains(spot.x0, spot.y0) and frame.contains(spot.x1, spot.y1)
            free = inside and not any(spot.overlaps(b) for b in taken + dots)
            if free:
                line = None if near else dict(arrowstyle="-", lw=0.5, color="0.5", shrinkB=GAP)
                at = (dx * 72 / ax.figure.dpi, dy * 72 / ax.figure.dpi)  # points: any dpi
                labels.append(
                    ax.annotate(
                        names[i],
                        (xs[i], ys[i]),
                        xytext=at,
                        textcoords="offset points",
                        fontsize=8,
                        ha="left",
                        va="bottom",
                        arrowprops=line,
                    )
                )
                taken.append(spot)
                break
        else:
            for label in labels:
                label.remove()
            return False
    return True


def _candidates(w: float, h: float, reach: float):
    """Offsets (pixels) of a ``w x h`` label's lower-left corner from its point, nearest
    first, and whether the label still touches the point: the eight places around it, then
    16 directions on rings one label height apart out to ``reach``."""
    near = 3 * GAP  # clear of the point's own dot (GAP around it) and of the label's padding (GAP)
    for dx in (near, -w - near, -w / 2):
        for dy in (near, -h - near, -h / 2):
            if (dx, dy) != (-w / 2, -h / 2):
                yield dx, dy, True
    step = h + GAP
    for k in range(1, int(reach / step) + 2):
        for j in range(16):
            cx, cy = k * step * math.cos(math.pi * j / 8), k * step * math.sin(math.pi * j / 8)
            if abs(cx) > 1e-6:  # beside the ray, on its outer side
                cx += math.copysign(w / 2 + near, cx)
            yield cx - w / 2, cy - h / 2, False
