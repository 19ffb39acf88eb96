"""Fixtures for the engine tests: a tiny in-memory data bundle and configs around it."""

from __future__ import annotations

import math
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


class FakeBatches:
    """A batch iterable like cnnzoo.data's: shuffling depends only on (seed, epoch)."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0
        self.num_samples = len(labels)
        self.poison: set[tuple[int, int]] = set()  # (epoch, step) whose images become NaN

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self):
        order = torch.arange(self.num_samples)
        if self.shuffle:
            order = torch.randperm(
                self.num_samples,
                generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch),
            )
        for step, i in enumerate(range(0, self.num_samples, self.batch_size), 1):
            idx = order[i : i + self.batch_size]
            x = self.images[idx].clone()
            if (self.epoch, step) in self.poison:
                x.fill_(float("nan"))
            yield x, self.labels[idx]


class FakeBundle:
    """Ten classes of 28x28 grey images: a bright 7x7 block at a place per class, plus noise."""

    def __init__(
        self, seed: int = 0, n_train: int = 48, n_eval: int = 40, classes: int = 10
    ) -> None:
        g = torch.Generator().manual_seed(1234)

        def make(n):
            y = torch.arange(n) % classes
            x = 0.3 * torch.randn(n, 1, 28, 28, generator=g)
            for c in range(classes):
                r, q = divmod(c, 4)
                x[y == c, :, r * 7 : (r + 1) * 7, q * 7 : (q + 1) * 7] += 1.0
            return x, y

        self.train = FakeBatches(*make(n_train), 16, True, seed)
        self.val = FakeBatches(*make(n_eval), 64, False, seed)
        self.test = FakeBatches(*make(n_eval), 64, False, seed)
        self.dataset, self.num_classes, self.in_chans = "fake", classes, 1
        self.image_size, self.class_names = (28, 28), [f"c{i}" for i in range(classes)]
        self.mean, self.std = (0.0,), (1.0,)


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
