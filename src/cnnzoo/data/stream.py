"""The streaming data path: full-resolution images decoded per sample in DataLoader workers.

``data.loader='stream'`` (an ImageFolder tree) and ``data.format='shards'`` (tar shards, see
:mod:`cnnzoo.data.shards`) take it. It is for image sets too large to hold decoded (ImageNet:
1.28M JPEGs of about 400x350), and it trains with the standard ImageNet transforms:

- training: the pipeline's leading ``RandomResizedCrop`` (Szegedy et al. 2015), and the
  ``RandomHorizontalFlip`` right after it, are applied per sample in the worker to the
  full-resolution image; the rest of the pipeline (Mixup, CutMix, Cutout, ...) runs on the
  batch as on the other paths. A pipeline that does not start with a RandomResizedCrop gets the
  evaluation transform in the worker and then all its ops on the batch.
- evaluation: the shorter side resized to ``data.resize`` (default ``256/224 * image_size``),
  then the centre ``data.image_size`` crop.

A worker reads a file, checks its header with PIL (a decompression bomb is refused as on the
other paths), decodes it (torchvision's libjpeg-turbo decoder for JPEGs, PIL for the rest) and
sends a uint8 crop; the batch becomes float, is augmented and normalised on the device. The
random numbers of a sample come from a generator seeded by (seed, epoch, sample), so its crop
depends neither on the worker that decodes it, nor on the number of workers or processes, nor
on timing: a resumed epoch replays exactly. Memory stays bounded by workers x prefetch x batch
(plus the shuffle buffer of shards) whatever the number of images.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg  # imported before the workers fork

from cnnzoo.data.augment import (
    AugContext,
    Pipeline,
    RandomHorizontalFlip,
    RandomResizedCrop,
    build_pipeline,
)
from cnnzoo.data.build import DataBundle, _no_batch, split_train_val, train_subset
from cnnzoo.data.datasets import (
    Split,
    check_imagenet_classes,
    dataset_root,
    list_imagefolder,
)
from cnnzoo.data.device_loader import BatchIterable, seeded_generator
from cnnzoo.data.images import as_size, decode_image, open_image
from cnnzoo.data.loader import LoaderBatches
from cnnzoo.errors import ConfigError, DataError

MAX_FILE_BYTES = 1 << 28  # an image file larger than 256 MiB is refused unread
EVAL_RESIZE_RATIO = 256 / 224  # the ImageNet convention: resize 256, centre crop 224


def read_file(path: str | os.PathLike) -> bytearray:
    """The bytes of an image file; a missing, unreadable or huge file raises
    :class:`DataError` naming it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise DataError(
                    f"image file {path} is {size:,} bytes, more than any image this reads "
                    f"({MAX_FILE_BYTES:,}); delete or replace it"
                )
            data = bytearray(size)
            del data[f.readinto(data) :]
    except FileNotFoundError:
        raise DataError(f"image file {path} does not exist; check the path") from None
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror or e}") from None
    return data


def decode_full(data: bytearray, name: str, in_chans: int) -> Tensor:
    """uint8 (``in_chans``, H, W) at full resolution from an image file's bytes ``data``
    (``name`` names it in errors). PIL reads the header first and refuses decompression bombs;
    RGB and grey JPEGs are then decoded by torchvision (libjpeg-turbo, no PIL image in between),
    everything else by PIL exactly as the other paths decode it."""
    with open_image(Path(name), data) as img:
        jpeg = img.format == "JPEG" and img.mode in ("RGB", "L")
    if jpeg:
        mode = ImageReadMode.RGB if in_chans == 3 else ImageReadMode.GRAY
        try:
            with warnings.catch_warnings():  # torchvision 0.29 points image decoding to TorchCodec
                warnings.simplefilter("ignore", DeprecationWarning)
                return decode_jpeg(torch.frombuffer(data, dtype=torch.uint8), mode=mode)
        except RuntimeError:
            pass  # PIL decodes it again and names what is wrong with it
    return decode_image(name, in_chans, data=data)


def _resize(img: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, antialiased resize of one uint8 (C, H, W) image (torch's uint8 kernel)."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    return F.interpolate(img[None], size=size, mode="bilinear", antialias=True)[0]


class TrainCrop:
    """The per-sample Inception crop (Szegedy et al. 2015): a box covering ``scale`` of the
    full image with aspect ratio in ``ratio`` (torchvision's rule, shared with the batch op
    :class:`RandomResizedCrop`), resized to ``size``; then mirrored with probability ``flip``."""

    def __init__(self, crop: RandomResizedCrop, flip: float = 0.0) -> None:
        self.crop, self.flip = crop, flip
        self.size = crop.size

    def box(self, H: int, W: int, g: torch.Generator) -> tuple[int, int, int, int]:
        """(top, left, h, w): :meth:`RandomResizedCrop.boxes` for one image, the same random
        numbers drawn in the same order, in Python floats (a tenth of the time for one box)."""
        (lo, hi), (r0, r1) = self.crop.scale, self.crop.ratio
        u_area, u_ratio = (torch.rand(10, generator=g, dtype=torch.float64).tolist() for _ in "ar")
        u_top = float(torch.rand(1, generator=g, dtype=torch.float64))
        u_left = float(torch.rand(1, generator=g, dtype=torch.float64))
        for a, r in zip(u_area, u_ratio, strict=True):
            area = H * W * (lo + (hi - lo) * a)
            ar = math.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * r)
            w, h = round(math.sqrt(area * ar)), round(math.sqrt(area / ar))
            if 1 <= w <= W and 1 <= h <= H:
                return math.floor(u_top * (H - h + 1)), math.floor(u_left * (W - w + 1)), h, w
        if W / H < r0:  # no try fitted: the centre crop of the nearest allowed ratio
            w, h = W, round(W / r0)
        elif W / H > r1:
            w, h = round(H * r1), H
        else:
            w, h = W, H
        return (H - h) // 2, (W - w) // 2, h, w

    def __call__(self, img: Tensor, g: torch.Generator) -> Tensor:
        top, left, h, w = self.box(img.shape[1], img.shape[2], g)
        out = _resize(img[:, top : top + h, left : left + w], self.size)
        if self.flip and float(torch.rand(1, generator=g)) < self.flip:
            out = out.flip(-1)
        return out.contiguous()


class CenterCrop:
    """The standard evaluation transform: the shorter side resized to ``resize`` (the longer in
    proportion, as torchvision's ``Resize(int)``), then the centre ``size`` window."""

    def __init__(self, resize: int, size: tuple[int, int]) -> None:
        self.resize, self.size = resize, size

    def __call__(self, img: Tensor, g: torch.Generator | None = None) -> Tensor:
        _, h, w = img.shape
        r = self.resize
        h, w = (r, int(r * w / h)) if h <= w else (int(r * h / w), r)
        img = _resize(img, (h, w))
        ch, cw = self.size
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        return img[:, top : top + ch, left : left + cw].contiguous()


def split_pipeline(
    pipeline: Pipeline, eval_crop: CenterCrop
) -> tuple[TrainCrop | CenterCrop, Pipeline]:
    """(what the workers do to each training image, the ops left for the batch): a leading
    RandomResizedCrop and the flip right after it go to the workers."""
    ops = pipeline.ops
    if not ops or not isinstance(ops[0], RandomResizedCrop):
        return eval_crop, pipeline
    if len(ops) > 1 and isinstance(ops[1], RandomHorizontalFlip):
        return TrainCrop(ops[0], ops[1].p), Pipeline(ops[2:])
    return TrainCrop(ops[0]), Pipeline(ops[1:])


def sample_generator(seed: int, epoch: int, key: int | str) -> torch.Generator:
    """The generator of one sample's random numbers in one epoch."""
    return seeded_generator("sample", seed, epoch, key)


class StreamDataset(Dataset):
    """Image files decoded at full resolution on access and cut by ``transform``; the item
    ``(epoch, i)`` is sample i with that epoch's random numbers."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        labels: Tensor,
        *,
        in_chans: int,
        transform: TrainCrop | CenterCrop,
        seed: int,
    ) -> None:
        self.paths, self.labels = [str(p) for p in paths], labels
        self.in_chans, self.transform, self.seed = in_chans, transform, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: tuple[int, int]) -> tuple[Tensor, Tensor]:
        epoch, i = item
        img = decode_full(read_file(self.paths[i]), self.paths[i], self.in_chans)
        return self.transform(img, sample_generator(self.seed, epoch, i)), self.labels[i]


def eval_resize(cfg: Mapping[str, Any]) -> int:
    """The shorter side evaluation images are resized to before the centre crop (checked)."""
    return _settings(cfg)[1]


def _settings(cfg: Mapping[str, Any]) -> tuple[tuple[int, int], int, int, tuple, tuple]:
    """(image_size, resize, in_chans, mean, std) of the streaming path, checked."""
    size = as_size(cfg.get("image_size"))
    if size is None:
        raise ConfigError(
            "the streaming path needs data.image_size (the crop size; 224 for ImageNet)"
        )
    resize = cfg.get("resize") or round(max(size) * EVAL_RESIZE_RATIO)
    if resize < max(size):
        raise ConfigError(
            f"data.resize={resize} is smaller than data.image_size={size[0]}x{size[1]}: the "
            f"evaluation crop would not fit; use at least {max(size)} (256 for 224 crops)"
        )
    in_chans = cfg.get("in_chans") or 3
    mean, std = cfg.get("mean"), cfg.get("std")
    if mean is None or std is None:
        raise ConfigError(
            "the streaming path does not pass over the data to compute data.mean/std: set both "
            "(ImageNet's: mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))"
        )
    if len(mean) != in_chans or len(std) != in_chans:
        raise ConfigError(
            f"data.mean/std need {in_chans} values (one per channel), got {len(mean)}/{len(std)}"
        )
    if cfg.get("skip_bad"):
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


def build_stream(
    cfg: Mapping[str, Any],
    *,
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataBundle:
    """:func:`~cnnzoo.data.build_data` for ``data.loader='stream'`` or ``data.format='shards'``."""
    from cnnzoo.data.shards import ShardBatches, read_shard_index

    name = cfg.get("type")
    shards = (cfg.get("format") or "folder") == "shards"
    if name not in ("imagefolder", "imagenet"):
        what = "data.format='shards'" if shards else "data.loader='stream'"
        raise ConfigError(
            f"{what} reads image files: data.type must be imagefolder or imagenet, got {name!r}"
        )
    if shards and (cfg.get("loader") or "auto") not in ("auto", "stream"):
        raise ConfigError(
            f"shards are always streamed: data.format='shards' takes data.loader='stream' "
            f"(or 'auto'), got {cfg.get('loader')!r}"
        )
    size, resize, in_chans, mean, std = _settings(cfg)
    device = torch.device(device)
    root = dataset_root(name, cfg.get("root"), cfg.get("folder"))
    train_cfg = dict(cfg.get("train") or {})
    if any(
        isinstance(op, Mapping) and op.get("type") == "PCAColor"
        for op in train_cfg.get("pipeline") or ()
    ):
        raise ConfigError(
            "PCAColor needs the colour statistics of the whole training set, which the "
            "streaming path does not compute; drop it or use data.loader='dataloader'"
        )

    if shards:
        index = read_shard_index(root)
        class_names, parts = index.classes, dict(index.splits)
        if "val" not in parts and float(cfg.get("val_split", 0.0) or 0.0) > 0:
            raise ConfigError(
                f"the shards in {root} hold no val split and data.val_split holds one out of "
                f"the training images, which shards cannot do: write them with "
                f"`cnnzoo shards FOLDER OUT --val-split F`, or set data.val_split=0"
            )
        if cfg.get("train_subset") is not None:
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
                float(cfg.get("val_split", 0.0) or 0.0),
                int(cfg.get("split_seed", 0)),
            )
            parts["train"] = train
            if val is not None:
                parts["val"] = val
        # after the hold-out, as on the other paths: a trial validates on the full run's images
        parts["train"] = train_subset(
            parts["train"], cfg.get("train_subset"), int(cfg.get("split_seed", 0))
        )
    if name == "imagenet":
        check_imagenet_classes(class_names, root)
    eval_crop = CenterCrop(resize, size)
    pipeline = build_pipeline(train_cfg.get("pipeline"), AugContext(len(class_names), mean))
    train_crop, rest = split_pipeline(pipeline, eval_crop)
    workers = int(cfg.get("num_workers", 2) or 0)

    def make(part: str) -> BatchIterable | None:
        if part not in parts:
            return None
        training = part == "train"
        part_cfg = dict(cfg.get(part) or {})
        batch_size = int(part_cfg.get("batch_size", 128 if training else 512))
        if batch_size < 1:
            raise ConfigError(f"data.{part}.batch_size must be positive, got {batch_size}")
        crop = train_crop if training else eval_crop
        kw = dict(
            batch_size=batch_size,
            device=device,
            mean=mean,
            std=std,
            out_size=rest.out_size(crop.size) if training else size,
            pipeline=rest if training else None,
            shuffle=training,
            drop_last=bool(part_cfg.get("drop_last", False)),
            seed=seed,
            rank=rank,
            world_size=world_size,
        )
        if shards:
            batches = ShardBatches(
                index, part, in_chans=in_chans, transform=crop, num_workers=workers, **kw
            )
            n = index.num_samples(part)
        else:
            split = parts[part]
            ds = StreamDataset(
                split.paths, split.labels, in_chans=in_chans, transform=crop, seed=seed
            )
            batches = LoaderBatches(ds, split.labels, num_workers=workers, keyed=True, **kw)
            n = len(split)
        if len(batches) == 0:
            raise _no_batch(part, n, batch_size, kw["drop_last"], world_size)
        return batches

    return DataBundle(
        train=make("train"),
        val=make("val"),
        test=make("test"),
        dataset=str(name),
        num_classes=len(class_names),
        in_chans=in_chans,
        image_size=size,
        class_names=list(class_names),
        mean=mean,
        std=std,
        loader="shards" if shards else "stream",
    )


__all__ = [
    "CenterCrop",
    "StreamDataset",
    "TrainCrop",
    "build_stream",
    "decode_full",
    "read_file",
    "sample_generator",
    "split_pipeline",
]
