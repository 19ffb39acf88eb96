"""The DataLoader path: the same batches as the device path, fetched by worker processes.

Use it for ImageFolders too large to hold decoded (files are then decoded lazily in the
workers) or when the device memory is short. Batch composition comes from the same
per-epoch plan as :class:`~cnnzoo.data.device_loader.DeviceBatches` and augmentation runs
on whole batches after collation with the same generator, so both paths yield identical
batches for the same (seed, epoch, rank).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from cnnzoo.data.batches import BatchIterable
from cnnzoo.data.images import load_image
from cnnzoo.errors import CnnzooError


class UInt8Dataset(Dataset):
    """Samples of an in-memory uint8 (N, C, H, W) tensor."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.images[i], self.labels[i]


class ImageFileDataset(Dataset):
    """Image files decoded on access, converted to ``in_chans`` and resized to ``image_size``
    exactly as the in-memory ImageFolder cache would hold them."""

    def __init__(
        self, paths: list[str], labels: Tensor, in_chans: int, image_size: tuple[int, int]
    ) -> None:
        self.paths, self.labels = paths, labels
        self.in_chans, self.image_size = in_chans, image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return load_image(self.paths[i], self.in_chans, self.image_size), self.labels[i]


def unwrapped(loader: Iterable) -> Iterator:
    """The batches of a DataLoader; an error of cnnzoo's raised in a worker process (an
    unreadable image) comes out with its own one-line message, not the worker's traceback
    that torch wraps it in."""
    try:
        yield from loader
    except CnnzooError as e:
        lines = str(e).strip().splitlines()
        if len(lines) < 2 or not lines[0].startswith("Caught "):
            raise
        prefix = f"{type(e).__module__}.{type(e).__qualname__}: "
        raise type(e)(lines[-1].removeprefix(prefix)) from None


class _PlanSampler(Sampler[list]):
    """Yields the batches of its owner's current epoch plan (read in the main process at the
    start of every epoch, so persistent workers follow ``set_epoch``); ``keyed``: as
    ``(epoch, index)`` pairs, for datasets whose samples draw their own random numbers.

    The owner is held by a weak reference: a cycle owner -> DataLoader -> sampler -> owner
    would leave the worker processes to the cycle collector, which tears them down badly."""

    def __init__(self, owner: BatchIterable, keyed: bool = False) -> None:
        self._owner = weakref.ref(owner)
        self._keyed = keyed

    def __iter__(self) -> Iterator[list]:
        owner = self._owner()
        for idx in owner.plan():
            yield [(owner.epoch, i) for i in idx.tolist()] if self._keyed else idx.tolist()

    def __len__(self) -> int:
        return len(self._owner())


class LoaderBatches(BatchIterable):
    """Batches fetched through a :class:`torch.utils.data.DataLoader` with ``num_workers``
    workers (persistent when > 0), pinned memory on CUDA, sharded like the device path.
    ``keyed``: the dataset takes ``(epoch, index)`` items (see :mod:`cnnzoo.data.stream`).
    ``collate_fn`` and ``decoder``: the workers send what ``collate_fn`` makes of a batch and
    ``decoder`` turns it into the uint8 images on the device (JPEGs decoded there)."""

    def __init__(
        self,
        dataset: Dataset,
        labels: Tensor,
        *,
        num_workers: int = 2,
        keyed: bool = False,
        collate_fn: Callable | None = None,
        decoder: Callable[[Any], Tensor] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(labels, **kwargs)
        self.dataset, self.decoder = dataset, decoder
        self._loader = DataLoader(
            dataset,
            batch_sampler=_PlanSampler(self, keyed),
            num_workers=num_workers,
            collate_fn=collate_fn,
            pin_memory=self.device.type == "cuda" and decoder is None,
            persistent_workers=num_workers > 0,
            # worker seeds from a private generator: drawing batches leaves torch's global
            # RNG (dropout, ...) alone, so a resumed run replays the same random numbers
            generator=torch.Generator(),
        )

    def fetch(self, plan):
        for images, labels in unwrapped(self._loader):
            if self.decoder is not None:
                images = self.decoder(images)
            yield (
                images.to(self.device, non_blocking=True),
                labels.to(self.device, non_blocking=True),
            )
