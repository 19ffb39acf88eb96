"""Helpers of the fault tests: a tiny deterministic config, running ``cnnzoo`` in a child
process (with or without an injected fault, see victim.py), comparing two runs bit for bit.
(A uniquely named module, so that ``from faultkit import ...`` cannot pick up another
folder's conftest.)"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from cnnzoo.engine import load_checkpoint

HERE = Path(__file__).resolve().parent
VICTIM = HERE / "victim.py"

# LeNet-5 on scikit-learn's digits at 32x32: 11 steps per epoch, 3 epochs. Dropout and
# random crops make resuming depend on restored RNG states, Adam and the cosine schedule on
# restored optimizer and scheduler states. val/loss improves every epoch, so best.pt is
# written at every epoch (the kill points in it rely on that).
TINY = dict(
    model=dict(type="lenet5", num_classes=10, in_chans=1, drop_rate=0.2),
    data=dict(
        type="digits",
        download=False,
        val_split=0.1,
        image_size=32,
        num_workers=0,
        train=dict(batch_size=128, pipeline=[dict(type="RandomCrop", size=32, padding=2)]),
        val=dict(batch_size=256),
        test=dict(batch_size=512, tta_flip=False),
    ),
    optimizer=dict(type="Adam", lr=0.003, weight_decay=0.0),
    param_scheduler=dict(type="CosineAnnealingLR", min_lr=0.0, warmup_epochs=0),
    train_cfg=dict(max_epochs=3),
    checkpoint=dict(monitor="val/loss", mode="min"),
    deterministic=True,
    device="cpu",
    log=dict(interval=5, tensorboard=False),
)
STEPS_PER_EPOCH = 11
KILLED = -9  # returncode of a process ended by SIGKILL


def write_tiny_config(folder: Path, name: str = "tiny", **changes) -> Path:
    """The tiny config as a JSON file (``changes`` replace top-level keys)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({**TINY, **changes}, indent=1))
    return path


def child_env(cache: Path, fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNNZOO_")}
    env.update(CNNZOO_CACHE=str(cache), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    if fault:
        env["CNNZOO_TEST_FAULT"] = fault
    return env


def cnnzoo(args: list[str], cache: Path, fault: str | None = None, cwd: Path | None = None):
    """Run ``cnnzoo ARGS`` in a child process; with ``fault``, through victim.py."""
    cmd = [sys.executable, str(VICTIM)] if fault else [sys.executable, "-m", "cnnzoo"]
    return subprocess.run(
        cmd + args,
        env=child_env(cache, fault),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def popen_cnnzoo(args: list[str], cache: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnzoo", *args],
        env=child_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 240.0) -> bool:
    """Poll until ``predicate()`` holds (True) or the process ends first (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the training process")


def only_run(work: Path) -> Path:
    runs = [p for p in work.glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def epoch_of(run: Path) -> int | None:
    last = run / "checkpoints" / "last.pt"
    return load_checkpoint(last)["epoch"] if last.is_file() else None


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(f)]


def differences(a, b, path: str = "") -> list[str]:
    """Where two nested structures of dicts, lists, tensors and plain values differ (tensors
    compared with ``torch.equal``: same dtype, shape and bits)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
        return [] if same and torch.equal(a, b) else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path} keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{path} length {len(a)} vs {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}/{i}")
        ]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def assert_same_run(ref: Path, run: Path) -> None:
    """``run`` ended exactly as ``ref``: weights, optimizer and scheduler states, RNG states,
    history, metrics.csv and the test metrics, bit for bit; and left no temporary files."""
    for name in ("last.pt", "best.pt"):
        a, b = (load_checkpoint(r / "checkpoints" / name) for r in (ref, run))
        for row in a["history"] + b["history"]:
            row.pop("time", None)
        keys = (
            "model",
            "optimizer",
            "scheduler",
            "scaler",
            "rng",
            "history",
            "epoch",
            "global_step",
            "best",
            "config_hash",
        )
        diff = [d for k in keys for d in differences(a[k], b[k], k)]
        assert not diff, f"{name} differs: {diff[:5]}"
    assert _rows(ref) == _rows(run)
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (ref, run))
    for key in sa:
        if key.startswith("test/") or key in (
            "per_class_top1",
            "best_epoch",
            "best_value",
            "epochs",
        ):
            assert sa[key] == sb[key], key
    leftovers = [p.name for p in run.rglob("*") if ".tmp" in p.name]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def poisoned(build_data, epoch: int, step: int, value: float):
    """``build_data`` whose training batch ``step`` of ``epoch`` is multiplied by ``value``
    (NaN or Inf), so that the loss of that one step is not finite."""

    def build(*args, **kwargs):
        bundle = build_data(*args, **kwargs)
        batches = bundle.train
        real_iter = type(batches).__iter__

        class Poisoned(type(batches)):
            def __iter__(self):
                for i, (images, targets) in enumerate(real_iter(self), 1):
                    yield (images * value if (self.epoch, i) == (epoch, step) else images), targets

        batches.__class__ = Poisoned
        return bundle

    return build


def export_sidecar(size: int) -> dict:
    """The sidecar `cnnzoo export` writes for :func:`write_torchscript` (1 channel, 2 classes)."""
    from cnnzoo.export.core import SIDECAR_VERSION

    return dict(
        cnnzoo_export=SIDECAR_VERSION,
        format="torchscript",
        in_chans=1,
        image_size=[size, size],
        num_classes=2,
        class_names=["a", "b"],
        mean=[0.5],
        std=[0.25],
        model_name="lenet5",
    )


def write_torchscript(folder: Path, size: int) -> Path:
    """A real TorchScript file of one channel and two classes at ``size`` x ``size``."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(size * size, 2))
    path = folder / "model.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(2, 1, size, size)), str(path))
    return path
