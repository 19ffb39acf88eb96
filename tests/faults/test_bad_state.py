"""Bad training state, signals and full disks outside checkpoints: every case ends in one
line with the right exit status, keeps only good checkpoints, and resumes bit for bit.

Runs with a fault are child processes through state_victim.py (real signals, a real
EFBIG from RLIMIT_FSIZE); the reference run is the uninterrupted one of faultkit's config.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from faultkit import (
    HERE,
    STEPS_PER_EPOCH,
    TINY,
    assert_same_run,
    child_env,
    cnnzoo,
    epoch_of,
    only_run,
    poisoned,
    popen_cnnzoo,
    wait_for,
    write_tiny_config,
)

import cnnzoo as zoo
import cnnzoo.engine.trainer as trainer
from cnnzoo.cli import main
from cnnzoo.engine import load_checkpoint
from cnnzoo.errors import WriteError
from cnnzoo.export import export_model, sidecar_path

STATE_VICTIM = HERE / "state_victim.py"


def run_with(fault: str, args: list[str], cache: Path) -> subprocess.CompletedProcess:
    """``cnnzoo ARGS`` in a child process with ``fault`` injected by state_victim.py."""
    return subprocess.run(
        [sys.executable, str(STATE_VICTIM), *args],
        env=child_env(cache, fault),
        capture_output=True,
        text=True,
        timeout=300,
    )


def train_args(tmp_path: Path) -> list[str]:
    return ["train", str(tmp_path / "tiny.json"), "--work-dir", str(tmp_path / "runs"), "--quiet"]


def last_line(done: subprocess.CompletedProcess | str, code: int) -> str:
    """The last stderr line of a run that ended with ``code`` and no traceback."""
    err = done if isinstance(done, str) else done.stderr
    if not isinstance(done, str):
        assert done.returncode == code, (done.returncode, err)
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def finite(ckpt: dict) -> bool:
    return all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.rglob("*") if ".tmp" in p.name]


def resumes_bit_identically(reference: Path, tmp_path: Path, *options: str) -> None:
    """Resume (the run's own config, ``options`` on top) and compare with the reference."""
    extra = ["--cfg-options", *options] if options else []
    done = cnnzoo(train_args(tmp_path) + ["--resume", *extra], tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert_same_run(reference, only_run(tmp_path / "runs"))


# ---- non-finite state is never saved as good ------------------------------------------------


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_epoch_ending_with_non_finite_weights_is_not_saved(reference, tmp_path, policy):
    """The last step of epoch 2 blows the weights up while its loss was finite: epoch 2 is
    neither last.pt nor best.pt, the error names epoch 1's last.pt, and it resumes."""
    write_tiny_config(tmp_path, nan_policy=policy)
    done = run_with(f"at:2:{STEPS_PER_EPOCH}:nan", train_args(tmp_path), tmp_path / "cache")
    line = last_line(done, 2)
    assert line.startswith("cnnzoo train: error: epoch 2 ended with non-finite values"), line
    run = only_run(tmp_path / "runs")
    assert f"last good checkpoint is {run / 'checkpoints' / 'last.pt'} (epoch 1)" in line
    for name in ("last.pt", "best.pt"):
        ckpt = load_checkpoint(run / "checkpoints" / name)
        assert ckpt["epoch"] == 1 and finite(ckpt), name
    no_temporaries(run)
    resumes_bit_identically(reference, tmp_path, "nan_policy=stop")  # the reference's config


def test_epoch_with_a_nan_validation_loss_is_not_saved(reference, tmp_path):
    """Finite weights, NaN val/loss (with val/top1 monitored, NaN outputs still score)."""
    write_tiny_config(tmp_path)
    done = run_with("nanval:2", train_args(tmp_path), tmp_path / "cache")
    line = last_line(done, 2)
    assert "epoch 2 ended with non-finite values (val/loss nan)" in line, line
    assert "(epoch 1)" in line
    run = only_run(tmp_path / "runs")
    assert epoch_of(run) == 1
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == 1
    resumes_bit_identically(reference, tmp_path)


def test_nan_validation_never_makes_best_even_when_the_monitor_is_finite(tmp_path):
    write_tiny_config(tmp_path, checkpoint=dict(monitor="val/top1", mode="max"))
    done = run_with("nanval:1", train_args(tmp_path), tmp_path / "cache")
    assert "epoch 1 ended with non-finite values (val/loss nan)" in last_line(done, 2)
    assert "no epoch was completed" in done.stderr
    run = only_run(tmp_path / "runs")
    assert not list((run / "checkpoints").iterdir())


def test_interrupt_with_non_finite_weights_keeps_the_last_good_checkpoint(reference, tmp_path):
    write_tiny_config(tmp_path, nan_policy="skip")
    done = run_with("at:2:4:nan,SIGTERM", train_args(tmp_path), tmp_path / "cache")
    assert last_line(done, 143) == "cnnzoo train: interrupted by SIGTERM"
    assert "the checkpoint of epoch 1 is kept" in done.stderr
    ckpt = load_checkpoint(only_run(tmp_path / "runs") / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["partial"] is None and finite(ckpt)
    resumes_bit_identically(reference, tmp_path, "nan_policy=stop")


def test_a_run_that_skipped_every_step_is_an_error(tmp_path, capsys, monkeypatch):
    """4 steps per epoch, 2 epochs, every loss NaN: fewer than the 10 skips that stop a run,
    yet nothing was learned; each epoch says so and the run does not exit 0."""
    build = trainer.build_data
    for epoch in (1, 2):
        for step in range(1, 5):
            build = poisoned(build, epoch, step, float("nan"))
    monkeypatch.setattr(trainer, "build_data", build)
    data = dict(TINY["data"], train=dict(TINY["data"]["train"], batch_size=512))
    cfg = write_tiny_config(tmp_path, nan_policy="skip", train_cfg=dict(max_epochs=2), data=data)
    code = main(["train", str(cfg), "--work-dir", str(tmp_path / "runs"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2
    line = last_line(captured.err, 2)
    assert line.startswith("cnnzoo train: error: no step was applied in 2 epoch(s)"), line
    for epoch in (1, 2):
        assert f"warning: epoch {epoch}: every step had a non-finite loss and was skipped" in (
            captured.out
        )


# ---- signals as clusters send them --------------------------------------------------------


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_save_the_step_and_resume_bit_identically(
    reference, tmp_path, name, code
):
    write_tiny_config(tmp_path)
    done = run_with(f"at:2:4:{name}", train_args(tmp_path), tmp_path / "cache")
    assert last_line(done, code) == f"cnnzoo train: interrupted by {name}"
    assert f"{name}: stopping after this step" in done.stderr
    assert "saved a checkpoint after step 4 of epoch 2; resume with: cnnzoo train" in done.stderr
    ckpt = load_checkpoint(only_run(tmp_path / "runs") / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["partial"]["step"] == 4
    resumes_bit_identically(reference, tmp_path)


def test_a_repeated_preemption_notice_still_saves_the_step(reference, tmp_path):
    """SIGTERM twice (the job's processes and the launcher both pass it on): one stop."""
    write_tiny_config(tmp_path)
    done = run_with("at:2:4:SIGTERM,SIGTERM", train_args(tmp_path), tmp_path / "cache")
    assert last_line(done, 143) == "cnnzoo train: interrupted by SIGTERM"
    ckpt = load_checkpoint(only_run(tmp_path / "runs") / "checkpoints" / "last.pt")
    assert ckpt["partial"]["step"] == 4
    resumes_bit_identically(reference, tmp_path)


def test_a_second_signal_stops_at_once_with_ctrl_c_status(reference, tmp_path):
    """SIGTERM, then Ctrl-C before the step is over: no mid-epoch checkpoint, exit 130."""
    write_tiny_config(tmp_path)
    done = run_with("at:2:4:SIGTERM,SIGINT", train_args(tmp_path), tmp_path / "cache")
    assert last_line(done, 130) == "cnnzoo train: interrupted"
    assert "the checkpoint of epoch 1 is kept" in done.stderr
    assert (
        load_checkpoint(only_run(tmp_path / "runs") / "checkpoints" / "last.pt")["partial"] is None
    )
    resumes_bit_identically(reference, tmp_path)


def test_sigterm_from_outside_at_a_random_moment_resumes_bit_identically(reference, tmp_path):
    write_tiny_config(tmp_path)
    work = tmp_path / "runs"
    proc = popen_cnnzoo(train_args(tmp_path), tmp_path / "cache")
    wait_for(lambda: any(work.glob("*/*/checkpoints/last.pt")), proc)
    try:
        proc.wait(timeout=random.Random(0).uniform(0.0, 1.5))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode in (0, 143), err
    if proc.returncode == 143:
        assert last_line(err, 143) == "cnnzoo train: interrupted by SIGTERM"
        assert "resume with: cnnzoo train" in err
    resumes_bit_identically(reference, tmp_path)


@pytest.mark.parametrize(("args", "code"), [(["models"], 0), (["summary", "nonexistent"], 2)])
def test_a_stop_signal_during_teardown_keeps_the_commands_exit_status(tmp_path, args, code):
    """SIGTERM after the command's work (while the interpreter tears down: the window in which
    a preemption notice just after the last epoch lands) exits with the command's status, not
    by the signal (-15, no word). Sent from an atexit function, so it lands there every time."""
    late = (
        "import atexit, os, signal, sys\n"
        "atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))\n"
        f"sys.argv = ['cnnzoo', *{args!r}]\n"
        "from cnnzoo.cli import entry\n"
        "entry()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", late], env=child_env(tmp_path / "cache"), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr


# ---- a full disk while exporting ----------------------------------------------------------


def previous_export(path: Path, fmt: str) -> dict[Path, bytes]:
    """An export of another (untrained) LeNet-5 at ``path``: what must survive a failure."""
    model = zoo.create_model("lenet5", num_classes=10, in_chans=1).eval()
    export_model(
        model, torch.randn(2, 1, 32, 32), path, format=fmt, meta=dict(mean=[0.5], std=[0.25])
    )
    return {p: p.read_bytes() for p in (path, sidecar_path(path))}


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_export_on_a_full_disk_is_one_line_and_keeps_the_previous_export(
    reference, tmp_path, fmt, suffix
):
    out = tmp_path / "export" / f"model{suffix}"
    before = previous_export(out, fmt)
    args = ["export", str(reference), "--format", fmt, "--output", str(out)]
    done = run_with("fullexport", args, tmp_path / "cache")
    line = last_line(done, 2)
    assert line.startswith(f"cnnzoo export: error: could not write {out}"), line
    assert "intact" in line
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(p.name for p in before)


def test_a_failed_sidecar_write_leaves_both_earlier_files(tmp_path, monkeypatch, capsys):
    """The model's temporary is written, the sidecar's write fails: neither file is replaced
    (a new model beside an old sidecar would be a mismatched pair)."""
    out = tmp_path / "export" / "model.pt"
    before = previous_export(out, "torchscript")
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    model = zoo.create_model("lenet5", num_classes=10, in_chans=1).eval()
    with pytest.raises(WriteError, match=r"model\.pt\.json: No space left"):
        export_model(model, torch.randn(2, 1, 32, 32), out, format="torchscript",
                     meta=dict(mean=[0.0], std=[1.0]))  # fmt: skip
    assert len(calls) == 2
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(p.name for p in before)
