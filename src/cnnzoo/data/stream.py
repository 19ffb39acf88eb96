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
sends a uint8 crop; the batch becomes float, is augmented and normalised on the device. With
``data.decode='device'`` (for GPUs; the default is 'workers') a worker leaves RGB and grey JPEGs
encoded and sends their bytes with the crop parameters it drew; :class:`DeviceDecoder` decodes
the batch in one nvJPEG call on the GPU and cuts it there. The
random numbers of a sample come from a generator seeded by (seed, epoch, sample), so its crop
depends neither on the worker that decodes it, nor on the number of workers or processes, nor
on timing: a resumed epoch replays exactly. Memory stays bounded by workers x prefetch x batch
(plus the shuffle buffer of shards) whatever the number of images.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
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
from cnnzoo.data.batches import BatchIterable, seeded_generator
from cnnzoo.data.datasets import dataset_root
from cnnzoo.data.imagefolder import check_imagenet_classes, list_imagefolder
from cnnzoo.data.images import (
    CenterCrop,
    TrainCrop,
    as_size,
    decode_full,
    open_image,
    read_file,
)
from cnnzoo.data.loader import LoaderBatches
from cnnzoo.data.splits import DataBundle, Split, no_batch, split_train_val, train_subset
from cnnzoo.errors import ConfigError
from cnnzoo.schema import DECODERS

if TYPE_CHECKING:  # shards.py imports this module
    from cnnzoo.data.shards import ShardIndex

EVAL_RESIZE_RATIO = 256 / 224  # the ImageNet convention: resize 256, centre crop 224


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


class Encoded(NamedTuple):
    """A JPEG that a worker left for the training device to decode: the file's bytes, the
    parameters of its cut (drawn by the worker exactly as for an image it cuts itself), and its
    name for error messages."""

    data: Tensor
    params: tuple
    name: str


def prepare(
    data: bytearray,
    name: str,
    in_chans: int,
    transform: TrainCrop | CenterCrop,
    g: torch.Generator,
    defer: bool = False,
) -> Tensor | Encoded:
    """One sample as a worker hands it on: decoded and cut by ``transform`` (random numbers from
    ``g``), or with ``defer`` an RGB or grey JPEG left :class:`Encoded` for the device. Any other
    file (PNG, CMYK JPEG, ...) is decoded and cut here either way."""
    if defer:
        with open_image(Path(name), data) as img:  # the header only: bombs are refused here
            jpeg = img.format == "JPEG" and img.mode in ("RGB", "L")
            W, H = img.size
        if jpeg:
            return Encoded(
                torch.frombuffer(data, dtype=torch.uint8), transform.params(H, W, g), name
            )
    return transform(decode_full(data, name, in_chans), g)


class Pending(NamedTuple):
    """The samples of a batch (or a chunk of one) as they travel from a worker to the main
    process: the images the worker cut, stacked, and the JPEGs it left encoded, end to end in one
    tensor, so that a batch is a few shared-memory blocks rather than one per file."""

    cut: Tensor | None  # uint8 (R, C, h, w)
    blob: Tensor  # uint8: the JPEG files' bytes, one after another
    ends: list[int]  # where each JPEG ends in blob
    params: list[tuple]
    names: list[str]
    encoded: list[bool]  # per sample, in order: left encoded (else the next of cut)

    @classmethod
    def pack(cls, items: Sequence[Tensor | Encoded]) -> Pending:
        cut = [x for x in items if not isinstance(x, Encoded)]
        jpegs = [x for x in items if isinstance(x, Encoded)]
        blob = torch.cat([j.data for j in jpegs]) if jpegs else torch.empty(0, dtype=torch.uint8)
        return cls(
            torch.stack(cut) if cut else None,
            blob,
            list(itertools.accumulate(len(j.data) for j in jpegs)),
            [j.params for j in jpegs],
            [j.name for j in jpegs],
            [isinstance(x, Encoded) for x in items],
        )

    def unpack(self) -> list[Tensor | Encoded]:
        cut = iter(self.cut.unbind() if self.cut is not None else ())
        starts = [0, *self.ends[:-1]]
        jpegs = iter(
            Encoded(self.blob[a:b], p, n)
            for a, b, p, n in zip(starts, self.ends, self.params, self.names, strict=True)
        )
        return [next(jpegs) if enc else next(cut) for enc in self.encoded]


def collate_pending(batch: list[tuple[Tensor | Encoded, Tensor]]) -> tuple[Pending, Tensor]:
    """The DataLoader's collate function when JPEGs are decoded on the device."""
    return Pending.pack([x for x, _ in batch]), torch.stack([y for _, y in batch])


class DeviceDecoder:
    """Finishes the batches whose JPEGs the workers left encoded: decodes them on ``device``
    in one call (torchvision's ``decode_jpeg`` with a list: nvJPEG's batched decoder on CUDA),
    then cuts each with the parameters its worker drew. On the CPU the decoder is
    libjpeg-turbo, as in the workers, and the batches are those of worker decoding to the bit.

    A batch the device decoder refuses (nvJPEG takes fewer JPEG variants than libjpeg-turbo) is
    decoded on the CPU instead, file by file, which names a broken file; the first time, a
    warning says so."""

    def __init__(
        self, transform: TrainCrop | CenterCrop, in_chans: int, device: torch.device
    ) -> None:
        self.transform, self.in_chans, self.device = transform, in_chans, torch.device(device)
        self.mode = ImageReadMode.RGB if in_chans == 3 else ImageReadMode.GRAY
        self.fell_back = 0  # batches decoded on the CPU after the device decoder failed

    def decode(self, jpegs: list[Encoded]) -> list[Tensor]:
        if not jpegs:
            return []
        if self.device.type == "cuda":
            # torchvision 0.29's nvJPEG wrapper allocates its output on the caller's stream but
            # decodes on a private stream that does not wait for it, so it can overwrite memory
            # that kernels queued on the caller's stream have yet to read (pytorch/vision#9606,
            # reproduced on H100s); draining the stream first is the reported fix
            torch.cuda.current_stream(self.device).synchronize()
        try:
            with warnings.catch_warnings():  # torchvision 0.29 points image decoding to TorchCodec
                warnings.simplefilter("ignore", DeprecationWarning)
                return decode_jpeg([j.data for j in jpegs], mode=self.mode, device=self.device)
        except RuntimeError as e:
            if not self.fell_back:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                warnings.warn(
                    f"decoding JPEGs on {self.device} failed ({reason}); such batches are "
                    f"decoded on the CPU in the main process, which is slower: "
                    f"data.decode='workers' decodes every image in the workers",
                    stacklevel=2,
                )
            self.fell_back += 1
        return [
            decode_full(bytearray(j.data.numpy()), j.name, self.in_chans).to(self.device)
            for j in jpegs
        ]

    def __call__(self, batch: Pending | Sequence[Tensor | Encoded]) -> Tensor:
        """uint8 (B, C, h, w) on the device."""
        items = batch.unpack() if isinstance(batch, Pending) else list(batch)
        h, w = self.transform.size
        out = torch.empty((len(items), self.in_chans, h, w), dtype=torch.uint8, device=self.device)
        jpegs = [i for i, x in enumerate(items) if isinstance(x, Encoded)]
        for i, img in zip(jpegs, self.decode([items[i] for i in jpegs]), strict=True):
            out[i] = self.transform.apply(img, items[i].params)
        for i, x in enumerate(items):
            if not isinstance(x, Encoded):
                out[i] = x.to(self.device)
        return out


def sample_generator(seed: int, epoch: int, key: int | str) -> torch.Generator:
    """The generator of one sample's random numbers in one epoch."""
    return seeded_generator("sample", seed, epoch, key)


class StreamDataset(Dataset):
    """Image files decoded at full resolution on access and cut by ``transform`` (with
    ``defer``, JPEGs are left encoded for the device: see :func:`prepare`); the item
    ``(epoch, i)`` is sample i with that epoch's random numbers."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        labels: Tensor,
        *,
        in_chans: int,
        transform: TrainCrop | CenterCrop,
        seed: int,
        defer: bool = False,
    ) -> None:
        self.paths, self.labels = [str(p) for p in paths], labels
        self.in_chans, self.transform, self.seed = in_chans, transform, seed
        self.defer = defer

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: tuple[int, int]) -> tuple[Tensor | Encoded, Tensor]:
        epoch, i = item
        path, g = self.paths[i], sample_generator(self.seed, epoch, i)
        sample = prepare(read_file(path), path, self.in_chans, self.transform, g, self.defer)
        return sample, self.labels[i]


def decode_on_device(cfg: Mapping[str, Any]) -> bool:
    """Whether the training device decodes the JPEGs: ``data.decode='device'`` (nvJPEG on
    CUDA, which takes the decoding off the CPU workers), not the default 'workers'."""
    return cfg["decode"] == "device"


def _settings(cfg: Mapping[str, Any]) -> tuple[tuple[int, int], int, int, tuple, tuple]:
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
    from cnnzoo.data.shards import SETTINGS, read_shard_index

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


def build_stream(
    cfg: Mapping[str, Any],
    *,
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataBundle:
    """:func:`~cnnzoo.data.build_data` for ``data.loader='stream'`` or ``data.format='shards'``."""
    from cnnzoo.data.shards import ShardBatches

    shards = cfg["format"] == "shards"
    if shards:
        cfg, index = _with_shard_settings(cfg)
    name = cfg["type"]
    if name not in ("imagefolder", "imagenet"):
        raise ConfigError(
            f"data.loader='stream' reads image files: data.type must be imagefolder or "
            f"imagenet, got {name!r}"
        )
    size, resize, in_chans, mean, std = _settings(cfg)
    device = torch.device(device)
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
                stacklevel=2,
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

    def make(part: str) -> BatchIterable | None:
        if part not in parts:
            return None
        training = part == "train"
        part_cfg = cfg[part]
        batch_size = part_cfg["batch_size"]
        crop = train_crop if training else eval_crop
        kw = dict(
            batch_size=batch_size,
            device=device,
            mean=mean,
            std=std,
            out_size=rest.out_size(crop.size) if training else size,
            pipeline=rest if training else None,
            shuffle=training,
            drop_last=part_cfg["drop_last"],
            seed=seed,
            rank=rank,
            world_size=world_size,
        )
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
            n = index.num_samples(part)
        else:
            split = parts[part]
            ds = StreamDataset(
                split.paths,
                split.labels,
                in_chans=in_chans,
                transform=crop,
                seed=seed,
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
            n = len(split)
        if len(batches) == 0:
            raise no_batch(part, n, batch_size, kw["drop_last"], world_size)
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
        resize=resize,
    )


__all__ = [
    "DECODERS",
    "DeviceDecoder",
    "Encoded",
    "Pending",
    "StreamDataset",
    "build_stream",
    "collate_pending",
    "decode_on_device",
    "prepare",
    "sample_generator",
    "split_pipeline",
]
