"""``build_data``: from the ``data`` section of a config to train/val/test batch iterables.

The one entry for every source and every batch path. It picks the path and plans it:

- in memory (``data.loader`` 'device', 'dataloader' or 'auto'): read the dataset (uint8,
  converted and resized once) -> hold out a seeded validation split -> keep a seeded subset
  of the rest when ``train_subset`` asks (quick trials) -> per-channel statistics of the train
  split (cached) -> the training pipeline; batches on the device
  (:class:`~cnnzoo.data.device_loader.DeviceBatches`) or through DataLoader workers
  (:class:`~cnnzoo.data.loader.LoaderBatches`).
- streamed (``data.loader='stream'`` over an ImageFolder tree, or ``data.format='shards'``):
  list the files (or read the shards' index) -> the same hold-out and subset -> the pipeline
  split into the per-sample crop the workers cut and the batch ops
  (:mod:`cnnzoo.data.stream`, :mod:`cnnzoo.data.shards`).

Either plan then becomes one :class:`~cnnzoo.data.batches.BatchIterable` per split, built
the same way (one ``make``), and a :class:`~cnnzoo.data.splits.DataBundle`.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from cnnzoo.data.augment import AugContext, Pipeline, build_pipeline
from cnnzoo.data.batches import BatchIterable
from cnnzoo.data.datasets import FOLDER_TYPES, READERS, dataset_root, read_dataset
from cnnzoo.data.device_loader import DeviceBatches
from cnnzoo.data.imagefolder import check_imagenet_classes, list_imagefolder
from cnnzoo.data.images import CenterCrop, as_size, resize_uint8
from cnnzoo.data.loader import ImageFileDataset, LoaderBatches, UInt8Dataset, unwrapped
from cnnzoo.data.shards import SETTINGS, ShardBatches, ShardIndex, read_shard_index
from cnnzoo.data.splits import (
    DataBundle,
    Source,
    Split,
    no_batch,
    split_train_val,
    train_subset,
)
from cnnzoo.data.stats import ChannelStats, cached_channel_stats, channel_stats, chunks
from cnnzoo.data.stream import (
    DeviceDecoder,
    StreamDataset,
    collate_pending,
    decode_on_device,
    split_pipeline,
)
from cnnzoo.errors import ConfigError, DataError, unknown
from cnnzoo.machine import cache_dir
from cnnzoo.schema import complete_data

DEVICE_LIMIT_BYTES = 2 * 1024**3  # 'auto' keeps datasets below this on the device
EVAL_RESIZE_RATIO = 256 / 224  # the ImageNet convention: resize 256, centre crop 224


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


@dataclass
class _Plan:
    """A batch path, planned: what every split's :class:`BatchIterable` shares, and how to
    build one (``batches(part, kw)``, ``kw`` the arguments every path takes; ``count(part)``:
    the split's images, for the error when it yields no batch)."""

    name: str
    class_names: list[str]
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pipeline: Pipeline  # the training ops run on whole batches
    train_size: tuple[int, int]  # the size of a training batch
    eval_size: tuple[int, int]  # the size of an evaluation batch: the bundle's image_size
    loader: str
    parts: tuple[str, ...]
    batches: Callable[[str, dict[str, Any]], BatchIterable]
    count: Callable[[str], int]
    base_size: tuple[int, int] | None = None
    resize: int | None = None


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
    if not isinstance(world_size, int) or world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} / world_size {world_size} is not a valid shard")
    device = torch.device(device)
    streamed = cfg["loader"] == "stream" or cfg["format"] == "shards"
    plan = _streamed(cfg, device) if streamed else _in_memory(cfg)

    def make(part: str) -> BatchIterable | None:
        if part not in plan.parts:
            return None
        training = part == "train"
        part_cfg = cfg[part]
        batch_size = part_cfg["batch_size"]
        kw = dict(
            batch_size=batch_size,
            device=device,
            mean=plan.mean,
            std=plan.std,
            out_size=plan.train_size if training else plan.eval_size,
            base_size=plan.base_size,
            pipeline=plan.pipeline if training else None,
            shuffle=training,
            drop_last=part_cfg["drop_last"],
            seed=seed,
            rank=rank,
            world_size=world_size,
        )
        batches = plan.batches(part, kw)
        if len(batches) == 0:
            raise no_batch(part, plan.count(part), batch_size, kw["drop_last"], world_size)
        return batches

    return DataBundle(
        train=make("train"),
        val=make("val"),
        test=make("test"),
        dataset=str(plan.name),
        num_classes=len(plan.class_names),
        in_chans=plan.in_chans,
        image_size=tuple(plan.eval_size),
        class_names=list(plan.class_names),
        mean=plan.mean,
        std=plan.std,
        loader=plan.loader,
        resize=plan.resize,
    )


def _in_memory(cfg: dict[str, Any]) -> _Plan:
    """The plan of the in-memory paths: the dataset read (and cached) as uint8 tensors, or an
    ImageFolder too large for that as its file paths, batched on the device or by DataLoader
    workers."""
    name, loader = cfg["type"], cfg["loader"]
    in_chans = cfg["in_chans"]
    size = as_size(cfg["image_size"])
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
    splits = {k: s for k, s in splits.items() if s is not None}

    def batches_of(part: str, kw: dict[str, Any]) -> BatchIterable:
        split = splits[part]
        if loader == "device":
            batches = DeviceBatches(split.images, split.labels, **kw)
        else:
            if split.images is not None:
                ds = UInt8Dataset(split.images, split.labels)
            else:
                ds = ImageFileDataset(split.paths, split.labels, chans, stored)
            workers = cfg["num_workers"]
            batches = LoaderBatches(ds, split.labels, num_workers=workers, **kw)
        return batches

    return _Plan(
        name=name,
        class_names=src.class_names,
        in_chans=chans,
        mean=mean,
        std=std,
        pipeline=pipeline,
        train_size=out_size,
        eval_size=out_size,
        loader=loader,
        parts=tuple(splits),
        batches=batches_of,
        count=lambda part: len(splits[part]),
        base_size=batch_resize,
    )


def _streamed(cfg: dict[str, Any], device: torch.device) -> _Plan:
    """The plan of the streaming paths (``data.loader='stream'``, ``data.format='shards'``):
    full-resolution images decoded per sample by DataLoader workers, cut by the pipeline's
    leading crop there, the rest of the pipeline run on the batch."""
    shards = cfg["format"] == "shards"
    if shards:
        cfg, index = _with_shard_settings(cfg)
    name = cfg["type"]
    if name not in FOLDER_TYPES:
        raise ConfigError(
            f"data.loader='stream' reads image files: data.type must be imagefolder or "
            f"imagenet, got {name!r}"
        )
    size, resize, in_chans, mean, std = _stream_settings(cfg)
    root = dataset_root(name, cfg["root"], cfg["folder"])
    train_cfg = cfg["train"]
    if any(op["type"] == "PCAColor" for op in train_cfg["pipeline"]):
        raise ConfigError(
            "PCAColor needs the colour statistics of the whole training set, which the "
            "streaming path does not compute; drop it or use data.loader='dataloader'"
        )

    if shards:
        class_names, parts = index.classes, dict(index.splits)
        if "val" not in parts and cfg["val_split"] > 0:
            warnings.warn(
                f"the shards in {root} hold no val split, and shards cannot hold one out of "
                f"the training images as data.val_split={cfg['val_split']} asks: training "
                f"without validation (write the shards with `cnnzoo shards FOLDER OUT "
                f"--val-split F` to validate)",
                stacklevel=3,
            )
        if cfg["train_subset"] is not None:
            raise ConfigError(
                "data.train_subset draws images out of the training split, which shards (read "
                "front to back) cannot do: write shards of the subset, or drop data.train_subset"
            )
    else:
        class_names, listing = list_imagefolder(root)
        parts = {
            k: Split(torch.tensor(y, dtype=torch.int64), paths=[str(p) for p in ps])
            for k, (ps, y) in listing.items()
        }
        if "val" not in parts:
            train, val = split_train_val(
                parts["train"],
                float(cfg["val_split"]),
                cfg["split_seed"],
            )
            parts["train"] = train
            if val is not None:
                parts["val"] = val
        # after the hold-out, as on the other paths: a trial validates on the full run's images
        parts["train"] = train_subset(parts["train"], cfg["train_subset"], cfg["split_seed"])
    if name == "imagenet":
        check_imagenet_classes(class_names, root)
    eval_crop = CenterCrop(resize, size)
    pipeline = build_pipeline(train_cfg["pipeline"], AugContext(len(class_names), mean))
    train_crop, rest = split_pipeline(pipeline, eval_crop)
    workers = cfg["num_workers"]
    defer = decode_on_device(cfg)

    def batches_of(part: str, kw: dict[str, Any]) -> BatchIterable:
        crop = train_crop if part == "train" else eval_crop
        decoder = DeviceDecoder(crop, in_chans, device) if defer else None
        if shards:
            batches = ShardBatches(
                index,
                part,
                in_chans=in_chans,
                transform=crop,
                num_workers=workers,
                decoder=decoder,
                **kw,
            )
        else:
            split = parts[part]
            ds = StreamDataset(
                split.paths,
                split.labels,
                in_chans=in_chans,
                transform=crop,
                seed=kw["seed"],
                defer=defer,
            )
            batches = LoaderBatches(
                ds,
                split.labels,
                num_workers=workers,
                keyed=True,
                decoder=decoder,
                collate_fn=collate_pending if defer else None,
                **kw,
            )
        return batches

    def count(part: str) -> int:
        return index.num_samples(part) if shards else len(parts[part])

    return _Plan(
        name=name,
        class_names=class_names,
        in_chans=in_chans,
        mean=mean,
        std=std,
        pipeline=rest,
        train_size=rest.out_size(train_crop.size),
        eval_size=size,
        loader="shards" if shards else "stream",
        parts=tuple(p for p in ("train", "val", "test") if p in parts),
        batches=batches_of,
        count=count,
        resize=resize,
    )


def _stream_settings(cfg: Mapping[str, Any]) -> tuple[tuple[int, int], int, int, tuple, tuple]:
    """(image_size, resize, in_chans, mean, std) of the streaming path, checked."""
    size = as_size(cfg["image_size"])
    if size is None:
        raise ConfigError(
            "the streaming path needs data.image_size (the crop size; 224 for ImageNet)"
        )
    resize = cfg["resize"] or round(max(size) * EVAL_RESIZE_RATIO)
    if resize < max(size):
        raise ConfigError(
            f"data.resize={resize} is smaller than data.image_size={size[0]}x{size[1]}: the "
            f"evaluation crop would not fit; use at least {max(size)} (256 for 224 crops)"
        )
    in_chans = cfg["in_chans"] or 3
    mean, std = cfg["mean"], cfg["std"]
    if mean is None or std is None:
        raise ConfigError(
            "the streaming path does not pass over the data to compute data.mean/std: set both "
            "(ImageNet's: mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))"
        )
    if len(mean) != in_chans or len(std) != in_chans:
        raise ConfigError(
            f"data.mean/std need {in_chans} values (one per channel), got {len(mean)}/{len(std)}"
        )
    if cfg["skip_bad"]:
        raise ConfigError(
            "data.skip_bad is not available on the streaming path (images are checked as they "
            "are decoded, and the error names the file): remove the bad files or use "
            "data.loader='dataloader'"
        )
    return (
        size,
        int(resize),
        in_chans,
        tuple(map(float, mean)),
        tuple(max(float(s), 1e-6) for s in std),
    )


def _with_shard_settings(cfg: Mapping[str, Any]) -> tuple[dict[str, Any], ShardIndex]:
    """``cfg`` for ``data.format='shards'`` completed from the shards' index, and the index.
    The data set is the image files the shards hold (an ImageNet config keeps its class
    check; any other type reads them as an ImageFolder), and the image_size, in_chans, mean
    and std the config leaves unset are those the writer recorded. Whatever is still missing
    or conflicting is one :class:`ConfigError` that lists all of it. Shards are always
    streamed by worker processes: ``data.loader='dataloader'`` (a folder config's) reads
    them so too; ``'device'`` (the whole data set held on the device) is refused."""
    cfg = dict(cfg)
    if cfg["type"] != "imagenet":
        cfg["type"] = "imagefolder"
    root = dataset_root(cfg["type"], cfg["root"], cfg["folder"])
    index = read_shard_index(root)
    for key in SETTINGS:
        if cfg.get(key) is None and key in index.data:
            cfg[key] = index.data[key]
    problems = []
    if cfg["loader"] == "device":  # 'dataloader': worker processes read them, as streamed
        problems.append("data.loader='stream' or 'auto' (shards are always streamed)")
    if cfg["image_size"] is None:
        problems.append("data.image_size (the crop size, e.g. 224)")
    if cfg["mean"] is None or cfg["std"] is None:
        problems.append("data.mean and data.std (one value per channel)")
    if problems:
        needs = f"training on the shards in {root} needs {'; '.join(problems)}"
        if not index.data:
            needs += (
                ", which their index does not record (written by an earlier cnnzoo): set them "
                "with --cfg-options, or write the shards again with `cnnzoo shards`"
            )
        raise ConfigError(needs)
    return cfg, index


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
