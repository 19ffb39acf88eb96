"""Kill -9 a training run (at exact points, and at random moments), resume it with
``cnnzoo train --resume``, and check that it ends bit for bit as an uninterrupted run.

Every run is a child process on the CPU with ``deterministic=True``; the reference run is
trained once per session. The exact kill and Ctrl-C points come from ``victim.py``.
"""

from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from faultkit import (
    KILLED,
    STEPS_PER_EPOCH,
    TINY,
    assert_same_run,
    cnnzoo,
    epoch_of,
    only_run,
    popen_cnnzoo,
    wait_for,
    write_tiny_config,
)

from cnnzoo.data import build_data
from cnnzoo.engine import load_checkpoint

# One run killed at each of these points in turn, each time resumed from where the previous
# kill left it (so it is also a test of resuming a resumed run), then resumed to the end.
CHAIN = [  # (fault, where, the epoch of last.pt after the kill)
    ("step:1:4", "mid-epoch, before the first checkpoint", None),
    ("step:2:5", "mid-epoch, after step 5 of epoch 2", 1),
    ("eval:2", "during the validation of epoch 2", 1),
    ("write:2:last.pt", "halfway through writing last.pt of epoch 2", 1),
    ("saved:2:best.pt", "between best.pt and last.pt of epoch 2", 1),
    (f"step:3:{STEPS_PER_EPOCH}", "after the last step of the last epoch", 2),
    ("write:3:best.pt", "halfway through writing best.pt of epoch 3", 2),
    ("saved:3:last.pt", "after the last checkpoint, before metrics and reports", 3),
    ("test", "during the final test", 3),
]


def _train(tmp_path: Path, fault: str | None = None, resume: bool = False):
    cfg = tmp_path / "tiny.json"
    args = ["train", str(cfg), "--work-dir", str(tmp_path / "runs"), "--quiet"]
    return cnnzoo(args + (["--resume"] if resume else []), tmp_path / "cache", fault)


def test_killed_at_nine_points_and_resumed_is_bit_identical(reference, tmp_path):
    write_tiny_config(tmp_path)
    for i, (fault, where, epoch) in enumerate(CHAIN):
        done = _train(tmp_path, fault, resume=i > 0)
        assert done.returncode == KILLED, f"no kill {where} ({fault}):\n{done.stderr}"
        assert "Traceback" not in done.stderr
        assert epoch_of(only_run(tmp_path / "runs")) == epoch, where
    done = _train(tmp_path, resume=True)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout
    assert_same_run(reference, only_run(tmp_path / "runs"))


def test_killed_at_random_moments_and_resumed_is_bit_identical(reference, tmp_path):
    """kill -9 from outside at a random moment after the first checkpoint, twice per run."""
    rng = random.Random(0)
    cfg = write_tiny_config(tmp_path)
    work = tmp_path / "runs"
    args = ["train", str(cfg), "--work-dir", str(work), "--quiet"]
    landed = []
    for round_ in range(2):
        before = epoch_of(only_run(work)) if round_ else None
        proc = popen_cnnzoo(args + (["--resume"] if round_ else []), tmp_path / "cache")
        # wait for the next checkpoint of this process, then kill at a random moment after it
        wait_for(
            lambda b=before: (
                any(work.glob("*/*/checkpoints/last.pt")) and epoch_of(only_run(work)) != b
            ),
            proc,
        )
        try:
            proc.wait(timeout=rng.uniform(0.0, 2.5))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
        landed.append((proc.returncode, epoch_of(only_run(work))))
    done = cnnzoo(args + ["--resume"], tmp_path / "cache")
    assert done.returncode == 0, (landed, done.stderr)
    assert_same_run(reference, only_run(work))


@pytest.mark.parametrize("step", [4, STEPS_PER_EPOCH])
def test_ctrl_c_saves_a_checkpoint_at_the_step_and_resumes_bit_identically(
    reference, tmp_path, step
):
    write_tiny_config(tmp_path)
    done = _train(tmp_path, f"sigint:2:{step}")
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    err = done.stderr.strip().splitlines()
    assert err[-1] == "cnnzoo train: interrupted", err
    assert (
        f"saved a checkpoint after step {step} of epoch 2" in done.stderr
        and "--resume" in done.stderr
    )
    run = only_run(tmp_path / "runs")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["partial"]["step"] == step
    assert ckpt["global_step"] == STEPS_PER_EPOCH + step
    done = _train(tmp_path, resume=True)
    assert done.returncode == 0, done.stderr
    assert f"after epoch 1, step {step} of epoch 2" in done.stdout
    assert_same_run(reference, run)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["partial"] is None


@pytest.mark.parametrize("loader", ["device", "dataloader"])
def test_drawing_batches_leaves_the_global_rng_alone(tmp_path, loader):
    """Resuming mid-epoch redraws the epoch's first batches after the RNG states are
    restored, so the data must not draw from torch's global generator."""
    cfg = dict(TINY["data"], loader=loader, num_workers=0)
    bundle = build_data(cfg, device="cpu", seed=0)
    bundle.train.set_epoch(2)
    before = torch.get_rng_state()
    for _ in bundle.train:
        pass
    assert torch.equal(torch.get_rng_state(), before)
