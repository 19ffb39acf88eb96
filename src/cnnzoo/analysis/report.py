"""The end-of-run report: learning curves, confusion matrix and a summary, in the run dir.

``write_reports`` writes ``curves.png`` (loss, accuracy or error, and learning rate per
epoch), ``confusion.png`` (row-normalised: each row is a true class), ``summary.json`` (the
run's summary plus the machine it ran on) and ``summary.md`` (the same, for people).
matplotlib is imported only to draw (0.5 s): a run without charts never loads it.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from cnnzoo import __version__, rundir
from cnnzoo.fileio import atomic_write

ACCURACY_METRICS = ("top1", "top5")
ERROR_METRICS = ("mae", "rmse")
MAX_ANNOTATED_CLASSES = 20
MAX_LABELLED_CLASSES = 40


def write_reports(
    run_dir: str | os.PathLike,
    history: Sequence[Mapping[str, Any]],
    *,
    confusion: Sequence[Sequence[int]] | np.ndarray | torch.Tensor | None,
    class_names: Sequence[str] | None,
    summary: Mapping[str, Any],
    charts: bool = True,
) -> dict[str, Path]:
    """Write the run's report files into ``run_dir`` and return their paths by name.

    ``history``: one dict per epoch with ``epoch`` and any of ``lr``, ``time`` and
    ``{train,val}/{loss,top1,top5,mae,rmse}`` (validation keys may be missing: a run without a
    validation split). ``confusion``: counts, rows = true class, columns = predicted (None
    skips ``confusion.png``). ``summary``: final metrics, params, MACs, epochs, wall time...;
    a ``machine`` entry (platform, CPU, torch version, accelerator) is added when absent.
    ``charts=False`` writes only the summaries (``log.charts=False``: the speedruns).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = dict(summary)
    summary.setdefault("machine", machine_info())
    written = {}
    if history and charts:
        written["curves"] = atomic_write(
            rundir.paths(run_dir).curves, lambda f: _plot_curves(history, f)
        )
    if confusion is not None and charts:
        matrix = np.asarray(
            confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, dtype=np.float64
        )
        if matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1] and matrix.size:
            names = list(class_names) if class_names else [str(i) for i in range(matrix.shape[0])]
            written["confusion"] = atomic_write(
                rundir.paths(run_dir).confusion, lambda f: _plot_confusion(matrix, names, f)
            )
    clean = _json_safe(summary)
    written["summary_json"] = atomic_write(
        rundir.paths(run_dir).summary,
        lambda f: f.write(json.dumps(clean, indent=2, allow_nan=False).encode() + b"\n"),
    )
    written["summary_md"] = atomic_write(
        rundir.paths(run_dir).summary_md, lambda f: f.write(summary_markdown(clean).encode())
    )
    return written


def machine_info() -> dict[str, Any]:
    """Where a run happened: OS, CPU, core count, Python, torch, cnnzoo and the GPU if any."""
    return dict(
        platform=platform.platform(),
        cpu=cpu_name(),
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        torch=torch.__version__,
        cnnzoo=__version__,
        cuda=torch.version.cuda if torch.cuda.is_available() else None,
        gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    )


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """A short human-readable summary: headline metrics, run facts, machine."""
    title = " on ".join(str(summary[k]) for k in ("model", "dataset") if summary.get(k))
    lines = [f"# {title or 'cnnzoo run'}", ""]
    metrics = {k: v for k, v in summary.items() if k.startswith("test/")}
    if metrics:
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(v, k)} |" for k, v in metrics.items()]
        lines.append("")
    facts = [
        ("params", "parameters"),
        ("macs", "MACs"),
        ("epochs", "epochs trained"),
        ("best_epoch", "best epoch"),
        ("monitor", "best by"),
        ("best_value", "best value"),
        ("train_time_s", "training time"),
        ("wall_time_s", "wall time"),
        ("device", "device"),
        ("checkpoint", "checkpoint"),
    ]
    for key, label in facts:
        if summary.get(key) is not None:
            lines.append(f"- {label}: {_fmt(summary[key], key)}")
    per_class = summary.get("per_class_top1")
    if isinstance(per_class, Mapping) and per_class:
        scored = [(name, acc) for name, acc in per_class.items() if isinstance(acc, int | float)]
        worst = sorted(scored, key=lambda item: item[1])[:3]
        if worst:
            lines.append(
                "- weakest classes: " + ", ".join(f"{name} {_pct(acc)}" for name, acc in worst)
            )
    machine = summary.get("machine")
    if isinstance(machine, Mapping):
        gpu = f", {machine['gpu']}" if machine.get("gpu") else ""
        lines.append(
            f"- machine: {machine.get('platform')}, {machine.get('cpu_count')} CPU cores{gpu}, "
            f"torch {machine.get('torch')}"
        )
    return "\n".join(lines) + "\n"


# --- plots ---------------------------------------------------------------------------------


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) where ``key`` has a finite value (validation may skip epochs)."""
    xs, ys = [], []
    for i, row in enumerate(history):
        value = row.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            xs.append(row.get("epoch", i + 1))
            ys.append(value)
    return xs, ys


def _plot_curves(history: Sequence[Mapping[str, Any]], file: IO[bytes]) -> None:
    from matplotlib.figure import Figure  # without pyplot: no backend is chosen or changed
    from matplotlib.ticker import MaxNLocator

    keys = sorted({k for row in history for k in row if "/" in k})
    panels = []
    loss_keys = [k for k in keys if k.endswith("/loss")]
    if loss_keys:
        panels.append(("loss", "loss", loss_keys))
    acc_keys = [k for k in keys if k.split("/", 1)[1] in ACCURACY_METRICS]
    if acc_keys:
        panels.append(("accuracy", "accuracy (%)", acc_keys))
    err_keys = [k for k in keys if k.split("/", 1)[1] in ERROR_METRICS]
    if err_keys:
        panels.append(("error", "error", err_keys))
    if any("lr" in row for row in history):
        panels.append(("learning rate", "learning rate", ["lr"]))
    if not panels:
        panels.append(("no metrics recorded", "", []))
    fig = Figure(figsize=(4.2 * len(panels), 3.4))
    axes = fig.subplots(1, len(panels), squeeze=False)
    marker = "o" if len(history) <= 30 else None
    for ax, (title, ylabel, series) in zip(axes[0], panels, strict=True):
        for key in series:
            xs, ys = _series(history, key)
            if xs:
                style = "--" if key.startswith("val/") else "-"
                ax.plot(xs, ys, style, marker=marker, markersize=3, label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if series == ["lr"]:
            lrs = _series(history, "lr")[1]
            if lrs and min(lrs) > 0 and max(lrs) / min(lrs) > 50:
                ax.set_yscale("log")
        elif ax.lines:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(file, format="png", dpi=110)


def _plot_confusion(counts: np.ndarray, class_names: list[str], file: IO[bytes]) -> None:
    from matplotlib.figure import Figure  # without pyplot: no backend is chosen or changed

    k = counts.shape[0]
    totals = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = min(max(4.0, 0.45 * k + 2.0), 16.0)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.subplots()
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(counts) / counts.sum() if counts.sum() else float("nan")
    ax.set_title(f"confusion (row-normalised), accuracy {100 * accuracy:.2f}%")
    if k <= MAX_LABELLED_CLASSES:
        tilt = max(len(name) for name in class_names) > 3
        ax.set_xticks(
            range(k),
            labels=class_names,
            rotation=45 if tilt else 0,
            ha="right" if tilt else "center",
        )
        ax.set_yticks(range(k), labels=class_names)
    if k <= MAX_ANNOTATED_CLASSES:
        for i in range(k):
            for j in range(k):
                if norm[i, j] >= 0.005:
                    colour = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        f"{norm[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=colour,
                    )
    fig.tight_layout()
    fig.savefig(file, format="png", dpi=110)


# --- helpers -------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """Plain JSON values: tensors and numpy scalars become numbers, NaN/inf become null."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return _json_safe(value.tolist())
    if isinstance(value, np.ndarray | np.generic):
        return _json_safe(value.tolist())
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _pct(percent: float) -> str:
    return f"{percent:.1f}%"


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "n/a"
    if key.endswith(("top1", "top5")) and isinstance(value, int | float):
        return f"{value:.2f}%"
    if key in ("params", "macs") and isinstance(value, int | float):
        for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
            if value >= scale:
                return f"{value / scale:.2f}{unit}"
        return str(value)
    if key.endswith("_s") and isinstance(value, int | float):
        return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
