"""Writing files so that a reader never sees half of one, and reading only regular files."""

from __future__ import annotations

import errno
import os
import stat
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


class NotRegularFile(OSError):
    """A path that names a FIFO, a device or a socket where a file was expected."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(errno.EINVAL, "not a regular file (a FIFO or a device?)", str(path))


def open_regular(path: str | os.PathLike, mode: str = "rb", encoding: str | None = None) -> IO:
    """Open ``path`` for reading if it is a regular file; anything else raises
    :class:`NotRegularFile` (an ``OSError``) at once. A plain ``open()`` of a FIFO blocks until
    a writer comes, and a device can be endless: every file cnnzoo reads back from disk (run
    directories, caches, images) may be one, since anything on disk is untrusted."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode, encoding=encoding)
    except BaseException:
        os.close(fd)
        raise


def read_regular_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of a regular file (see :func:`open_regular`)."""
    with open_regular(path, "r", encoding="utf-8") as f:
        return f.read()


def read_failure(e: BaseException) -> str:
    """Why a file read back from disk could not be used, in a few words for a note: the
    operating system's reason, ``nested too deep`` (JSON past the recursion limit), ``not
    UTF-8 text``, or the parser's message (cut to 120 characters)."""
    if isinstance(e, RecursionError):
        return "nested too deep"
    if isinstance(e, UnicodeDecodeError):
        return "not UTF-8 text"
    text = " ".join(str(getattr(e, "strerror", None) or e).split())
    return text[:120] or type(e).__name__
