"""What the benchmarks do with their reports: the command line as it can be shown (no path of
this machine) and the report file, written atomically."""

from __future__ import annotations

import sys
from pathlib import Path

from cnnzoo.fileio import atomic_write


def shown_command(*paths: str) -> str:
    """This script's command line with the data paths among ``paths`` shown as DIR/NAME."""
    return "python " + " ".join(f"DIR/{Path(a).name}" if a in paths else a for a in sys.argv)


def save_report(output: str | Path | None, lines: list[str]) -> None:
    """Write the report's ``lines`` to ``output`` (when given) all at once: a reader never sees
    half of it, and a run cut short leaves the previous report whole."""
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(lines) + "\n"
        atomic_write(output, lambda f: f.write(text), binary=False)
