"""The one interface of every batch path: :class:`BatchIterable`, and the seeded generators.

A :class:`BatchIterable` decides, for an epoch, which samples each batch holds (a
permutation seeded by (seed, epoch), sliced per rank), fetches them as uint8, and finishes
each batch the same way whatever the source: to float on [0, 1], the training pipeline
(random numbers from a generator seeded by (seed, epoch, rank)), resize to the output size,
normalise. The paths differ only in how they fetch:
:class:`~cnnzoo.data.device_loader.DeviceBatches` indexes one uint8 tensor on the device,
:class:`~cnnzoo.data.loader.LoaderBatches` goes through DataLoader workers (the streaming
path too), :class:`~cnnzoo.data.shards.ShardBatches` reads tar shards; all give the same
batches for the same (seed, epoch, rank).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from cnnzoo.data.augment import Pipeline, resize_batch


def seeded_generator(*parts: int | str) -> torch.Generator:
    """A CPU generator whose seed is a hash of ``parts`` (e.g. seed, epoch, rank)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


class BatchIterable:
    """One split as batches of (images float32 (B, C, H, W) normalised on ``device``,
    targets int64 (B,) or soft float32 (B, K)).

    ``base_size``, when given, is the size every batch is resized to before augmentation
    (for images stored smaller than ``data.image_size`` to save memory).

    ``shuffle=True`` (training) permutes the split each epoch and applies ``pipeline``;
    with ``world_size > 1`` every rank takes an equal share of the same permutation, interleaved.
    Without shuffling the samples come in order, rank r taking samples r, r + world_size, ...
    ``len()`` is the number of batches per epoch on this rank; ``num_samples`` the samples.
    """

    def __init__(
        self,
        labels: Tensor,
        *,
        batch_size: int,
        device: torch.device,
        mean: Sequence[float],
        std: Sequence[float],
        out_size: tuple[int, int],
        base_size: tuple[int, int] | None = None,
        pipeline: Pipeline | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.labels = labels
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.out_size = tuple(out_size)
        self.base_size = base_size
        self.pipeline = pipeline
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        c = len(mean)
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, c, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffling and augmentation the next iteration replays."""
        self.epoch = int(epoch)

    @property
    def num_samples(self) -> int:
        n = len(self.labels)
        per_rank = (
            n // self.world_size if self.shuffle else len(range(self.rank, n, self.world_size))
        )
        if self.drop_last:
            return per_rank // self.batch_size * self.batch_size
        return per_rank

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def plan(self) -> list[Tensor]:
        """The index batches this rank draws in the current epoch."""
        n = len(self.labels)
        if self.shuffle:
            order = torch.randperm(n, generator=seeded_generator("perm", self.seed, self.epoch))
            # rank r takes every world_size-th sample from r: the ranks' k-th batches together
            # are the k-th batch of one process whose batch is world_size times larger
            order = order[: n // self.world_size * self.world_size][self.rank :: self.world_size]
        else:
            order = torch.arange(self.rank, n, self.world_size)
        order = order[: self.num_samples]
        return list(order.split(self.batch_size))

    def finish(self, images: Tensor, targets: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """uint8 batch on the device -> augmented (when training), resized, normalised float."""
        x = images.float().div_(255.0)
        if self.base_size is not None:
            x = resize_batch(x, self.base_size)
        if self.shuffle and self.pipeline is not None:
            x, targets = self.pipeline(x, targets, g)
        x = resize_batch(x, self.out_size)
        return x.sub_(self._mean).div_(self._std), targets

    def fetch(self, plan: list[Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
        """uint8 images and int64 labels of each planned batch, on the device."""
        raise TypeError(f"{type(self).__name__} must define fetch")

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        g = seeded_generator("augment", self.seed, self.epoch, self.rank)
        for images, targets in self.fetch(self.plan()):
            yield self.finish(images, targets, g)
