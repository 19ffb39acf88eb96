"""Runs keep their history: a resume continues with the run's own config, a changed config is
kept beside the earlier one, the printed resume command reproduces the run, and a run is
locked while it trains."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap

import pytest
import torch

import cnnzoo.engine.trainer as trainer
from cnnzoo.cli import main
from cnnzoo.config import config_data, load_config
from cnnzoo.engine.checkpoint import load_checkpoint
from cnnzoo.engine.runs import run_config
from cnnzoo.errors import Interrupted
from cnnzoo.rundir import LOCK as LOCK_FILE
from cnnzoo.rundir import run_dir_of


def _cli_train(make_cfg, *args: str) -> int:
    cfg = make_cfg()  # writes tiny.py and sets the environment
    return main(["train", cfg.filename, "--work-dir", cfg.work_dir, "--quiet", *args])


def test_resume_without_a_config_continues_with_the_runs_own_and_records_changes(
    make_cfg, fake_data, tmp_path, capsys
):
    work = tmp_path / "runs"
    assert (
        _cli_train(make_cfg, "--cfg-options", "optimizer.lr=0.0123", "train_cfg.max_epochs=1") == 0
    )
    (run,) = work.glob("*/*")
    first = (run / "config.yaml").read_text()

    assert (
        main(["train", "--resume", str(run), "--quiet", "--cfg-options", "train_cfg.max_epochs=2"])
        == 0
    )
    assert (run / "config.yaml").read_text() == first  # never overwritten
    changed = load_config(run / "config.resume-1.yaml")
    assert changed.optimizer.lr == 0.0123 and changed.train_cfg.max_epochs == 2
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] == 2 and last["config"]["optimizer"]["lr"] == 0.0123
    assert run_config(run).train_cfg.max_epochs == 2  # the latest is what a resume continues with

    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # the same config: nothing new
    assert sorted(p.name for p in run.glob("config*")) == ["config.resume-1.yaml", "config.yaml"]
    assert list(work.glob("*/*")) == [run]


def test_resume_with_a_config_continues_with_the_runs_overrides_and_prints_the_diff(
    make_cfg, fake_data, tmp_path, capsys
):
    """One rule for both forms: ``train CONFIG --resume`` continues the latest run of CONFIG
    with that run's own config (its overrides kept), new overrides on top, and says what
    changed."""
    work = tmp_path / "runs"
    assert (
        _cli_train(make_cfg, "--cfg-options", "optimizer.lr=0.0123", "train_cfg.max_epochs=1") == 0
    )
    (run,) = work.glob("*/*")
    capsys.readouterr()
    assert _cli_train(make_cfg, "--resume", "--cfg-options", "train_cfg.max_epochs=2") == 0
    out = capsys.readouterr().out
    assert "the config differs" in out
    assert "  train_cfg.max_epochs: 1 -> 2" in out.splitlines()
    assert "optimizer.lr" not in out  # kept from the run, not taken from CONFIG again
    assert list(work.glob("*/*")) == [run]
    resumed = load_config(run / "config.resume-1.yaml")
    assert (resumed.optimizer.lr, resumed.train_cfg.max_epochs) == (0.0123, 2)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 2


def test_config_command_prints_what_a_run_trains_with(make_cfg, fake_data, tmp_path, capsys):
    assert (
        _cli_train(make_cfg, "--cfg-options", "optimizer.lr=0.0123", "train_cfg.max_epochs=1") == 0
    )
    (run,) = (tmp_path / "runs").glob("*/*")
    capsys.readouterr()
    assert main(["config", str(run), "--format", "json", "--cfg-options", "seed=5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["optimizer"]["lr"] == 0.0123 and printed["seed"] == 5
    assert printed == config_data(load_config(run, ["seed=5"]))
    assert main(["config", str(run), "--cfg-options", "seed=-1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "cnnzoo config: error: seed must be an integer in [0, 4,294,967,295], got -1"
    ]


def test_the_printed_resume_command_reproduces_the_run(
    make_cfg, fake_data, tmp_path, capsys, monkeypatch
):
    options = ["--cfg-options", "optimizer.lr=0.02", "seed=7"]
    assert _cli_train(make_cfg, *options) == 0
    (whole,) = (tmp_path / "runs").glob("*/*")
    reference = load_checkpoint(whole / "checkpoints" / "last.pt")

    def stop(event: str, info: dict) -> None:
        if event == "step" and info["epoch"] == 2 and info["step"] == 3:
            raise Interrupted()

    real = trainer.train
    monkeypatch.setattr(
        "cnnzoo.commands.train.train", lambda cfg, **kw: real(cfg, callbacks=[stop], **kw)
    )
    capsys.readouterr()
    make_cfg()
    assert (
        main(
            [
                "train",
                str(tmp_path / "tiny.py"),
                "--work-dir",
                str(tmp_path / "again"),
                "--quiet",
                *options,
            ]
        )
        != 0
    )
    hint = capsys.readouterr().err.split("resume with: ")[1].splitlines()[0]
    monkeypatch.setattr("cnnzoo.commands.train.train", real)
    command = shlex.split(hint)
    assert command[:2] == ["cnnzoo", "train"] and "optimizer.lr" not in hint
    assert main(command[1:] + ["--quiet"]) == 0
    (run,) = (tmp_path / "again").glob("*/*")
    resumed = load_checkpoint(run / "checkpoints" / "last.pt")
    assert resumed["config"] == {**reference["config"], "work_dir": resumed["config"]["work_dir"]}
    for key, value in reference["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cnnzoo.rundir import run_lock
    with run_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def test_a_run_being_trained_is_locked_and_a_dead_holder_is_taken_over(
    make_cfg, fake_data, tmp_path, capsys
):
    assert _cli_train(make_cfg, "--cfg-options", "train_cfg.max_epochs=1") == 0
    (run,) = (tmp_path / "runs").glob("*/*")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        assert main(["train", "--resume", str(run), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"process {holder.pid}" in err, err
    finally:
        holder.kill()
        holder.wait()
    assert (run / LOCK_FILE).read_text() == str(holder.pid)  # stale: its process is gone
    assert (
        main(["train", "--resume", str(run), "--quiet", "--cfg-options", "train_cfg.max_epochs=2"])
        == 0
    )
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 2


def test_run_dir_of_a_checkpoint_and_of_a_run(tmp_path):
    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"")
    assert run_dir_of(run) == run
    assert run_dir_of(run / "checkpoints" / "best.pt") == run


def test_train_leaves_torchs_global_settings_as_it_found_them(make_cfg, fake_data):
    cfg = make_cfg(**{"train_cfg.max_epochs": 1, "deterministic": True})  # trains on 1 thread
    torch.set_num_threads(3)
    trainer.train(cfg, quiet=True)
    assert torch.get_num_threads() == 3
    assert not torch.are_deterministic_algorithms_enabled()


def test_cnnzoo_test_reproduces_the_end_of_training_test_and_keeps_its_report(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    options = ["train_cfg.max_epochs=1", "amp.enabled=True", "data.test.tta_flip=True"]
    args = ["--work-dir", str(tmp_path / "runs"), "--quiet", "--cfg-options", *options]
    assert main(["train", "quickstart_lenet5_digits", *args]) == 0
    (run,) = (tmp_path / "runs").glob("*/*")
    summary = json.loads((run / "summary.json").read_text())
    assert main(["test", str(run), "--quiet"]) == 0
    report = json.loads((run / "test_report.json").read_text())
    assert (report["top1"], report["loss"]) == (summary["test/top1"], summary["test/loss"])

    own = (run / "test_report.json").read_text()
    assert main(["test", str(run), "--quiet", "--data", str(tmp_path / "other")]) == 0
    assert len(list(run.glob("test_report-other-*.json"))) == 1
    assert (run / "test_report.json").read_text() == own


@pytest.mark.parametrize(
    "kind", ["link to a file", "dangling link", "link to a device", "folder", "fifo"]
)
def test_a_lock_that_is_not_a_file_it_made_is_refused_and_nothing_is_written(
    make_cfg, fake_data, tmp_path, capsys, kind
):
    """RUN/train.lock is untrusted: it is never written through a link or into anything but
    a regular file, and each odd kind of lock is one line (was: the target of a link was
    truncated and given a PID; IsADirectoryError, EINVAL, FileNotFoundError)."""
    assert _cli_train(make_cfg, "--cfg-options", "train_cfg.max_epochs=1") == 0
    (run,) = (tmp_path / "runs").glob("*/*")
    lock, precious = run / LOCK_FILE, tmp_path / "precious.txt"
    precious.write_text("keep me")
    if kind == "link to a file":
        lock.symlink_to(precious)
    elif kind == "dangling link":
        lock.symlink_to(tmp_path / "nowhere")
    elif kind == "link to a device":
        lock.symlink_to("/dev/null")
    elif kind == "folder":
        lock.mkdir()
    else:
        os.mkfifo(lock)
    capsys.readouterr()
    code = main(
        ["train", "--resume", str(run), "--quiet", "--cfg-options", "train_cfg.max_epochs=2"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"{lock} is " in err and "remove it" in err
    assert precious.read_text() == "keep me"
    assert not (tmp_path / "nowhere").exists()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1  # nothing trained


def test_the_lock_is_removed_when_the_run_ends(make_cfg, fake_data, tmp_path):
    assert _cli_train(make_cfg, "--cfg-options", "train_cfg.max_epochs=1") == 0
    (run,) = (tmp_path / "runs").glob("*/*")
    assert not (run / LOCK_FILE).exists()
    assert (
        main(["train", "--resume", str(run), "--quiet", "--cfg-options", "train_cfg.max_epochs=2"])
        == 0
    )
    assert not (run / LOCK_FILE).exists()
