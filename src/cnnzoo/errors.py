"""User-facing errors.

Every mistake a user can make (an unknown name, a malformed config, a corrupt file, a
checkpoint of another model, a NaN loss) raises a :class:`CnnzooError` subclass whose
message says what is wrong and what to do. The CLI prints that one message and exits
with status 2; it never shows a traceback for these.
"""

from __future__ import annotations

import difflib
import re
import signal
from collections.abc import Iterable, Sequence


class CnnzooError(Exception):
    """Base class of every error that is the user's to fix."""

    exit_code = 2


class UnknownNameError(CnnzooError, KeyError):
    """An unknown model, dataset, optimizer, ... name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(CnnzooError, ValueError):
    """A config file or override that cannot be used."""


class DataError(CnnzooError):
    """Missing, corrupt or mis-shaped data."""


class CheckpointError(CnnzooError):
    """A checkpoint that cannot be loaded into the model at hand."""


class InputShapeError(CnnzooError, ValueError):
    """An input tensor the model cannot take (channels or size)."""


class TrainingError(CnnzooError):
    """Training cannot go on (a NaN loss, a full disk, ...)."""


class WriteError(CnnzooError):
    """An output file that could not be written (a full disk, a read-only folder)."""


class MissingExtraError(CnnzooError):
    """An optional dependency that is not installed (the message names the extra to install)."""


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal: Ctrl-C (SIGINT), or SIGTERM and SIGHUP as clusters send
    them before preemption. The CLI exits with the shell's status for it, 128 + signum."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(int(signum))
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        if self.signum == signal.SIGINT:
            return "interrupted"
        return f"interrupted by {signal.Signals(self.signum).name}"


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value: resnet14 < resnet18 < resnet101."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)
    )


def closest(name: str, choices: Iterable[str], n: int = 5, common: Sequence[str] = ()) -> list[str]:
    """The names among ``choices`` closest to ``name`` (for 'did you mean' hints). Names about
    as close (their likeness equal to one decimal) come ``common`` ones first, in that order:
    ``resnet`` -> resnet18, resnet50, ..., not resnet56, resnet50, resnet44."""
    choices = list(choices)
    hits = difflib.get_close_matches(name, choices, n=len(choices), cutoff=0.5)
    if not hits:
        hits = [c for c in choices if name.lower() in c.lower()]
    if not common:
        return hits[:n]
    rank = {c: i for i, c in enumerate(common)}

    def order(choice: str) -> tuple[float, int]:
        likeness = difflib.SequenceMatcher(None, name, choice).ratio()
        return -round(likeness, 1), rank.get(choice, len(rank))

    return sorted(hits, key=order)[:n]


def unknown(
    kind: str, name: str, choices: Iterable[str], common: Sequence[str] = ()
) -> UnknownNameError:
    """An :class:`UnknownNameError` for ``name`` that lists the closest valid names, the
    ``common`` ones first."""
    choices = sorted(choices, key=natural_key)
    hint = closest(name, choices, common=common)
    msg = f"unknown {kind} {name!r}"
    if hint:
        msg += f"; did you mean: {', '.join(hint)}?"
    else:
        shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
        msg += f"; valid names: {shown}"
    return UnknownNameError(msg)
