"""Fixtures of the fault tests (helpers live in faultkit.py)."""

from __future__ import annotations

import contextlib
import functools
import io
import socket
import warnings
from pathlib import Path

import pytest
import torch
from faultkit import cnnzoo, only_run, write_tiny_config

import cnnzoo.commands.train as commands
import cnnzoo.engine.trainer as trainer
from cnnzoo.cli import main


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNZOO_DATA", raising=False)


@pytest.fixture(autouse=True)
def _restore_torch_globals():
    """In-process training sets torch's deterministic mode and thread count; undo it so that
    later tests run as they would alone."""
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run of the tiny config (trained once per session)."""
    tmp = tmp_path_factory.mktemp("reference")
    cfg = write_tiny_config(tmp)
    done = cnnzoo(["train", str(cfg), "--work-dir", str(tmp / "runs"), "--quiet"], tmp / "cache")
    assert done.returncode == 0, done.stderr
    return only_run(tmp / "runs")


class _FirstStep(BaseException):
    """Raised by the hook after the first optimizer step: the case ran."""


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``cli(argv) -> (outcome, stderr)``: runs ``cnnzoo`` in-process, offline, with an empty
    data root, stopping a training run after its first optimizer step; the outcome is 'ran',
    'error' (exit 2, exactly one line) or 'usage error' (argparse); anything else fails."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "no-data"))

    def offline(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", offline)
    monkeypatch.setattr(socket, "create_connection", offline)

    def first_step(event, info):
        if event == "step":
            raise _FirstStep

    monkeypatch.setattr(commands, "train", functools.partial(trainer.train, callbacks=[first_step]))

    def run(argv: list[str]) -> tuple[str, str]:
        err = io.StringIO()
        with (
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(io.StringIO()),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            try:
                code = main(argv)
            except _FirstStep:
                return "ran", err.getvalue()
            except SystemExit as e:  # argparse's error: one line too
                assert e.code == 2, err.getvalue()
                lines = err.getvalue().strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith("cnnzoo"), lines
                assert ": error: " in lines[0] and "--help" in lines[0], lines
                return "usage error", err.getvalue()
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        if code == 0:
            return "ran", err.getvalue()
        assert code == 2, (code, lines)
        assert len(lines) == 1 and lines[0].startswith(f"cnnzoo {argv[0]}: error: "), lines
        return "error", err.getvalue()

    return run
