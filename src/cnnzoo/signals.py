"""The one place cnnzoo installs signal handlers.

Training defers a stop signal to the end of its step, set-up and reports stop at once, the
``--gpus`` launcher passes signals on to torchrun, and the program's exit ends the process
at once with the command's status. Each is a handler; :func:`handling` installs it for a
block and restores what was there before, whatever happens in the block.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator

# Ctrl-C, and what SLURM and Kubernetes send before preemption (no SIGHUP on Windows).
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

Handler = Callable[[int, object], object] | int


def signal_name(signum: int) -> str:
    """``'Ctrl-C'`` for SIGINT, else the signal's own name (``'SIGTERM'``)."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


@contextlib.contextmanager
def handling(signals: Iterable[int], handler: Handler) -> Iterator[None]:
    """Run the block with ``handler`` for each of ``signals``, then put the old handlers back.

    Python lets only the main thread install handlers; from any other thread (a notebook's
    worker, a test runner's thread) the block runs with the handlers as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before)


def install(signals: Iterable[int], handler: Handler) -> None:
    """Install ``handler`` for good (the program's last moments, where nothing is restored)."""
    for s in signals:
        signal.signal(s, handler)
