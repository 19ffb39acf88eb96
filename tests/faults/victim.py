"""Run ``cnnzoo`` (``cnnzoo.cli.main``) with one fault injected at an exact point.

Used by the fault tests as ``python tests/faults/victim.py <cnnzoo args...>`` with the fault
in the environment variable ``CNNZOO_TEST_FAULT``. No fault: the plain CLI. The faults, by
kind (``E`` an epoch, ``S`` a step within it, both counted from 1):

- ``step:E:S``: SIGKILL right after optimizer step S of epoch E.
- ``sigint:E:S``, ``sigterm:E:S``: SIGINT (Ctrl-C) or SIGTERM right after optimizer step S of
  epoch E.
- ``node:E:S``: right after optimizer step S of epoch E, SIGKILL the parent process (under
  torchrun: this node's launcher) and then this one, as when a whole node goes down.
- ``write:E:NAME``: SIGKILL halfway through writing checkpoint NAME (``last.pt`` or
  ``best.pt``) of epoch E: half of the bytes are in the temporary file, flushed.
- ``saved:E:NAME``: SIGKILL right after checkpoint NAME of epoch E is in place.
- ``eval:E``: SIGKILL after the first batch of the validation that ends epoch E.
- ``test``: SIGKILL after the first batch of the final test.
- ``nan:E:S``: the images of step S of epoch E are NaN, so is its loss (no kill).
- ``full:E``: the disk is full (writes fail with EFBIG, via RLIMIT_FSIZE) from the
  checkpoint of epoch E on.

The process kills itself with ``os.kill(os.getpid(), SIGKILL)``: nothing runs after it (no
``finally``, no atexit), exactly as with ``kill -9`` from outside, but at a known point. The
hooks replace names inside ``cnnzoo.engine.trainer``, so the test breaks loudly (the process
exits normally instead of dying) if those names change.
"""

from __future__ import annotations

import functools
import io
import os
import resource
import signal
import sys

import torch
from faultkit import poisoned

import cnnzoo.commands.train as commands
import cnnzoo.engine.trainer as trainer
from cnnzoo.cli import main


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def signal_after_step(epoch: int, step: int, signum: int) -> None:
    def hook(event: str, info: dict) -> None:
        if event == "step" and info["epoch"] == epoch and info["step"] == step:
            if signum == signal.SIGKILL:
                die()
            os.kill(os.getpid(), signum)

    commands.train = functools.partial(trainer.train, callbacks=[hook])


def node_down_after_step(epoch: int, step: int) -> None:
    def hook(event: str, info: dict) -> None:
        if event == "step" and info["epoch"] == epoch and info["step"] == step:
            os.kill(os.getppid(), signal.SIGKILL)
            die()

    commands.train = functools.partial(trainer.train, callbacks=[hook])


def kill_while_writing(epoch: int, name: str) -> None:
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        target = getattr(f, "name", str(f))
        if isinstance(obj, dict) and obj.get("epoch") == epoch and f".{name}.tmp" in str(target):
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            os.fsync(f.fileno())
            die()
        return real_save(obj, f, *args, **kwargs)

    torch.save = save


def kill_after_saving(epoch: int, name: str) -> None:
    real = trainer.save_checkpoint

    def save_checkpoint(obj, path):
        real(obj, path)
        if obj["epoch"] == epoch and os.path.basename(path) == name:
            die()

    trainer.save_checkpoint = save_checkpoint


def kill_during_eval(desc: str, epoch: int | None) -> None:
    """Kill after the first batch of evaluation ``desc`` in ``epoch`` (None: any epoch); the
    epoch is the one of the last training step."""
    real = trainer.evaluate
    seen = {"epoch": None}

    def hook(event: str, info: dict) -> None:
        if event == "step":
            seen["epoch"] = info["epoch"]

    def evaluate(model, batches, *args, **kwargs):
        if kwargs.get("desc") != desc or epoch not in (None, seen["epoch"]):
            return real(model, batches, *args, **kwargs)

        def first_then_die():
            for batch in batches:
                yield batch
                die()  # the first batch has been scored

        return real(model, first_then_die(), *args, **kwargs)

    trainer.evaluate = evaluate
    commands.train = functools.partial(trainer.train, callbacks=[hook])


def nan_loss_at(epoch: int, step: int) -> None:
    trainer.build_data = poisoned(trainer.build_data, epoch, step, float("nan"))


def disk_full_from(epoch: int) -> None:
    real = trainer.save_checkpoint

    def save_checkpoint(obj, path):
        if obj["epoch"] >= epoch:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write, not a signal
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
        real(obj, path)

    trainer.save_checkpoint = save_checkpoint


def install(spec: str) -> None:
    kind, *args = spec.split(":")
    if kind in ("step", "sigint", "sigterm"):
        signum = {"step": signal.SIGKILL, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}[kind]
        signal_after_step(int(args[0]), int(args[1]), signum)
    elif kind == "node":
        node_down_after_step(int(args[0]), int(args[1]))
    elif kind == "write":
        kill_while_writing(int(args[0]), args[1])
    elif kind == "saved":
        kill_after_saving(int(args[0]), args[1])
    elif kind == "eval":
        kill_during_eval("val", int(args[0]))
    elif kind == "test":
        kill_during_eval("test", None)
    elif kind == "nan":
        nan_loss_at(int(args[0]), int(args[1]))
    elif kind == "full":
        disk_full_from(int(args[0]))
    else:
        raise SystemExit(f"victim.py: unknown fault {spec!r}")


if __name__ == "__main__":
    if os.environ.get("CNNZOO_TEST_FAULT"):
        install(os.environ["CNNZOO_TEST_FAULT"])
    sys.exit(main(sys.argv[1:]))
