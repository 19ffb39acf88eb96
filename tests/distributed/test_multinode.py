"""Two "nodes" on this machine: two torchrun launchers of one process each, meeting at a
c10d rendezvous on 127.0.0.1 (gloo), train like one process with the same global batch, and
a run that loses a whole node resumes on two nodes to the bits of a run that never stopped.

Each launcher pays for its own start (torch imports in the launcher and in its worker), so
the module runs three two-node jobs and nothing more: about 85 s of CPU in all (two whole
runs of about 33 s, the killed one about 17 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnzoo.config import load_config
from cnnzoo.engine import load_checkpoint, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from faultkit import VICTIM, assert_same_run, only_run  # noqa: E402

pytestmark = pytest.mark.slow

# LeNet-5 on scikit-learn's digits: 1293 training images, 20 whole global batches of 64 an epoch
# (2 nodes x 32 or 1 process x 64); no dropout, no augmentation, so the ranks' random
# states play no part and only the order of float32 sums differs between 2 and 1 process.
DIGITS = """
model = dict(type='lenet5', num_classes=10, in_chans=1)
data = dict(type='digits', download=False, val_split=0.1, image_size=32, loader='device', num_workers=0,
            train=dict(batch_size=32, drop_last=True, pipeline=[]), val=dict(batch_size=512), test=dict(batch_size=512, tta_flip=False))
optimizer = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4)
param_scheduler = dict(type='MultiStepLR', milestones=[2], gamma=0.1)
train_cfg = dict(max_epochs=3)
checkpoint = dict(monitor='val/loss', mode='min')
log = dict(interval=10, tensorboard=False)
device = 'cpu'
"""


def two_nodes(
    args: list[str], cwd: Path, port: int, fault_on_second: str | None = None, timeout: float = 240
) -> list[subprocess.CompletedProcess]:
    """``torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint
    127.0.0.1:PORT -m cnnzoo ARGS``, started twice (the second launcher through victim.py
    with ``fault_on_second``); waits for both and returns their results in start order."""
    procs = []
    for node in range(2):
        fault = fault_on_second if node == 1 else None
        target = [str(VICTIM)] if fault else ["-m", "cnnzoo"]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=test",
               *target, *args]  # fmt: skip
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        env.pop("CNNZOO_TEST_FAULT", None)
        if fault:
            env["CNNZOO_TEST_FAULT"] = fault
        if sys.platform.startswith("linux"):
            env.setdefault("GLOO_SOCKET_IFNAME", "lo")
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                text=True,
                start_new_session=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
        )
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:  # a hung node: take its launcher and worker down
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return results


def report(results: list[subprocess.CompletedProcess]) -> str:
    return "\n".join(
        f"node {i}: exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        for i, r in enumerate(results)
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, free_port):
    """The two-node run and the one-process run with the same global batch (64)."""
    tmp = tmp_path_factory.mktemp("multinode")
    config = tmp / "digits_lenet5.py"
    config.write_text(DIGITS)
    env = {"CNNZOO_CACHE": str(tmp / "cache"), "OMP_NUM_THREADS": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        results = two_nodes(
            ["train", str(config), "--work-dir", str(tmp / "two"), "--quiet"], tmp, free_port()
        )
        assert [r.returncode for r in results] == [0, 0], report(results)
        threads = torch.get_num_threads()
        one = train(
            load_config(config, {"data.train.batch_size": 64, "work_dir": str(tmp / "one")}),
            quiet=True,
        )
        torch.set_num_threads(threads)
    return dict(tmp=tmp, config=config, results=results, two=only_run(tmp / "two"), one=one)


def test_two_nodes_train_the_weights_of_one_process(uninterrupted):
    results, two, one = uninterrupted["results"], uninterrupted["two"], uninterrupted["one"]
    # one run directory, named by global rank 0 and told to the other node; one report
    assert sum(r.stdout.count("run dir:") for r in results) == 1, report(results)
    s2, s1 = (json.loads((r / "summary.json").read_text()) for r in (two, one))
    assert (s2["processes"], s2["global_batch_size"]) == (2, 64)
    assert (s1["processes"], s1["global_batch_size"]) == (1, 64)
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (two, one))
    assert a["global_step"] == b["global_step"] == 60
    diff = max((a["model"][k] - b["model"][k]).abs().max().item() for k in b["model"])
    # the same arithmetic but for the order of float32 sums (DDP averages two means of 32,
    # one process takes the mean of 64): last-bit differences, which 60 SGD steps with
    # momentum carry to 3.9e-7 (weights up to 0.38); 1e-5 leaves room for other CPUs' kernels
    assert diff < 1e-5, diff
    assert abs(s2["test/top1"] - s1["test/top1"]) <= 0.5


def test_a_lost_node_resumes_on_two_nodes_bit_identically(
    uninterrupted, tmp_path, free_port, monkeypatch
):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    args = ["train", str(uninterrupted["config"]), "--work-dir", str(tmp_path / "w"), "--quiet"]
    # the second node goes down (launcher and worker, SIGKILL) after step 5 of epoch 2
    killed = two_nodes(args, tmp_path, free_port(), fault_on_second="node:2:5")
    assert all(r.returncode != 0 for r in killed), report(killed)
    run = only_run(tmp_path / "w")
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 1
    resumed = two_nodes([*args, "--resume"], tmp_path, free_port())
    assert [r.returncode for r in resumed] == [0, 0], report(resumed)
    assert "resuming" in "".join(r.stdout + r.stderr for r in resumed)
    assert_same_run(uninterrupted["two"], run)


def test_a_signal_on_one_node_saves_mid_epoch_for_all_and_resumes_bit_identically(
    uninterrupted, tmp_path, free_port, monkeypatch
):
    """A preemption notice reaching one node only: both ranks agree to stop after the same
    step, rank 0 writes a mid-epoch checkpoint with the metrics of both, and the resumed run
    ends with the bits of the run that never stopped."""
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    args = ["train", str(uninterrupted["config"]), "--work-dir", str(tmp_path / "w"), "--quiet"]
    stopped = two_nodes(args, tmp_path, free_port(), fault_on_second="sigterm:2:5")
    assert all(r.returncode != 0 for r in stopped), report(stopped)
    run = only_run(tmp_path / "w")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (ckpt["epoch"], ckpt["partial"]["step"]) == (1, 5), report(stopped)
    assert "saved a checkpoint after step 5 of epoch 2" in stopped[0].stderr, report(stopped)
    resumed = two_nodes([*args, "--resume"], tmp_path, free_port())
    assert [r.returncode for r in resumed] == [0, 0], report(resumed)
    assert_same_run(uninterrupted["two"], run)
