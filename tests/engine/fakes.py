"""A tiny in-memory stand-in for cnnzoo.data's bundle, for engine tests."""

from __future__ import annotations

import math

import torch


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
