"""What a source hands on and every builder shares: splits, the bundle, the split helpers.

A reader (:mod:`cnnzoo.data.datasets`, :mod:`cnnzoo.data.imagefolder`) returns a
:class:`Source` of :class:`Split` s; :func:`~cnnzoo.data.build.build_data` (every batch path)
and :func:`~cnnzoo.data.from_datasets.from_datasets` hold out the validation split
(:func:`split_train_val`), draw the quick-trial subset (:func:`train_subset`), refuse a split
without a batch (:func:`no_batch`) and hand on a :class:`DataBundle`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from cnnzoo.data.batches import BatchIterable, seeded_generator
from cnnzoo.errors import ConfigError


@dataclass
class Split:
    """One split: uint8 images (N, C, H, W) and int64 labels (N,).

    For an ImageFolder too large to hold in memory, ``images`` is ``None`` and ``paths``
    lists the files, decoded on demand by the DataLoader path."""

    labels: Tensor
    images: Tensor | None = None
    paths: list[str] | None = None
    lazy_shape: tuple[int, int, int] | None = None  # (C, H, W) the lazy files decode to

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:]) if self.images is not None else self.lazy_shape

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx: Tensor) -> Split:
        paths = [self.paths[i] for i in idx.tolist()] if self.paths is not None else None
        images = self.images[idx] if self.images is not None else None
        return Split(self.labels[idx], images, paths, self.lazy_shape)


@dataclass
class Source:
    """What a reader returns: the train split, the test split, a val split when the dataset
    ships one, the class names, and a fingerprint of the files read (for caches)."""

    name: str
    train: Split
    test: Split | None
    class_names: list[str]
    fingerprint: str
    val: Split | None = None


@dataclass
class DataBundle:
    """The splits of one dataset as batch iterables, with what a model and a checkpoint
    need to know about them."""

    train: BatchIterable
    val: BatchIterable | None
    test: BatchIterable | None
    dataset: str
    num_classes: int
    in_chans: int
    image_size: tuple[int, int]
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    loader: str
    resize: int | None = None  # streamed: the shorter side evaluation images are resized to

    def meta(self) -> dict[str, Any]:
        """Plain-type description for checkpoints (``data_meta``) and ``predict``."""
        return dict(
            dataset=self.dataset,
            num_classes=self.num_classes,
            in_chans=self.in_chans,
            image_size=list(self.image_size),
            class_names=list(self.class_names),
            mean=list(self.mean),
            std=list(self.std),
        )


def split_train_val(train: Split, val_split: float, split_seed: int) -> tuple[Split, Split | None]:
    """Hold out ``val_split`` of ``train`` (a permutation seeded by ``split_seed``); both
    parts keep the original order."""
    n = len(train)
    n_val = int(round(val_split * n))
    if val_split > 0 and n_val == 0:
        n_val = 1
    if n_val == 0:
        return train, None
    if n_val >= n:
        raise ConfigError(f"data.val_split={val_split} leaves no training samples out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(split_seed)))
    return train.subset(perm[n_val:].sort().values), train.subset(perm[:n_val].sort().values)


def train_subset(train: Split, subset: float | int | None, split_seed: int) -> Split:
    """The part of ``train`` that quick trials train on: a fraction (a float in (0, 1]) or a
    number of images (an int), drawn by a permutation seeded by ``split_seed``, in the
    original order; ``None`` keeps all of it."""
    if subset is None:
        return train
    n = len(train)
    if isinstance(subset, bool) or not isinstance(subset, int | float):
        k = 0
    elif isinstance(subset, int):
        k = subset
    else:
        k = max(1, round(subset * n)) if 0 < subset <= 1 else 0
    if not 1 <= k <= n:
        raise ConfigError(
            f"data.train_subset must be a fraction in (0, 1] or a number of images from 1 to "
            f"{n} (the training split after the validation hold-out); got {subset!r}"
        )
    if k == n:
        return train
    perm = torch.randperm(n, generator=seeded_generator("train_subset", split_seed))
    return train.subset(perm[:k].sort().values)


def no_batch(part: str, n: int, batch_size: int, drop_last: bool, world_size: int) -> ConfigError:
    """The error for a split that would yield no batch at all (every epoch would be empty)."""
    if not drop_last:
        return ConfigError(f"data.{part} has no batch: {n} images for {world_size} processes")
    shards = f" shared by {world_size} processes" if world_size > 1 else ""
    return ConfigError(
        f"data.{part} has no batch: its {n} images{shards} are fewer than "
        f"data.{part}.batch_size={batch_size} and data.{part}.drop_last=True drops the "
        f"partial batch; lower the batch size or set drop_last=False"
    )


def stat_fingerprint(paths) -> str:
    """A hash of the paths, sizes and modification times of the files (for cache keys). A
    file that cannot be stat'ed (a symbolic link loop) counts as changed; reading it then
    reports it."""
    h = hashlib.sha1()
    for p in paths:
        try:
            st = os.stat(p)
            stamp = f"{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            stamp = "unreadable"
        h.update(os.fsencode(f"{os.path.abspath(p)}|{stamp}\n"))
    return h.hexdigest()[:16]
