"""Run ``cnnzoo`` (``cnnzoo.cli.main``) with a bad-state or signal fault, as victim.py does
for kills. The fault is in ``CNNZOO_TEST_FAULT``:

- ``at:E:S:ACTIONS``: right after optimizer step S of epoch E, each of the comma-separated
  ACTIONS in turn: ``nan`` makes every weight of the model NaN (a step that blew up while its
  loss was finite); a signal name (``SIGTERM``, ``SIGHUP``, ``SIGINT``) sends that signal to
  the process itself with ``os.kill``, a real signal as a cluster or a terminal sends it.
- ``nanval:E``: the validation images of epoch E are NaN (its val/loss is NaN, the weights
  stay finite).
- ``fullexport``: the disk is full (writes fail with EFBIG, via RLIMIT_FSIZE) from the moment
  ``cnnzoo export`` starts writing the model, after it has read the run and its data.
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import sys

import torch

import cnnzoo.commands.export as export_commands
import cnnzoo.commands.train as commands
import cnnzoo.engine.trainer as trainer
from cnnzoo.cli import main


def act_after_step(epoch: int, step: int, actions: list[str]) -> None:
    models = []
    real_build = trainer.build_model

    def build_model(*args, **kwargs):
        built = real_build(*args, **kwargs)
        models.append(built[0])
        return built

    def hook(event: str, info: dict) -> None:
        if event != "step" or (info["epoch"], info["step"]) != (epoch, step):
            return
        for action in actions:
            if action == "nan":
                with torch.no_grad():
                    for p in models[-1].parameters():
                        p.fill_(float("nan"))
            else:
                os.kill(os.getpid(), getattr(signal, action))

    trainer.build_model = build_model
    commands.train = functools.partial(trainer.train, callbacks=[hook])


def nan_validation_at(epoch: int) -> None:
    real = trainer.build_data

    def build(*args, **kwargs):
        bundle = real(*args, **kwargs)
        train, real_iter = bundle.train, type(bundle.val).__iter__

        class NanAtEpoch(type(bundle.val)):
            def __iter__(self):
                nan = float("nan") if train.epoch == epoch else 1.0
                return ((images * nan, targets) for images, targets in real_iter(self))

        bundle.val.__class__ = NanAtEpoch
        return bundle

    trainer.build_data = build


def disk_full_on_export() -> None:
    real = export_commands.export_model

    def export_model(*args, **kwargs):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
        return real(*args, **kwargs)

    export_commands.export_model = export_model


def install(spec: str) -> None:
    kind, *args = spec.split(":")
    if kind == "at":
        act_after_step(int(args[0]), int(args[1]), args[2].split(","))
    elif kind == "nanval":
        nan_validation_at(int(args[0]))
    elif kind == "fullexport":
        disk_full_on_export()
    else:
        raise SystemExit(f"state_victim.py: unknown fault {spec!r}")


if __name__ == "__main__":
    install(os.environ["CNNZOO_TEST_FAULT"])
    sys.exit(main(sys.argv[1:]))
