"""Every chart cnnzoo draws, and the one module that imports matplotlib.

The other modules compute what a chart shows (a run's history, the runs table, a comparison,
attribution maps, a learning-rate sweep) and call a function here to draw it. Figures are
matplotlib ``Figure`` objects on the Agg canvas, never pyplot: no backend is chosen or
changed. Every PNG is written atomically (:func:`save`). The shared styling lives here once:
the epoch axis, plain tick labels on log axes (``417K``, not ``4.17x10^5``), counts in K/M/G,
and point labels that neither overlap nor run past their axes (:func:`label_points`).

This module is imported only where a chart is drawn (inside the functions that draw), so
``import cnnzoo``, ``import cnnzoo.engine`` and ``import cnnzoo.analysis`` load no matplotlib
(``tests/analysis/test_plots.py`` checks it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from matplotlib.transforms import Bbox

from cnnzoo.analysis.flops import format_count
from cnnzoo.errors import ConfigError
from cnnzoo.fileio import atomic_write

DPI = 110  # the charts of runs, reports, browse and lr_find
COMPARE_DPI = 120
EXPLAIN_DPI = 100
MAX_GROWTH = 6  # a labelled chart grows by 1.3x at most this many times to make room for labels
GAP = 3  # pixels between a point and its label, and around every label
LABEL_SIZE = 8


# --- figures, files and shared styling -----------------------------------------------------


def figure(width: float, height: float, dpi: float = DPI) -> Figure:
    """A ``width`` x ``height`` inch figure on the Agg canvas (its renderer places labels)."""
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | os.PathLike, dpi: float = DPI) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically (a reader never sees half a file)."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


def epoch_axis(ax: Any) -> None:
    """An ``epoch`` x axis with whole-number ticks, and a light grid."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def count_ticks(axis: Any) -> None:
    """Tick labels of ``axis`` as counts in K/M/G (``417K``), no minor labels."""
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: format_count(v)))
    axis.set_minor_formatter(NullFormatter())


def log_ticks(ax: Any, fmt: Callable[[float], str]) -> None:
    """Plain tick labels on the log x axis of ``ax`` (``417K``, ``2``; not ``4.158x10^5``).
    A range narrower than a decade is widened to one around its middle; one narrower than
    two decades also has its minor ticks at 2 and 5 labelled (too few major ticks to read)."""
    lo, hi = ax.get_xlim()
    if hi < 10 * lo:
        middle = math.sqrt(lo * hi)
        lo, hi = middle / math.sqrt(10), middle * math.sqrt(10)
        ax.set_xlim(lo, hi)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt(v)))
    if hi < 100 * lo:
        ax.xaxis.set_minor_formatter(
            FuncFormatter(lambda v, _pos: fmt(v) if _leading_digit(v) in (2, 5) else "")
        )
        ax.tick_params(axis="x", which="minor", labelsize="small")
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def _leading_digit(value: float) -> int:
    return round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0


def _format_ms(value: float) -> str:
    return f"{value:g}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- labelled points ---------------------------------------------------------------------


@dataclass
class Points:
    """Points of one axes to label: their names and data coordinates."""

    ax: Any
    names: list[str]
    xs: list[float]
    ys: list[float]


def label_points(fig: Figure, groups: Sequence[Points]) -> bool:
    """Label every point of ``groups`` so that no label overlaps another label or a point,
    and none runs past its axes: each name goes to the nearest free place around its point
    (with a leader line when it had to move away). The figure is laid out first and grows
    (by 1.3x, up to ``MAX_GROWTH`` times) while some axes has no room left; past that the
    points go unlabelled rather than labelled on top of each other (False)."""
    for attempt in range(MAX_GROWTH + 1):
        if attempt:
            w, h = fig.get_size_inches()
            fig.set_size_inches(w * 1.3, h * 1.3)
        fig.set_layout_engine("tight")
        fig.canvas.draw()
        fig.set_layout_engine("none")  # no more moving axes: the labels are placed on them
        placed = []
        for group in groups:
            labels = _place_labels(group)
            if labels is None:
                break
            placed.append(labels)
        else:
            return True
        for labels in placed:
            for label in labels:
                label.remove()
    return False


def _place_labels(points: Points) -> list[Any] | None:
    """Annotate every point with its name where the label meets no other label, no point
    and stays inside the axes: first beside the point, then on rings ever farther out (with
    a leader line). None, with no labels left, when some label found no place."""
    ax = points.ax
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    xy = ax.transData.transform(list(zip(points.xs, points.ys, strict=True)))
    dots = [Bbox.from_bounds(px - GAP, py - GAP, 2 * GAP, 2 * GAP) for px, py in xy]
    taken: list[Bbox] = []
    labels = []
    for i in sorted(range(len(points.names)), key=lambda i: (-xy[i][1], xy[i][0])):
        px, py = xy[i]
        probe = ax.text(0, 0, points.names[i], fontsize=LABEL_SIZE)
        box = probe.get_window_extent(renderer)
        probe.remove()
        for dx, dy, near in _candidates(box.width, box.height, max(frame.width, frame.height)):
            spot = Bbox.from_bounds(px + dx, py + dy, box.width, box.height).padded(GAP)
            inside = frame.contains(spot.x0, spot.y0) and frame.contains(spot.x1, spot.y1)
            if inside and not any(spot.overlaps(b) for b in taken + dots):
                line = None if near else dict(arrowstyle="-", lw=0.5, color="0.5", shrinkB=GAP)
                at = (dx * 72 / ax.figure.dpi, dy * 72 / ax.figure.dpi)  # points: any dpi
                labels.append(
                    ax.annotate(
                        points.names[i],
                        (points.xs[i], points.ys[i]),
                        xytext=at,
                        textcoords="offset points",
                        fontsize=LABEL_SIZE,
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
            return None
    return labels


def _candidates(w: float, h: float, reach: float) -> Iterator[tuple[float, float, bool]]:
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


# --- a run's report: curves.png and confusion.png -----------------------------------------


@dataclass
class Panel:
    """One panel of a run's curves: its title, y label, (name, epochs, values) series, and
    whether its y axis is logarithmic and it has a legend."""

    title: str
    ylabel: str
    series: list[tuple[str, list[float], list[float]]]
    log_y: bool = False
    legend: bool = True


def plot_training_curves(panels: Sequence[Panel], path: str | os.PathLike) -> Path:
    """A run's ``curves.png``: the panels side by side over the epochs, validation dashed."""
    fig = figure(4.2 * len(panels), 3.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    longest = max((len(xs) for p in panels for _, xs, _ in p.series), default=0)
    marker = "o" if longest <= 30 else None
    for ax, panel in zip(axes, panels, strict=True):
        for name, xs, ys in panel.series:
            style = "--" if name.startswith("val/") else "-"
            ax.plot(xs, ys, style, marker=marker, markersize=3, label=name)
        ax.set_title(panel.title)
        epoch_axis(ax)
        ax.set_ylabel(panel.ylabel)
        if panel.log_y:
            ax.set_yscale("log")
        if panel.legend and ax.lines:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return save(fig, path)


def plot_confusion(
    fractions: np.ndarray,
    class_names: Sequence[str],
    title: str,
    path: str | os.PathLike,
    *,
    labelled: bool,
    annotated: bool,
) -> Path:
    """A run's ``confusion.png``: the row-normalised matrix ``fractions`` (rows: the true
    class), its class names on the axes when ``labelled`` and its cells written in when
    ``annotated`` (for few classes)."""
    k = fractions.shape[0]
    side = min(max(4.0, 0.45 * k + 2.0), 16.0)
    fig = figure(side + 1.0, side)
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if labelled:
        tilt = max(len(name) for name in class_names) > 3
        ax.set_xticks(
            range(k),
            labels=list(class_names),
            rotation=45 if tilt else 0,
            ha="right" if tilt else "center",
        )
        ax.set_yticks(range(k), labels=list(class_names))
    if annotated:
        for i in range(k):
            for j in range(k):
                if fractions[i, j] >= 0.005:
                    colour = "white" if fractions[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        f"{fractions[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=colour,
                    )
    fig.tight_layout()
    return save(fig, path)


# --- the runs table: overlaid curves, accuracy against cost ---------------------------------


def curves_figure(rows: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Validation top-1 and training loss per epoch of runs-table ``rows``, overlaid, one
    colour per run and every run in the legend (None: no run has a history). Runs that did
    not validate are marked so in the legend; when none did, only the loss is drawn."""
    from cnnzoo.analysis.runs import label_of

    drawn = [r for r in rows if r.get("history")]
    if not drawn:
        return None
    validated = [any(_finite(h.get("val/top1")) for h in r["history"]) for r in drawn]
    panels = [("train/loss", "training loss")]
    if any(validated):
        panels.insert(0, ("val/top1", "validation top-1 (%)"))
    fig = figure(2.5 + 4.3 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    handles = []
    for i, r in enumerate(drawn):
        style = dict(color=f"C{i % 10}", marker="o" if len(r["history"]) <= 30 else None, ms=3)
        for ax, (key, _) in zip(axes, panels, strict=True):
            pts = [(h["epoch"], h[key]) for h in r["history"] if _finite(h.get(key))]
            if pts:
                ax.plot(*zip(*pts, strict=True), **style)
        label = label_of(r, drawn) + ("" if validated[i] or len(panels) == 1 else " (no val)")
        handles.append(Line2D([], [], label=label, **style))
    for ax, (_, title) in zip(axes, panels, strict=True):
        ax.set_title(title)
        epoch_axis(ax)
    fig.legend(handles=handles, loc="outside right center", fontsize="small")
    fig.set_layout_engine("constrained")
    return fig


def plot_curves(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """:func:`curves_figure` of ``rows`` as a PNG (None: no run has a history)."""
    fig = curves_figure(rows)
    return None if fig is None else save(fig, path)


def pareto_figure(
    rows: Sequence[Mapping[str, Any]], x: str = "macs", y: str = "test_top1", title: str = ""
) -> Figure | None:
    """``y`` against ``x`` (log scale) for the runs-table rows that have both, each point
    labelled with its model (:func:`label_points`), the Pareto front joined. Runs of
    different data sets get a panel each, with its own ``y`` axis and front (their
    accuracies do not compare), over one shared ``x`` axis. None when no row has both."""
    from cnnzoo.analysis.runs import HEADERS, label_of, pareto_front

    pts = [r for r in rows if _finite(r.get(x)) and r[x] > 0 and _finite(r.get(y))]
    if not pts:
        return None
    datasets = list(dict.fromkeys(_dataset(r) for r in pts))
    fig = figure(7.5, 1.2 + 4.0 * len(datasets))
    axes = fig.subplots(len(datasets), 1, sharex=True, squeeze=False)[:, 0]
    groups = []
    for ax, dataset in zip(axes, datasets, strict=True):
        panel = [r for r in pts if _dataset(r) == dataset]
        xs, ys = [float(r[x]) for r in panel], [float(r[y]) for r in panel]
        front = pareto_front(list(zip(xs, ys, strict=True)))
        ax.scatter(xs, ys, s=28, zorder=3)
        ax.plot(
            [xs[i] for i in front],
            [ys[i] for i in front],
            "--",
            alpha=0.6,
            color="tab:orange",
            label="Pareto front",
            zorder=2,
        )
        ax.set_xscale("log")
        ax.set_ylabel(HEADERS.get(y, y))
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower right", fontsize="small")
        ax.margins(x=0.15, y=0.12)
        if y.endswith("top1"):  # an accuracy: no room above 100%
            ax.set_ylim(top=min(ax.get_ylim()[1], 100.0))
        if len(datasets) > 1:
            ax.set_title(dataset, fontsize="medium")
        groups.append(Points(ax, [label_of(r, panel) for r in panel], xs, ys))
    axes[-1].set_xlabel({"macs": "MACs (log)", "latency_ms": "batch-1 latency, ms (log)"}.get(x, x))
    log_ticks(axes[-1], format_count if x == "macs" else _format_ms)
    if title:
        fig.suptitle(title, fontsize="medium")
    label_points(fig, groups)
    return fig


def plot_pareto(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    x: str = "macs",
    y: str = "test_top1",
    title: str = "",
) -> Path | None:
    """:func:`pareto_figure` as a PNG (None when no row has both values)."""
    fig = pareto_figure(rows, x, y, title)
    return None if fig is None else save(fig, path)


def _dataset(row: Mapping[str, Any]) -> str:
    return str(row.get("dataset") or "unknown data set")


# --- cnnzoo compare: cost and throughput -----------------------------------------------------


def compare_chart(rows: list[dict], title: str = "") -> Figure:
    """MACs against parameters for the rows of :func:`cnnzoo.analysis.compare.compare` (one
    labelled point per model, log scales when the models span over 100x) and, when the rows
    were timed, horizontal bars of throughput per device. No two labels overlap
    (:func:`label_points`)."""
    devs = [d for d in ("cpu", "cuda") if rows and f"{d}_throughput" in rows[0]]
    bars_height = 0.25 * len(rows) * max(1, len(devs)) + 1.5
    fig = figure(6 + 5 * bool(devs), max(4.5, bars_height), dpi=COMPARE_DPI)
    axes = fig.subplots(1, 1 + bool(devs), squeeze=False)
    ax = axes[0, 0]
    xs, ys = [r["params"] for r in rows], [r["macs"] for r in rows]
    ax.scatter(xs, ys, s=16, zorder=3)
    for axis, values in ((ax.xaxis, xs), (ax.yaxis, ys)):
        if min(values) > 0 and max(values) > 100 * min(values):
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        count_ticks(axis)
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
            [y + height * (len(devs) - 1) / 2 for y in ypos],
            [r["name"] for r in rows],
            fontsize=LABEL_SIZE,
        )
        bx.set_xlabel("throughput (images/s)")
        values = [r[f"{d}_throughput"] for r in rows for d in devs]
        if max(values) > 20 * min(values):
            bx.set_xscale("log")
            bx.xaxis.set_minor_formatter(NullFormatter())
        bx.set_title("inference throughput")
        bx.legend(fontsize=LABEL_SIZE)
    if title:
        fig.suptitle(title)
    label_points(fig, [Points(ax, [r["name"] for r in rows], xs, ys)])
    return fig


def plot_compare(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """A PNG of :func:`compare_chart`; a missing folder is one line."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ConfigError(f"cannot write the chart to {path}: folder {path.parent} does not exist")
    return save(compare_chart(rows, title), path, dpi=COMPARE_DPI)


# --- images: browse's augmented grid, explain's overlays, filters and feature maps -----------


def _show(
    ax: Any, image: np.ndarray, title: str, heat: np.ndarray | None = None, size: float = 8
) -> None:
    """An image in [0, 1] ((H, W, 3) colour or (H, W) grey) titled in ``size`` points, a
    heat map in [0, 1] over it if given."""
    ax.imshow(image, cmap=None if image.ndim == 3 else "gray", vmin=0, vmax=1)
    if heat is not None:
        ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_title(title, fontsize=size)
    ax.set_axis_off()


def plot_image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | os.PathLike,
    *,
    panel: float,
    title: str = "",
) -> Path:
    """``images`` in [0, 1] ((H, W, 3) or (H, W)) in a near-square grid of ``panel``-inch
    cells, each with its title (browse's augmented training images)."""
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    fig = figure(cols * panel, rows * panel + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, image, name in zip(axes, images, titles, strict=False):
        _show(ax, image, name, size=7)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize="small")
    fig.set_layout_engine("constrained")
    return save(fig, path)


def plot_overlays(
    image: np.ndarray,
    panels: Sequence[tuple[str, np.ndarray]],
    title: str,
    path: str | os.PathLike,
    *,
    panel: float,
) -> Path:
    """The image, then one overlay per (title, map in [0, 1]), in a row of ``panel``-inch
    cells (explain's Grad-CAM and occlusion)."""
    fig = figure(panel * (1 + len(panels)), panel, dpi=EXPLAIN_DPI)
    axes = fig.subplots(1, 1 + len(panels), squeeze=False)[0]
    _show(axes[0], image, "input")
    for ax, (name, heat) in zip(axes[1:], panels, strict=True):
        _show(ax, image, name, heat)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.8, wspace=0.05)
    return save(fig, path, dpi=EXPLAIN_DPI)


def plot_filters(
    filters: Sequence[np.ndarray], title: str, path: str | os.PathLike, *, cell: float
) -> Path:
    """First-layer filters (each in [0, 1], (kH, kW, 3) or (kH, kW)) in rows of up to 8,
    shown pixel by pixel."""
    cols = min(8, len(filters))
    rows = -(-len(filters) // cols)
    fig = figure(cols * cell, (rows + 1) * cell, dpi=EXPLAIN_DPI)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(filters):
            ax.imshow(filters[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    fig.suptitle(title, fontsize=LABEL_SIZE)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=rows / (rows + 1), wspace=0.1)
    return save(fig, path, dpi=EXPLAIN_DPI)


def plot_stage_maps(
    stages: Sequence[tuple[str, Sequence[np.ndarray]]],
    title: str,
    path: str | os.PathLike,
    *,
    columns: int,
    cell: float,
) -> Path:
    """One row per (stage title, its channel maps in [0, 1]), ``columns`` cells a row."""
    fig = figure(columns * cell, (len(stages) + 0.3) * cell, dpi=EXPLAIN_DPI)
    axes = fig.subplots(len(stages), columns, squeeze=False)
    for row, (name, maps) in zip(axes, stages, strict=True):
        for j, ax in enumerate(row):
            ax.set_axis_off()
            if j < len(maps):
                ax.imshow(maps[j], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        row[0].set_title(name, fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(
        left=0.01,
        right=0.99,
        bottom=0.01,
        top=1 - 0.45 / (len(stages) + 0.3),
        hspace=0.35,
        wspace=0.05,
    )
    return save(fig, path, dpi=EXPLAIN_DPI)


# --- cnnzoo lr_find ---------------------------------------------------------------------------


def plot_range_test(
    lrs: Sequence[float],
    losses: Sequence[float],
    suggested: float,
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """The smoothed loss of a learning-rate range test against the rate (log scale), the
    suggested rate marked."""
    fig = figure(6.5, 4.2)
    ax = fig.subplots()
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.axvline(suggested, color="tab:red", ls="--", lw=1)
    at = losses[list(lrs).index(suggested)]
    ax.plot([suggested], [at], "o", color="tab:red", label=f"suggested: {suggested:.2g}")
    ax.set_xlabel("learning rate (log)")
    ax.set_ylabel("training loss (smoothed)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    fig.set_layout_engine("constrained")
    return save(fig, path)
