"""Fixtures for the engine tests: a tiny in-memory data bundle and configs around it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cnnzoo.engine.trainer as trainer
from cnnzoo.config import load_config

CONFIG = """
model = dict(type='lenet5', num_classes=10, in_chans=1, act='relu')
data = dict(type='digits', val_split=0.25, image_size=28, train=dict(batch_size=16, pipeline=[]),
            val=dict(batch_size=64), test=dict(batch_size=64, tta_flip=False))
optimizer = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4)
param_scheduler = dict(type='MultiStepLR', milestones=[2], gamma=0.5)
train_cfg = dict(max_epochs=3)
log = dict(interval=2, tensorboard=True)
"""


from fakes import FakeBatches, FakeBundle  # noqa: E402,F401


@pytest.fixture
def fake_data(monkeypatch):
    """Replace build_data in the trainer by the fake bundle; yields the list of built bundles."""
    built: list[FakeBundle] = []

    def build(cfg_data, *, device, seed, rank=0, world_size=1):
        built.append(FakeBundle(seed))
        return built[-1]

    monkeypatch.setattr(trainer, "build_data", build)
    return built


@pytest.fixture
def make_cfg(tmp_path: Path, monkeypatch):
    """A config for the tiny run, written as a file (so its stem names the runs) and loaded
    with ``load_config``; keyword arguments are --cfg-options."""
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(
        "OMP_NUM_THREADS", "1"
    )  # train() sets torch's threads from it; tiny models need one

    def make(name: str = "tiny", **options):
        path = tmp_path / f"{name}.py"
        path.write_text(CONFIG)
        options.setdefault("work_dir", str(tmp_path / "runs"))
        options.setdefault("device", "cpu")
        return load_config(path, options)

    threads = torch.get_num_threads()
    yield make
    torch.set_num_threads(threads)
