"""The end-of-run report: learning curves, confusion matrix and a summary, in the run dir.

``write_reports`` writes ``curves.png`` (loss, accuracy or error, and learning rate per
epoch), ``confusion.png`` (row-normalised: each row is a true class), ``summary.json`` (the
run's summary plus the machine it ran on) and ``summary.md`` (the same, for people). The
charts' contents are chosen here and drawn by :mod:`cnnzoo.analysis.plots`.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
    ``charts=False`` writes only the summaries (``log.charts=False``: the speedruns), and
    matplotlib is never imported.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = dict(summary)
    summary.setdefault("machine", machine_info())
    written = {}
    if charts:
        written.update(_draw_charts(run_dir, history, confusion, class_names))
    clean = _json_safe(summary)
    written["summary_json"] = atomic_write(
        rundir.paths(run_dir).summary,
        lambda f: f.write(json.dumps(clean, indent=2, allow_nan=False).encode() + b"\n"),
    )
    written["summary_md"] = atomic_write(
        rundir.paths(run_dir).summary_md, lambda f: f.write(summary_markdown(clean).encode())
    )
    return written


def _draw_charts(
    run_dir: Path,
    history: Sequence[Mapping[str, Any]],
    confusion: Sequence[Sequence[int]] | np.ndarray | torch.Tensor | None,
    class_names: Sequence[str] | None,
) -> dict[str, Path]:
    """``curves.png`` and ``confusion.png``; matplotlib (0.5 s to import) is loaded here only."""
    from cnnzoo.analysis import plots

    written = {}
    if history:
        written["curves"] = plots.plot_training_curves(
            curve_panels(history), rundir.paths(run_dir).curves
        )
    if confusion is not None:
        matrix = np.asarray(
            confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, dtype=np.float64
        )
        if matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1] and matrix.size:
            names = list(class_names) if class_names else [str(i) for i in range(matrix.shape[0])]
            fractions, accuracy = confusion_fractions(matrix)
            k = matrix.shape[0]
            written["confusion"] = plots.plot_confusion(
                fractions,
                names,
                f"confusion (row-normalised), accuracy {100 * accuracy:.2f}%",
                rundir.paths(run_dir).confusion,
                labelled=k <= MAX_LABELLED_CLASSES,
                annotated=k <= MAX_ANNOTATED_CLASSES,
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


def curve_panels(history: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The panels of ``curves.png`` (:class:`cnnzoo.analysis.plots.Panel`): loss, accuracy,
    error and learning rate, each where the history has it; the rate on a log axis when it
    spans more than 50x."""
    from cnnzoo.analysis.plots import Panel

    keys = sorted({k for row in history for k in row if "/" in k})
    groups = [
        ("loss", "loss", [k for k in keys if k.endswith("/loss")]),
        ("accuracy", "accuracy (%)", [k for k in keys if k.split("/", 1)[1] in ACCURACY_METRICS]),
        ("error", "error", [k for k in keys if k.split("/", 1)[1] in ERROR_METRICS]),
    ]
    panels = [
        Panel(title, ylabel, [(k, *_series(history, k)) for k in series])
        for title, ylabel, series in groups
        if series
    ]
    if any("lr" in row for row in history):
        lrs = _series(history, "lr")[1]
        wide = bool(lrs) and min(lrs) > 0 and max(lrs) / min(lrs) > 50
        panels.append(
            Panel("learning rate", "learning rate", [("lr", *_series(history, "lr"))], wide, False)
        )
    for panel in panels:  # a series with no finite value draws nothing
        panel.series = [s for s in panel.series if s[1]]
    return panels or [Panel("no metrics recorded", "", [])]


def confusion_fractions(counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Each row of ``counts`` (true class) as fractions of its total, and the accuracy
    (NaN when there are no counts)."""
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    accuracy = float(np.trace(counts) / counts.sum()) if counts.sum() else float("nan")
    return fractions, accuracy


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
