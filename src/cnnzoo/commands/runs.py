"""``cnnzoo runs [DIR...]``: one table of every run under some folders, to compare them."""

from __future__ import annotations

import argparse
import sys

from cnnzoo import rundir

HELP = "one table of the runs under some folders: filter, sort, write as md/csv/json, plot"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cnnzoo.analysis.runs import COLUMNS, FORMATS

    p.add_argument(
        "dirs",
        nargs="*",
        default=["runs"],
        metavar="DIR",
        help="run directories or folders of runs, searched to any depth (default: runs/); "
        "one run directory also shows its epochs",
    )
    p.add_argument(
        "--sort",
        default="run",
        metavar="KEY",
        help=f"order by this column (default: run); columns: {', '.join(COLUMNS)}",
    )
    p.add_argument("--desc", action="store_true", help="sort largest first")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=PATTERN",
        help="keep runs whose column matches a shell pattern, e.g. model=resnet* (repeatable)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="EXPR",
        help="keep runs where a number compares so, e.g. 'test_top1>90' (< <= > >= == !=; "
        "repeatable)",
    )
    p.add_argument("--format", choices=FORMATS, default="md", help="table format (default: md)")
    p.add_argument("--output", default=None, help="write the table to this file too")
    p.add_argument(
        "--plot",
        default=None,
        metavar="DIR",
        help=f"write the chosen runs' curves ({rundir.CURVES}) and accuracy-vs-MACs and -latency "
        "charts (pareto_macs.png, pareto_latency.png) into DIR",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnzoo.analysis import runs as rt
    from cnnzoo.errors import DataError, WriteError

    found = rt.find_runs(args.dirs)
    if not found:
        raise DataError(
            f"no run directory (a folder with {rundir.CHECKPOINTS}/) under "
            f"{' '.join(args.dirs)}; train one with `cnnzoo train` or name other folders"
        )
    rows = rt.filter_runs([rt.read_run(r) for r in found], match=args.filter, where=args.where)
    rows = rt.sort_runs(rows, ("-" if args.desc else "") + args.sort)
    text = rt.format_runs(rows, args.format)
    print(text, end="")
    # the table alone on stdout for csv/json (a pipe parses it); the notes beside it on stderr
    notes = sys.stdout if args.format == "md" else sys.stderr
    for row in rows:  # a damaged run keeps its row, with what is known of it
        if row["problems"]:
            print(f"{row['run']}: damaged: {'; '.join(row['problems'])}", file=sys.stderr)
    if len(args.dirs) == 1 and rows and rt.is_run_dir(Path(args.dirs[0])) and args.format == "md":
        print(f"\nepochs of {rows[0]['run']}:")  # one run named: its epochs too
        print(rt.format_history(rows[0]["history"]) if rows[0]["history"] else "(none yet)")
    if args.output:
        try:
            written = rt.write_text(args.output, text)
        except OSError as e:
            raise WriteError(
                f"cannot write the table to {args.output}: {e.strerror or e}"
            ) from None
        print(f"table written to {written}", file=notes)
    if args.plot:
        from cnnzoo.analysis import plots

        folder = Path(args.plot)
        folder.mkdir(parents=True, exist_ok=True)
        charts = [
            plots.plot_curves(rows, folder / rundir.CURVES),
            plots.plot_pareto(rows, folder / "pareto_macs.png", "macs"),
            plots.plot_pareto(rows, folder / "pareto_latency.png", "latency_ms"),
        ]
        for chart in charts:
            if chart is not None:
                print(f"chart written to {chart}", file=notes)
    print(f"{len(rows)} of {len(found)} run(s)", file=notes)
    return 0
