"""The ``cnnzoo`` command line.

Each subcommand lives in its own module of :mod:`cnnzoo.commands` (its arguments beside
its work); this module only assembles the parser and turns user errors into one clear line and exit status 2 (3 when memory runs
out, 128 + the signal number when Ctrl-C, SIGTERM or SIGHUP stopped a run: 130, 143, 129).
"""

from __future__ import annotations

import argparse
import ast
import atexit
import contextlib
import errno
import importlib
import importlib.util
import os
import sys
import threading
import warnings
from pathlib import Path

from cnnzoo import __version__, machine, signals
from cnnzoo.errors import CnnzooError, Interrupted

COMMANDS = (
    "models",
    "summary",
    "compare",
    "configs",
    "config",
    "train",
    "test",
    "predict",
    "explain",
    "export",
    "runs",
    "study",
    "shards",
    "browse",
    "lr_find",
)


# what str.splitlines() breaks at, and the other control characters: escaped in messages
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), 127, 0x85)} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def one_line(text: str) -> str:
    """``text`` with its line breaks and control characters escaped: a message that quotes the
    user's input (``--cfg-options 'a\\rb'``, a file name) stays one line on the terminal."""
    return text.translate(_ESCAPES)


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose usage error is one line, as every other error of cnnzoo's, and
    stays one line whatever the arguments it quotes (argparse prints its usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)}; see `{self.prog} --help`\n")


def _command_help(name: str) -> str:
    """The ``HELP`` line of command module ``name``, read from its source, not imported:
    listing the commands (``cnnzoo --help``) imports none of them, nor torch."""
    spec = importlib.util.find_spec(f"cnnzoo.commands.{name}")
    for node in ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body:
        targets = [t.id for t in getattr(node, "targets", ()) if isinstance(t, ast.Name)]
        if targets == ["HELP"]:
            return ast.literal_eval(node.value)
    raise LookupError(f"cnnzoo.commands.{name} has no HELP")


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser of ``argv``: only the command it names (its first word that is one) is
    imported; the others are listed with their help."""
    p = _Parser(
        prog="cnnzoo",
        description="Classic image-classification networks: build, explain, train, evaluate, export.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((word for word in argv if word in COMMANDS), None)
    for name in COMMANDS:
        if name != chosen:
            sub.add_parser(name, help=_command_help(name))
            continue
        command = importlib.import_module(f"cnnzoo.commands.{name}")
        s = sub.add_parser(name, help=command.HELP, description=command.HELP)
        command.add_arguments(s)
        s.set_defaults(run=command.run)
    return p


OUT_OF_MEMORY_EXIT = 3


def _out_of_memory(e: BaseException) -> bool:
    """A host or device allocation failure (torch.OutOfMemoryError is a RuntimeError; a failed
    CPU allocation is a plain RuntimeError from the allocator)."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e)
    return "out of memory" in text or "can't allocate memory" in text


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Warnings print as ``cnnzoo CMD: warning: ...`` (not file:line plus a source line)."""
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: (
        f"cnnzoo {command}: warning: {one_line(str(message))}\n"
    )
    try:
        yield
    finally:
        warnings.formatwarning = previous


def _missing_working_directory() -> str | None:
    """The one line for a working directory that no longer exists (deleted in another shell),
    said before torch loads: oneMKL's start-up would print FATAL ERROR and exit without a word
    of why."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return (
            "the current working directory no longer exists (it was deleted or moved); "
            "cd to an existing folder and run the command again"
        )
    return None


def before_torch() -> None:
    """What must happen before a command's module imports torch: its OpenMP runtime reads the
    wait policy once (chosen from what runs now: :func:`cnnzoo.machine.before_torch_env`), and
    the seconds of the import are the window over which the load that sets the thread count is
    measured (:func:`cnnzoo.machine.mark_cpu_reading`)."""
    for name, value in machine.before_torch_env(os.environ, machine.running_elsewhere).items():
        os.environ[name] = value
    machine.mark_cpu_reading()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    missing_cwd = _missing_working_directory()
    if missing_cwd:
        print(f"cnnzoo: error: {missing_cwd}", file=sys.stderr)
        return CnnzooError.exit_code
    before_torch()
    args = _parser(argv).parse_args(argv)
    try:
        with _one_line_warnings(args.command):
            return int(args.run(args) or 0)
    except CnnzooError as e:
        print(f"cnnzoo {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM / SIGHUP during training
        stop = e if isinstance(e, Interrupted) else Interrupted()
        print(f"cnnzoo {args.command}: {stop}", file=sys.stderr)
        return stop.exit_code
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(
            f"cnnzoo {args.command}: error: out of memory ({first_line[:200]}). Lower "
            "data.train.batch_size (and data.val/test batch_size), the input size or the model; "
            "on a GPU, amp.enabled=True also halves the activations. The last checkpoint, if any, "
            "is intact: add --resume after the change.",
            file=sys.stderr,
        )
        return OUT_OF_MEMORY_EXIT
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as e:  # a path the user gave that the file system refuses
        if e.filename is None and e.errno != errno.ENAMETOOLONG:
            raise  # not about a file: a fault of cnnzoo's, shown in full
        print(f"cnnzoo {args.command}: error: {file_error(e)}", file=sys.stderr)
        return CnnzooError.exit_code


def file_error(e: OSError) -> str:
    """The one line for a file operation the system refused (any command, any path)."""
    name = str(e.filename or "")
    shown = one_line(name if len(name) <= 80 else f"{name[:40]}...{name[-30:]}")
    if e.errno == errno.ENAMETOOLONG:
        return (
            f"a path of {len(name):,} characters is too long for the file system ({shown}); "
            "use a shorter path (a name is at most 255 bytes, a whole path 4,096)"
        )
    hint = "free disk space" if e.errno == errno.ENOSPC else "check the path and its permissions"
    return f"{shown}: {e.strerror or e}; {hint}"


def entry() -> None:
    """The ``cnnzoo`` program (the console script, and ``python -m cnnzoo``): :func:`main`, then
    exit with its status without the interpreter's teardown of torch's modules (1-2 s of
    garbage collection that saves nothing). The exit does what matters of the usual one: it
    waits for threads, runs the ``atexit`` functions (multiprocessing's and tempfile's clean-ups
    among them) and flushes the output. A stop signal from then on (a preemption notice just
    after the last epoch) ends the process at once with the command's status: every file is
    written by then; the usual teardown would restore the default handlers and die by the
    signal with no word (exit -15 where the run had succeeded)."""
    code = main()
    signals.install(signals.STOP_SIGNALS, lambda signum, frame: os._exit(code))
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe: nothing to flush
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
