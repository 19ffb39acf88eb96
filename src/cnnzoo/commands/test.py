"""``cnnzoo test RUN|CHECKPOINT``: evaluate a trained model on its test split (or ``--data``)."""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from cnnzoo import rundir
from cnnzoo.config import load_config
from cnnzoo.data import build_data
from cnnzoo.engine.checkpoint import load_trained
from cnnzoo.engine.metrics import scores_line
from cnnzoo.engine.trainer import score
from cnnzoo.errors import DataError, TrainingError
from cnnzoo.fileio import atomic_write
from cnnzoo.machine import resolve_device

HELP = "evaluate a run directory or checkpoint on its test split"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target", metavar="RUN_DIR|CHECKPOINT", help="a run directory or a .pt checkpoint"
    )
    p.add_argument("--data", default=None, help="data root to evaluate on (default: the run's)")
    p.add_argument(
        "--cfg-options",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override keys of the run's config (e.g. data.test.batch_size=64)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


NAME_CHARS = 40  # of a --data folder's name in its report's file name


def run(args: argparse.Namespace) -> int:
    """Evaluate a run directory or checkpoint on its test split as the end of training did
    (the same AMP dtype, memory format and TTA), or on the test split under ``--data``; print
    the metrics and write test_report.json/.md beside the run (``test_report-<data name>``
    for ``--data``, so the run's own report stays: see :func:`_data_name`)."""
    model, meta = load_trained(args.target)
    cfg = load_config(
        meta["config"], args.cfg_options, source=f"the config in checkpoint {meta['path']}"
    )
    if args.data:
        cfg.data.root = args.data
    device = resolve_device(cfg.device)
    data = build_data(cfg.data, device=device, seed=cfg.seed)
    if data.test is None:
        raise DataError(
            f"the {data.dataset} data at {cfg.data.root or 'the default root'} has no test split"
        )
    if data.class_names != meta["class_names"]:
        raise DataError(
            f"the test data's classes {data.class_names[:5]}... are not the model's {meta['class_names'][:5]}..."
        )
    meter = score(
        model,
        data.test,
        cfg,
        num_classes=data.num_classes,
        device=device,
        desc="test",
        show=not args.quiet and sys.stderr.isatty(),
    )
    metrics = meter.compute()
    report = dict(
        checkpoint=meta["path"],
        model=meta["model_name"],
        dataset=data.dataset,
        data_root=str(cfg.data.root),
        samples=int(meter.confusion.sum()),
        **metrics,
        per_class_top1=dict(zip(data.class_names, meter.per_class(), strict=True)),
        confusion=meter.confusion.cpu().tolist(),
    )
    out = rundir.run_dir_of(meta["path"])
    name = rundir.TEST_REPORT + (f"-{_data_name(args.data)}" if args.data else "")
    try:
        atomic_write(out / f"{name}.json", lambda f: json.dump(report, f, indent=2), binary=False)
        markdown = _markdown(report, data.class_names)
        atomic_write(out / f"{name}.md", lambda f: f.write(markdown), binary=False)
    except OSError as e:
        remedy = "free disk space" if e.errno == errno.ENOSPC else "make the run directory writable"
        raise TrainingError(
            f"cannot write the test report to {out}: {e.strerror or e}; earlier reports there are "
            f"intact. {remedy.capitalize()} and run the test again"
        ) from None
    print(scores_line("test", metrics))
    print(f"report: {out / f'{name}.md'}")
    return 0


def _data_name(root: str) -> str:
    """The name of the reports on the data under ``root``: its folder's name and a hash of its
    whole path (``data-1f3a9c``), so two roots named alike keep their reports apart. The name
    keeps at most :data:`NAME_CHARS` characters of the folder's name: the hash tells roots apart,
    and a file name stays within what file systems allow."""
    path = Path(root).resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name).strip("._")[:NAME_CHARS] or "data"
    return f"{slug}-{hashlib.sha1(os.fsencode(path)).hexdigest()[:6]}"


def _markdown(report: dict, class_names: list[str]) -> str:
    lines = [
        f"# Test report: {report['model']} on {report['dataset']}",
        "",
        f"Checkpoint: `{report['checkpoint']}`  ",
        f"Samples: {report['samples']}",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [
        f"| {k} | {report[k]:.4f} |" for k in ("loss", "top1", "top5", "mae", "rmse") if k in report
    ]
    lines += ["", "| class | top-1 (%) |", "|---|---|"]
    lines += [f"| {name} | {acc:.2f} |" for name, acc in report["per_class_top1"].items()]
    return "\n".join(lines) + "\n"
