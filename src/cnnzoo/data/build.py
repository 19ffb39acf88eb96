"""``build_data``: from the ``data`` section of a config to train/val/test batch iterables.

Read the dataset (uint8, converted and resized once) -> hold out a seeded validation split
-> keep a seeded subset of the rest when ``train_subset`` asks (quick trials) -> per-channel
statistics of the train split (cached) -> the training pipeline -> one
:class:`~cnnzoo.data.batches.BatchIterable` per split, on the device path or the
DataLoader path.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from cnnzoo.data.augment import AugContext, build_pipeline
from cnnzoo.data.batches import BatchIterable
from cnnzoo.data.datasets import FOLDER_TYPES, READERS, dataset_root, read_dataset
from cnnzoo.data.device_loader import DeviceBatches
from cnnzoo.data.images import as_size, resize_uint8
from cnnzoo.data.loader import ImageFileDataset, LoaderBatches, UInt8Dataset, unwrapped
from cnnzoo.data.splits import (
    DataBundle,
    Source,
    Split,
    no_batch,
    split_train_val,
    train_subset,
)
from cnnzoo.data.stats import ChannelStats, cached_channel_stats, channel_stats, chunks
from cnnzoo.errors import ConfigError, DataError, unknown
from cnnzoo.machine import cache_dir
from cnnzoo.schema import complete_data

DEVICE_LIMIT_BYTES = 2 * 1024**3  # 'auto' keeps datasets below this on the device


def _stats(
    src: Source, train: Split, cfg: Mapping[str, Any], in_chans: int, size: tuple[int, int]
) -> ChannelStats:
    key = hashlib.sha1(
        f"{src.fingerprint}|{len(train)}|{cfg['val_split']}|{cfg['split_seed']}|{in_chans}|{size}".encode()
    ).hexdigest()[:16]
    cache_file = cache_dir() / "stats" / f"{src.name}-{in_chans}x{size[0]}x{size[1]}-{key}.json"
    if train.images is not None:
        return cached_channel_stats(
            lambda: channel_stats(resize_uint8(c, size) for c in chunks(train.images, 512)),
            cache_file,
        )
    ds = ImageFileDataset(train.paths, train.labels, in_chans, size)
    loader = DataLoader(ds, batch_size=256, num_workers=cfg["num_workers"])
    return cached_channel_stats(lambda: channel_stats(b for b, _ in unwrapped(loader)), cache_file)


def build_data(
    cfg_data: Mapping[str, Any],
    *,
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataBundle:
    """Build the train/val/test batch iterables described by a config's ``data`` dict (see
    ``configs/_base_/datasets/``). Shuffling and augmentation depend only on (``seed``,
    epoch, ``rank``); with ``world_size > 1`` each rank gets its shard. ``cfg_data`` is a
    validated data section (:func:`cnnzoo.config.load_config`); keys it leaves out take the
    schema's defaults (:data:`cnnzoo.schema.DATA`)."""
    cfg = complete_data(copy.deepcopy(dict(cfg_data)))
    name = cfg["type"]
    if name not in READERS:
        raise unknown("dataset", str(name), READERS)
    loader = cfg["loader"]
    if loader == "stream" or cfg["format"] == "shards":
        from cnnzoo.data.stream import build_stream

        return build_stream(cfg, device=device, seed=seed, rank=rank, world_size=world_size)
    in_chans = cfg["in_chans"]
    if not isinstance(world_size, int) or world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} / world_size {world_size} is not a valid shard")
    size = as_size(cfg["image_size"])
    device = torch.device(device)

    folder = name in FOLDER_TYPES
    root = dataset_root(name, cfg["root"], cfg["folder"])
    src = read_dataset(
        name,
        root,
        download=cfg["download"],
        in_chans=in_chans,
        image_size=size if folder else None,
        skip_bad=cfg["skip_bad"],
        max_bytes=None if loader == "device" else DEVICE_LIMIT_BYTES,
    )
    for part in ("train", "val", "test"):
        split = getattr(src, part)
        if split is not None and len(split) == 0:
            raise DataError(
                f"the {part} split of {name} is empty (0 images); check its files under {root}"
            )
    # Tensor datasets are resized once, in memory, unless that would make them too large
    # (CIFAR at 224x224 is 9 GB): then they stay at their native size and every batch is
    # resized as it is drawn.
    batch_resize = None
    if not folder and size is not None:
        present = [s for s in (src.train, src.val, src.test) if s is not None]
        c = src.train.shape[0]
        if sum(len(s) for s in present) * c * size[0] * size[1] <= DEVICE_LIMIT_BYTES:
            for s in present:
                s.images = resize_uint8(s.images, size)
        else:
            batch_resize = size
    train, val = src.train, src.val
    if val is None:
        train, val = split_train_val(train, float(cfg["val_split"]), cfg["split_seed"])
    # after the hold-out, so that a trial validates on the same images as the full run; the
    # statistics below are the subset's (their cache key holds its size)
    train = train_subset(train, cfg["train_subset"], cfg["split_seed"])
    lazy = train.images is None
    chans = train.shape[0]
    stored = batch_resize or tuple(train.shape[1:])
    splits = {"train": train, "val": val, "test": src.test}
    if loader == "auto":
        nbytes = sum(
            s.images.numel() for s in splits.values() if s is not None and s.images is not None
        )
        loader = "dataloader" if lazy or nbytes > DEVICE_LIMIT_BYTES else "device"
    if loader == "device" and lazy:
        loader = "dataloader"

    train_cfg = cfg["train"]
    ops = [op["type"] for op in train_cfg["pipeline"]]
    cfg_mean, cfg_std = cfg["mean"], cfg["std"]
    needed = cfg_mean is None or cfg_std is None or "PCAColor" in ops
    stats = _stats(src, train, cfg, chans, stored) if needed else None
    mean = tuple(float(v) for v in (stats.mean if cfg_mean is None else cfg_mean))
    std = tuple(max(float(v), 1e-6) for v in (stats.std if cfg_std is None else cfg_std))
    if len(mean) != chans or len(std) != chans:
        raise ConfigError(
            f"data.mean/std need {chans} values (one per channel), got {len(mean)}/{len(std)}"
        )
    eigvals, eigvecs = stats.eig() if stats is not None else (None, None)
    ctx = AugContext(len(src.class_names), mean, eigvals, eigvecs)
    pipeline = build_pipeline(train_cfg["pipeline"], ctx)
    out_size = pipeline.out_size(stored)
    shift = cfg["test"]["tta_translate"]
    if shift >= min(out_size):  # the config checks sizes it knows; an ImageFolder's shows here
        raise ConfigError(
            f"data.test.tta_translate={shift} must be smaller than the images "
            f"({out_size[0]}x{out_size[1]}); airbench uses 2 pixels at 32x32"
        )

    def make(split: Split | None, part: str) -> BatchIterable | None:
        if split is None:
            return None
        part_cfg = cfg[part]
        batch_size = part_cfg["batch_size"]
        kw = dict(
            batch_size=batch_size,
            device=device,
            mean=mean,
            std=std,
            out_size=out_size,
            base_size=batch_resize,
            pipeline=pipeline if part == "train" else None,
            shuffle=part == "train",
            drop_last=part_cfg["drop_last"],
            seed=seed,
            rank=rank,
            world_size=world_size,
        )
        if loader == "device":
            batches = DeviceBatches(split.images, split.labels, **kw)
        else:
            if split.images is not None:
                ds = UInt8Dataset(split.images, split.labels)
            else:
                ds = ImageFileDataset(split.paths, split.labels, chans, stored)
            workers = cfg["num_workers"]
            batches = LoaderBatches(ds, split.labels, num_workers=workers, **kw)
        if len(batches) == 0:
            raise no_batch(part, len(split), batch_size, kw["drop_last"], world_size)
        return batches

    return DataBundle(
        train=make(train, "train"),
        val=make(val, "val"),
        test=make(src.test, "test"),
        dataset=name,
        num_classes=len(src.class_names),
        in_chans=chans,
        image_size=tuple(out_size),
        class_names=list(src.class_names),
        mean=mean,
        std=std,
        loader=loader,
    )


def describe(bundle: DataBundle) -> str:
    """One line about the data, for logs."""
    parts = [
        f"{bundle.dataset}: {bundle.num_classes} classes, {bundle.in_chans}x{bundle.image_size[0]}x{bundle.image_size[1]}"
    ]
    for name in ("train", "val", "test"):
        it = getattr(bundle, name)
        if it is not None:
            parts.append(f"{name} {it.num_samples}")
    parts.append(f"loader={bundle.loader}")
    return ", ".join(parts)


__all__ = ["build_data", "describe"]
