"""The runs table: every run directory under some folders, one row each, to compare runs.

A row holds the run's status, config name, model, dataset, parameters, MACs, epochs, best
validation top-1, test top-1, training time, training images per second, (when measured, e.g.
by ``cnnzoo study``) the batch-1 latency, the configured learning rate and the last epoch's,
and the ``--cfg-options`` it was started (and resumed) with. It is read from the plain files a
run keeps (``summary.json``, ``metrics.csv``, ``config.yaml``, ``origin.json``,
``speed.json``): nothing is executed and no checkpoint is opened. A run that recorded no
parameter or MAC count (it stopped before its final test) has them counted from the model name
and arguments in its config, on the meta device, and kept in the one model-cost cache
(:mod:`cnnzoo.analysis.costs`).

Rows can be filtered (``model=resnet*`` shell patterns, ``test_top1>90`` comparisons), sorted,
written as Markdown, CSV or JSON, and drawn by :mod:`cnnzoo.analysis.plots`: the validation
curves of the chosen runs overlaid and accuracy-vs-MACs / accuracy-vs-latency charts with
their Pareto fronts (the labels and fronts come from here).
"""

from __future__ import annotations

import csv
import fcntl
import fnmatch
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnzoo import rundir
from cnnzoo.analysis.costs import cached_costs
from cnnzoo.analysis.speed import format_spread
from cnnzoo.config.reader import read_config
from cnnzoo.errors import CnnzooError, ConfigError, DataError
from cnnzoo.fileio import atomic_write, read_failure, read_regular_text
from cnnzoo.plaindata import is_int
from cnnzoo.schema import DATASETS, MAX_IMAGE_SIZE

COLUMNS = (
    "run",
    "status",
    "config",
    "model",
    "dataset",
    "params",
    "macs",
    "epochs",
    "best_val_top1",
    "test_top1",
    "train_time_s",
    "images_per_s",
    "latency_ms",
    "lr",
    "last_lr",
    "overrides",
)
TEXT = frozenset(("run", "status", "config", "model", "dataset", "overrides"))
NUMERIC = frozenset(COLUMNS) - TEXT
OVERRIDES_CHARS = 48  # the overrides shown in a Markdown cell (CSV and JSON keep them whole)
FORMATS = ("md", "csv", "json")
SPEED_FILE = rundir.SPEED  # {"latency_ms": ..., "device": ...}: written by `cnnzoo study`
HEADERS = dict(
    run="run",
    status="status",
    config="config",
    model="model",
    dataset="dataset",
    params="params",
    macs="MACs",
    epochs="epochs",
    best_val_top1="best val top-1 (%)",
    test_top1="test top-1 (%)",
    train_time_s="train time",
    images_per_s="images/s",
    latency_ms="latency (ms)",
    lr="lr",
    last_lr="last lr",
    overrides="overrides",
)
_WHERE = re.compile(r"^\s*([a-z_0-9]+)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


# --- finding and reading runs ---------------------------------------------------------------


is_run_dir = rundir.is_run_dir


def find_runs(folders: Iterable[str | os.PathLike]) -> list[Path]:
    """The run directories in or under ``folders`` (each a run or a folder of runs, searched
    to any depth), in path order, each once."""
    found: dict[Path, None] = {}
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; give run directories or folders of runs")
        if is_run_dir(folder):
            found[folder] = None
            continue
        for run in rundir.find_runs(folder):
            found[run] = None
    return list(found)


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """One row of the table (keys :data:`COLUMNS`, ``None`` where unknown) plus ``history``
    (the epochs of ``metrics.csv`` as dicts of numbers), ``model_kwargs`` and ``problems``
    (``'FILE: why'`` for each file of the run that is damaged). Everything in a run directory
    is untrusted: a damaged file leaves its columns unknown and never stops the table."""
    run_dir = Path(run_dir)
    problems: list[str] = []
    run = rundir.paths(run_dir)
    summary = _read_json(run.summary, problems)
    history = _read_metrics(run.metrics, problems)
    config = rundir.config_file(run_dir)
    try:
        cfg = read_config(config) if config is not None else {}
    except (CnnzooError, TypeError, OSError) as e:
        cfg = {}
        problems.append(f"config: {read_failure(e)}")
    model_cfg = cfg.get("model") if isinstance(cfg.get("model"), Mapping) else {}
    data_cfg = cfg.get("data") if isinstance(cfg.get("data"), Mapping) else {}
    vals = [r["val/top1"] for r in history if _finite(r.get("val/top1"))]
    epochs = _number(summary.get("epochs")) or (len(history) or None)
    train_time = _number(summary.get("train_time_s"))
    if train_time is None and history:
        train_time = sum(r.get("time", 0.0) for r in history if _finite(r.get("time")))
    samples = _number(summary.get("train_samples"))
    speed = _read_json(run.speed, problems)
    origin = _read_origin(run_dir, problems)
    optimizer = cfg.get("optimizer") if isinstance(cfg.get("optimizer"), Mapping) else {}
    row: dict[str, Any] = dict(
        run=str(run_dir),
        status=run_status(run_dir, summary, history),
        config=origin.get("config") or run_dir.resolve().parent.name or None,
        model=summary.get("model") or model_cfg.get("type"),
        dataset=summary.get("dataset") or data_cfg.get("type"),
        params=_number(summary.get("params")),
        macs=_number(summary.get("macs")),
        epochs=epochs,
        best_val_top1=max(vals) if vals else None,
        test_top1=_number(summary.get("test/top1")),
        train_time_s=train_time,
        images_per_s=_rate(samples, epochs, train_time),
        latency_ms=_number(speed.get("latency_ms")),
        lr=_number(optimizer.get("lr")),
        last_lr=_number(history[-1].get("lr")) if history else None,
        overrides=overrides_text(origin),
    )
    size = input_size(model_cfg, data_cfg)
    if (row["params"] is None or row["macs"] is None) and model_cfg.get("type") and size:
        costs = model_costs(model_cfg, size)
        if costs is not None:
            row["params"], row["macs"] = costs
    return dict(
        row,
        latency_spread=_number(speed.get("latency_spread")),
        history=history,
        model_kwargs=dict(model_cfg),
        problems=problems,
    )


def run_status(run_dir: Path, summary: Mapping[str, Any], history: Sequence[Mapping]) -> str:
    """``running`` (a process holds its training lock), ``finished`` (it has its summary),
    ``failed at epoch k`` or ``stopped at epoch k`` (k: the epochs it completed; stopped too
    when it left no word, e.g. killed)."""
    if _locked(rundir.paths(run_dir).lock):
        return "running"
    if summary:
        return "finished"
    ended = _read_json(rundir.paths(run_dir).status)
    epoch = ended.get("epoch") if _finite(ended.get("epoch")) else len(history)
    how = "failed" if ended.get("status") == "failed" else "stopped"
    return f"{how} at epoch {int(epoch)}"


def _locked(path: Path) -> bool:
    """Whether another process holds the lock on ``path`` (the file is only read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)  # a FIFO must not block
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops the shared lock just taken
    return False


def _rate(samples: float | None, epochs: float | None, seconds: float | None) -> float | None:
    """Training images per second, if the numbers give a finite one."""
    if not (samples and epochs and seconds):
        return None
    return _number(samples * epochs / seconds)


def read_runs(folders: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """:func:`read_run` of every run found under ``folders``."""
    return [read_run(run) for run in find_runs(folders)]


def _read_origin(run_dir: Path, problems: list[str]) -> dict[str, Any]:
    """The run's origin record (:func:`cnnzoo.rundir.read_origin`); {} when it has none (a run
    of an older cnnzoo) or a damaged one (added to ``problems``)."""
    try:
        return rundir.read_origin(run_dir)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as e:
        problems.append(f"{rundir.ORIGIN}: {read_failure(e)}")
        return {}


def overrides_text(origin: Mapping[str, Any]) -> str | None:
    """The ``--cfg-options`` of a run as one line: the start's, then ``| resume: ...`` for each
    resume that gave some; ``''`` when it was given none, None when its record is missing
    (``?`` stands for a start whose options are not known)."""
    if not origin:
        return None
    start = origin.get("overrides")
    parts = ["?" if start is None else " ".join(start)]
    parts += [f"| resume: {' '.join(r)}" for r in origin.get("resumes", []) if r]
    return " ".join(p for p in parts if p)


def _read_json(path: Path, problems: list[str] | None = None) -> dict[str, Any]:
    """A JSON object from a file of a run or the cache; {} when it is missing or damaged (a
    damaged one is added to ``problems``)."""
    try:
        value = json.loads(read_regular_text(path))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as e:
        if problems is not None:
            problems.append(f"{path.name}: {read_failure(e)}")
        return {}
    return value if isinstance(value, dict) else {}


def _read_metrics(path: Path, problems: list[str]) -> list[dict[str, float]]:
    try:
        rows = _parse_metrics(read_regular_text(path))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, csv.Error) as e:
        problems.append(f"{path.name}: {read_failure(e)}")
        return []
    return rows


def _parse_metrics(text: str) -> list[dict[str, float]]:
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row = {}
        for key, value in raw.items():
            try:
                row[str(key)] = float(value)
            except (TypeError, ValueError):
                continue
        if _finite(row.get("epoch")):
            rows.append(row)
    return rows


def _number(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- parameters and MACs of a run that did not record them ---------------------------------


def input_size(
    model_cfg: Mapping[str, Any], data_cfg: Mapping[str, Any]
) -> tuple[int, int, int] | None:
    """The (C, H, W) a run's model saw: ``data.image_size`` or the dataset's own size; None
    when the run's config holds no sizes that make sense (it is not trusted)."""
    chans = model_cfg.get("in_chans") or 3
    size = data_cfg.get("image_size")
    if isinstance(size, int):
        size = (size, size)
    elif size is None:
        native = DATASETS.get(str(data_cfg.get("type")), (None, None, None))[2]
        size = native or (224, 224)
    if not (isinstance(size, list | tuple) and len(size) == 2):
        return None
    dims = (chans, *size)
    if not all(is_int(d) and 0 < d <= MAX_IMAGE_SIZE for d in dims):
        return None
    return tuple(dims)


def model_costs(model_cfg: Mapping[str, Any], size: Sequence[int]) -> tuple[int, int] | None:
    """Parameters and MACs of the model a run config's ``model`` section builds, at ``size``,
    from the one model-cost cache (:mod:`cnnzoo.analysis.costs`); None if it does not build."""
    kwargs = {k: v for k, v in model_cfg.items() if k not in ("type", "pretrained")}
    return cached_costs([(str(model_cfg["type"]), kwargs, size)])[0]


# --- filtering and sorting ------------------------------------------------------------------


def _column(key: str) -> str:
    if key not in COLUMNS:
        raise ConfigError(f"unknown runs column {key!r}; columns: {', '.join(COLUMNS)}")
    return key


def filter_runs(
    rows: Iterable[dict[str, Any]],
    *,
    match: Iterable[str] = (),
    where: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The rows that pass every ``match`` (``KEY=PATTERN``, a shell pattern on the column's
    text, e.g. ``model=resnet*``) and every ``where`` (``KEY OP NUMBER`` with OP one of
    ``< <= > >= == !=``, e.g. ``test_top1>90``; a row without the value fails it)."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for text in match:
        key, sep, pattern = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--filter takes KEY=PATTERN, e.g. model=resnet*; got {text!r}")
        col = _column(key.strip())
        tests.append(
            lambda r, c=col, p=pattern: r.get(c) is not None and fnmatch.fnmatch(_text(r, c), p)
        )
    for text in where:
        m = _WHERE.match(text)
        if not m:
            raise ConfigError(
                f"--where takes KEY OP NUMBER with OP one of < <= > >= == !=, e.g. "
                f"'test_top1>90'; got {text!r}"
            )
        col, op, raw = _column(m[1]), m[2], m[3]
        if col not in NUMERIC:
            raise ConfigError(
                f"--where compares numbers; {col} is text: use --filter {col}=PATTERN"
            )
        try:
            bound = float(raw)
        except ValueError:
            raise ConfigError(f"--where {text!r}: {raw!r} is not a number") from None
        tests.append(lambda r, c=col, f=_COMPARE[op], b=bound: _finite(r.get(c)) and f(r[c], b))
    return [r for r in rows if all(t(r) for t in tests)]


def sort_runs(rows: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rows ordered by column ``key`` (``-key``: descending); rows without it come last."""
    descending = key.startswith("-")
    col = _column(key.lstrip("-"))
    present = [r for r in rows if r.get(col) is not None]
    missing = [r for r in rows if r.get(col) is None]
    numeric = col in NUMERIC
    present.sort(key=lambda r: r[col] if numeric else str(r[col]), reverse=descending)
    return present + missing


def _text(row: Mapping[str, Any], col: str) -> str:
    value = row.get(col)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and col in ("params", "macs", "epochs"):
        return str(int(value))
    return str(value)


# --- formats --------------------------------------------------------------------------------


def format_runs(rows: Sequence[Mapping[str, Any]], fmt: str = "md") -> str:
    """The table as Markdown (human units), CSV or JSON (plain numbers: counts, percent,
    seconds, images/s, ms; empty/null where unknown)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "json":
        plain = [{c: _plain(r.get(c), c) for c in COLUMNS} for r in rows]
        return json.dumps(plain, indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else _plain(r.get(c), c) for c in COLUMNS])
        return out.getvalue()
    lines = [
        "| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |",
        "|" + "|".join("---" if c in TEXT else "---:" for c in COLUMNS) + "|",
    ]
    for r in rows:
        cells = [_human(r.get(c), c) for c in COLUMNS]
        if r.get("latency_ms") is not None and r.get("latency_spread") is not None:
            cells[COLUMNS.index("latency_ms")] += " " + format_spread(r["latency_spread"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_history(history: Sequence[Mapping[str, float]]) -> str:
    """One run's epochs (its ``metrics.csv``) as a Markdown table: every column it logged."""
    keys = list(dict.fromkeys(k for row in history for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "|".join("---:" for _ in keys) + "|"]
    for row in history:
        lines.append("| " + " | ".join(_epoch_cell(row.get(k), k) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def _epoch_cell(value: float | None, key: str) -> str:
    if value is None:
        return ""
    if key == "epoch":
        return str(int(value))
    if key == "lr":
        return f"{value:.3g}"
    if key == "time":
        return f"{value:.1f} s"
    return f"{value:.4f}" if key.endswith("loss") else f"{value:.2f}"


def _plain(value: Any, col: str) -> Any:
    if value is None:
        return None
    if col in ("params", "macs", "epochs"):
        return int(value)
    if col in ("lr", "last_lr"):  # rates are small: significant digits, not decimals
        return float(f"{value:.6g}")
    if isinstance(value, float):
        return round(value, 4)
    return value


def _human(value: Any, col: str) -> str:
    if value is None:
        return "n/a"
    if col in ("params", "macs"):
        for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
            if value >= scale:
                return f"{value / scale:.2f}{unit}"
        return str(int(value))
    if col == "epochs":
        return str(int(value))
    if col in ("best_val_top1", "test_top1"):
        return f"{value:.2f}"
    if col == "train_time_s":
        return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"
    if col in ("images_per_s", "latency_ms"):
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    if col in ("lr", "last_lr"):
        return f"{value:.3g}"
    if col == "overrides":
        if not value:
            return "none"
        if len(value) > OVERRIDES_CHARS:
            value = value[: OVERRIDES_CHARS - 1] + "…"
    return str(value).replace("|", "\\|")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (the folder is made when missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: f.write(text), binary=False)


# --- what the charts show (drawn by cnnzoo.analysis.plots) ----------------------------------


def label_of(row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    """The model name; runs of the same model are told apart by the part of their paths
    that differs."""
    same = [os.path.abspath(r["run"]) for r in rows if r.get("model") == row.get("model")]
    if len(same) <= 1:
        return str(row.get("model") or Path(row["run"]).name)
    # absolute: the runs may have been named by relative and absolute folders together
    where = Path(os.path.relpath(os.path.abspath(row["run"]), os.path.commonpath(same)))
    return f"{row.get('model')} ({where.as_posix()})"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points that no other point beats (lower or equal x and higher or equal y,
    one of them strictly), in increasing x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front
