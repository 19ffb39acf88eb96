"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[IO], Any],
    *,
    binary: bool = True,
    newline: str | None = None,
) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary file in the same folder
    (``.{name}.<random>.tmp``), flushed and fsynced, then renamed over ``path``. A failure
    (a full disk, an interrupt) removes the temporary file and leaves any earlier ``path``
    intact. The file is made readable by all (0644), as an ``open()`` under the usual umask
    would; ``mkstemp`` alone makes it private.

    Checkpoints (:func:`cnnzoo.engine.checkpoint.save_checkpoint`) have their own writer: it
    also fsyncs the folder and names its temporary file per process.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
