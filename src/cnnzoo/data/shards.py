"""Tar shards in WebDataset's layout: written from an ImageFolder, streamed back for training.

A split is a series of POSIX tar files ``{split}-000000.tar``, ``{split}-000001.tar``, ...;
one sample is two consecutive members sharing a key, WebDataset's convention: ``KEY.jpg`` (the
image file's bytes as they were; any extension of :data:`IMAGE_EXTENSIONS`) and ``KEY.cls``
(the class index as decimal text). ``shards.json`` beside them names the classes and each
shard's sample count, so the number of batches of an epoch is known before a shard is opened,
and the data settings measured while writing (image size, channels, mean and std), which
training reads where its config leaves them unset.
A shard is read front to back (``tarfile`` in stream mode: no seeking), so a folder mounted
from anywhere (NFS, an object store through a FUSE mount) serves as well as a local disk.

Split over processes and workers, for a split of S shards on R processes with W workers each:
rank r reads shards r, r + R, r + 2R, ... (a fixed share, so that every epoch it holds the same
number of samples); each epoch it shuffles its shards (seeded by seed, epoch, rank) and deals
them to its workers round-robin; a worker streams its shards through a shuffle buffer of
:data:`SHUFFLE_BUFFER` samples (seeded by seed, epoch, rank, worker). No sample is read twice
in an epoch. When S is not a multiple of R, ranks hold ``ceil(S/R)`` or ``floor(S/R)`` shards:
every rank trains the same number of steps (DDP needs it), that of the rank with the fewest
samples, and the others leave their surplus samples out of that epoch (different ones each
epoch, since the order is reshuffled); evaluation reads every sample once. S < R is refused.
Workers beyond a rank's shard count stay idle. The writer shuffles the training samples across
shards, so that each shard is a random sample of the whole set.
"""

from __future__ import annotations

import io
import json
import math
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from cnnzoo.data.batches import BatchIterable, seeded_generator
from cnnzoo.data.imagefolder import list_imagefolder
from cnnzoo.data.images import (
    IMAGE_EXTENSIONS,
    MAX_FILE_BYTES,
    CenterCrop,
    TrainCrop,
    decode_image,
    probe_image,
    read_file,
)
from cnnzoo.data.loader import unwrapped
from cnnzoo.data.splits import Split, split_train_val
from cnnzoo.data.stats import channel_stats
from cnnzoo.data.stream import (
    DeviceDecoder,
    Pending,
    load_jpeg_decoder,
    prepare,
    sample_generator,
)
from cnnzoo.errors import DataError
from cnnzoo.fileio import atomic_write

INDEX = "shards.json"
FORMAT = "cnnzoo-shards/1"
SPLITS = ("train", "val", "test")
SHUFFLE_BUFFER = 1000  # samples (encoded bytes: ~110 kB each for ImageNet) per worker
MAX_INDEX_BYTES = 64 << 20
MAX_SHARD_SAMPLES = 1 << 30  # per shard; ImageNet's whole training set is 1.28 million
SETTINGS = ("image_size", "in_chans", "mean", "std")  # the data settings the index records
STATS_IMAGES = 1000  # training images decoded for the recorded mean/std (a seeded sample)
MAX_CROP = 224  # the recorded image_size of training images of many sizes is at most this
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


@dataclass(frozen=True)
class ShardIndex:
    """What ``shards.json`` says: the class names, per split (shard file, samples), and the
    data settings the writer measured (``data``: ``image_size``, ``in_chans``, ``mean``,
    ``std``; empty in an index written before they were recorded)."""

    root: Path
    classes: list[str]
    splits: dict[str, list[tuple[str, int]]]
    data: dict[str, Any] = field(default_factory=dict)

    def num_samples(self, split: str) -> int:
        return sum(n for _, n in self.splits[split])


# ---- writing --------------------------------------------------------------------------------


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o444, 0  # the same folder -> the same bytes
    tar.addfile(info, io.BytesIO(data))


def _write_tar(f, samples: list[tuple[str, Path, int]]) -> None:
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, path, label in samples:
            _add(tar, f"{key}{path.suffix.lower()}", bytes(read_file(path)))
            _add(tar, f"{key}.cls", str(label).encode())


def write_shards(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    shard_size: int = 1000,
    seed: int = 0,
    val_split: float = 0.0,
    split_seed: int = 0,
    say: Callable[[str], None] = lambda msg: None,
) -> ShardIndex:
    """Write the ImageFolder tree ``folder`` (``train/``, optional ``val/``, ``test/``) as tar
    shards of ``shard_size`` samples in ``out``, and ``shards.json`` last. The training samples
    are shuffled across shards (seeded by ``seed``); ``val_split`` > 0 holds out a validation
    split exactly as ``data.val_split`` / ``data.split_seed`` would from the folder (only when
    the folder has no ``val/``). Every image's header is checked first (unreadable files and
    decompression bombs raise :class:`DataError` naming them); each file is written atomically."""
    folder, out = Path(folder), Path(out)
    if shard_size < 1:
        raise DataError(f"the shard size must be a positive number of samples, got {shard_size}")
    classes, listing = list_imagefolder(folder)
    parts = {
        k: Split(torch.tensor(y, dtype=torch.int64), paths=[str(p) for p in ps])
        for k, (ps, y) in listing.items()
    }
    if "val" not in parts and val_split > 0:
        parts["train"], parts["val"] = split_train_val(parts["train"], val_split, split_seed)
    headers = {k: [probe_image(p) for p in split.paths] for k, split in parts.items()}
    settings = measure_settings(parts["train"].paths, headers["train"], seed)
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[tuple[str, int]]] = {}
    for part in (p for p in SPLITS if p in parts):
        split = parts[part]
        order = list(range(len(split)))
        if part == "train":
            order = torch.randperm(len(split), generator=seeded_generator("shards", seed)).tolist()
        samples = [(f"{i:09d}", Path(split.paths[i]), int(split.labels[i])) for i in order]
        splits[part] = []
        for k, start in enumerate(range(0, len(samples), shard_size)):
            chunk = samples[start : start + shard_size]
            name = f"{part}-{k:06d}.tar"
            atomic_write(out / name, lambda f, chunk=chunk: _write_tar(f, chunk))
            splits[part].append((name, len(chunk)))
        say(f"{part}: {len(samples)} samples in {len(splits[part])} shard(s)")
    index = dict(
        format=FORMAT,
        classes=classes,
        splits={k: [dict(file=f, samples=n) for f, n in v] for k, v in splits.items()},
        data=settings,
    )
    text = json.dumps(index, indent=1) + "\n"
    atomic_write(out / INDEX, lambda f: f.write(text), binary=False)
    return ShardIndex(out, classes, splits, {k: settings[k] for k in SETTINGS})


def measure_settings(
    paths: list[str], headers: list[tuple[str, tuple[int, int]]], seed: int
) -> dict[str, Any]:
    """The data settings of a training split, recorded in the index so that
    ``data.format='shards' data.root=OUT`` needs no more: ``in_chans`` (1 when every image is
    grey), ``image_size`` (the images' size when they share one, else the median shorter side,
    at most MAX_CROP), and ``mean``/``std`` over a seeded sample of STATS_IMAGES images."""
    in_chans = 1 if all(mode in GREY_MODES for mode, _ in headers) else 3
    sizes = sorted({size for _, size in headers})
    if len(sizes) == 1:
        image_size = list(sizes[0])
    else:
        shorter = sorted(min(size) for _, size in headers)
        image_size = [min(shorter[len(shorter) // 2], MAX_CROP)] * 2
    g = seeded_generator("shards-stats", seed)
    sample = torch.randperm(len(paths), generator=g)[:STATS_IMAGES].tolist()
    stats = channel_stats(decode_image(paths[i], in_chans)[None] for i in sample)
    return dict(
        image_size=image_size,
        in_chans=in_chans,
        mean=[round(v, 4) for v in stats.mean],
        std=[round(v, 4) for v in stats.std],
        stats_images=len(sample),
    )


# ---- reading --------------------------------------------------------------------------------


def read_shard_index(root: str | os.PathLike) -> ShardIndex:
    """The index of the shards in ``root``, checked: class names, splits, plain shard file
    names that exist, positive sample counts. Anything off raises :class:`DataError`."""
    root = Path(root)
    file = root / INDEX
    if not file.is_file():
        raise DataError(
            f"{root} holds no {INDEX}: write shards with `cnnzoo shards IMAGEFOLDER {root}`, or "
            f"point data.root at a folder of shards"
        )
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_INDEX_BYTES + 1)
        if len(raw) > MAX_INDEX_BYTES:
            raise ValueError(f"larger than {MAX_INDEX_BYTES:,} bytes")
        obj = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {file}: {e}; write the shards again") from None
    except RecursionError:
        raise DataError(f"cannot read {file}: nested too deep; write the shards again") from None

    def bad(what: str) -> DataError:
        return DataError(f"{file}: {what}; write the shards again with `cnnzoo shards`")

    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise bad(f'not a shard index (expected "format": "{FORMAT}")')
    classes, splits = obj.get("classes"), obj.get("splits")
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(c, str) for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise bad('"classes" must be a non-empty list of distinct names')
    if not isinstance(splits, dict) or "train" not in splits or not set(splits) <= set(SPLITS):
        raise bad('"splits" must map "train" (and optionally "val", "test") to shards')
    out: dict[str, list[tuple[str, int]]] = {}
    for part, shards in splits.items():
        if not isinstance(shards, list) or not shards:
            raise bad(f'split "{part}" must list its shards')
        out[part] = []
        for s in shards:
            name = s.get("file") if isinstance(s, dict) else None
            n = s.get("samples") if isinstance(s, dict) else None
            if (
                not isinstance(name, str)
                or Path(name).name != name
                or name in ("", ".", "..")
                or not name.endswith(".tar")
            ):
                raise bad(f'split "{part}": {name!r} is not a plain .tar file name')
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SHARD_SAMPLES:
                raise bad(
                    f'split "{part}": shard {name} needs a "samples" count from 1 to '
                    f"{MAX_SHARD_SAMPLES:,}"
                )
            if not (root / name).is_file():
                raise DataError(
                    f"shard {root / name} listed in {file} does not exist; copy it back or "
                    f"write the shards again"
                )
            out[part].append((name, n))
    return ShardIndex(root, list(classes), out, _recorded_settings(obj.get("data"), bad))


def _recorded_settings(data: Any, bad: Callable[[str], DataError]) -> dict[str, Any]:
    """The index's ``data`` settings, checked (none in an index of an earlier version)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise bad('"data" must map settings to values')

    def numbers(key: str, length: int, positive: bool = False) -> bool:
        """Whether ``data[key]`` is a list of ``length`` finite numbers (> 0 if ``positive``)."""
        value = data.get(key)
        return (
            isinstance(value, list)
            and len(value) == length
            and all(_finite(v) and (v > 0 or not positive) for v in value)
        )

    in_chans = data.get("in_chans")
    if in_chans not in (1, 3) or isinstance(in_chans, bool):
        raise bad('"data": "in_chans" must be 1 or 3')
    if not numbers("image_size", 2, positive=True) or not all(
        isinstance(v, int) for v in data["image_size"]
    ):
        raise bad('"data": "image_size" must be [height, width] in pixels')
    if not numbers("mean", in_chans) or not numbers("std", in_chans, positive=True):
        raise bad(f'"data": "mean" and "std" must hold {in_chans} numbers each')
    return {k: data[k] for k in SETTINGS}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def iter_shard(path: Path, num_classes: int) -> Iterator[tuple[str, bytearray, str, int]]:
    """(key, image bytes, member name, label) of each sample of the tar file ``path``, read
    front to back. Members of other kinds (``KEY.json``, ...) are skipped; a sample without an
    image or a ``.cls``, a label out of range or a broken tar raises :class:`DataError`."""
    key, image, label = None, None, None

    def sample():
        if image is None or label is None:
            lacks = "an image member" if image is None else "a .cls member"
            raise DataError(
                f"shard {path}: sample {key!r} lacks {lacks}; every sample needs "
                f"KEY.<image extension> and KEY.cls"
            )
        return key, image[0], image[1], label

    try:
        with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                folder, _, base = m.name.rpartition("/")
                stem, dot, ext = base.partition(".")
                if not dot:
                    continue
                k = f"{folder}/{stem}" if folder else stem
                if k != key:
                    if key is not None:
                        yield sample()
                    key, image, label = k, None, None
                ext = ext.lower()
                if ext != "cls" and f".{ext}" not in IMAGE_EXTENSIONS:
                    continue
                if m.size > MAX_FILE_BYTES:
                    raise DataError(
                        f"shard {path}: member {m.name} is {m.size:,} bytes, more than any "
                        f"image this reads ({MAX_FILE_BYTES:,})"
                    )
                data = bytearray(tar.extractfile(m).read())
                if ext == "cls":
                    text = data.decode("ascii", "replace").strip()
                    # a class index has few digits: int() of thousands would raise, not answer
                    if not (text.isdigit() and len(text) <= 9) or int(text) >= num_classes:
                        raise DataError(
                            f"shard {path}: {m.name} holds {text[:20]!r}, not a class index "
                            f"in 0..{num_classes - 1}"
                        )
                    label = int(text)
                else:
                    image = (data, f"{path}:{m.name}")
            if key is not None:
                yield sample()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read shard {path}: {e}; write it again") from None


def _shuffled(items: Iterator, size: int, g: torch.Generator) -> Iterator:
    """``items`` through a shuffle buffer of ``size``: each output is drawn at random from the
    next ``size`` inputs, so memory stays bounded however long the stream."""
    buf = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = int(torch.randint(size, (1,), generator=g))
        buf[j], item = item, buf[j]
        yield item
    for j in torch.randperm(len(buf), generator=g).tolist():
        yield buf[j]


class ShardDataset(IterableDataset):
    """The samples of one split's shards that one rank reads in an epoch (see the module
    docstring for the split over ranks and workers), decoded and cut by ``transform``, in
    chunks of ``chunk`` (a worker's last chunk may be short). The epoch lives in shared memory,
    so persistent workers follow :meth:`set_epoch`."""

    def __init__(
        self,
        index: ShardIndex,
        split: str,
        *,
        in_chans: int,
        transform: TrainCrop | CenterCrop,
        seed: int,
        shuffle: bool,
        rank: int = 0,
        world_size: int = 1,
        chunk: int = 64,
        defer: bool = False,
    ) -> None:
        self.shards = [(index.root / f, n) for f, n in index.splits[split]]
        self.chunk, self.defer = chunk, defer
        load_jpeg_decoder()  # before the workers fork
        if len(self.shards) < world_size:
            raise DataError(
                f"the {split} split has {len(self.shards)} shard(s) for {world_size} processes: "
                f"every process needs one; write smaller shards (cnnzoo shards --shard-size)"
            )
        self.mine = self.shards[rank::world_size]
        self.num_classes = len(index.classes)
        self.in_chans, self.transform, self.seed = in_chans, transform, seed
        self.shuffle, self.rank = shuffle, rank
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def assignment(self, epoch: int, worker: int, num_workers: int) -> list[tuple[Path, int]]:
        """The shards that ``worker`` of ``num_workers`` reads in ``epoch``, in order."""
        order = list(range(len(self.mine)))
        if self.shuffle:
            g = seeded_generator("shards", self.seed, epoch, self.rank)
            order = torch.randperm(len(self.mine), generator=g).tolist()
        return [self.mine[i] for i in order[worker::num_workers]]

    def samples(
        self, epoch: int, worker: int, num_workers: int
    ) -> Iterator[tuple[str, bytearray, str, int]]:
        """The (key, bytes, name, label) that ``worker`` yields in ``epoch``, undecoded."""

        def read() -> Iterator:
            for path, expected in self.assignment(epoch, worker, num_workers):
                n = 0
                for item in iter_shard(path, self.num_classes):
                    n += 1
                    yield item
                if n != expected:
                    raise DataError(
                        f"shard {path} holds {n} samples but {INDEX} says {expected}; write "
                        f"the shards again"
                    )

        if not self.shuffle:
            return read()
        g = seeded_generator("buffer", self.seed, epoch, self.rank, worker)
        return _shuffled(read(), SHUFFLE_BUFFER, g)

    def __iter__(self) -> Iterator[tuple[Tensor | Pending, Tensor]]:
        """Chunks of up to ``chunk`` samples (uint8 images, or with ``defer`` a
        :class:`~cnnzoo.data.stream.Pending`; int64 labels), in order."""
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = int(self._epoch)
        gather = Pending.pack if self.defer else torch.stack
        images, labels = [], []
        for key, data, name, label in self.samples(epoch, worker, num_workers):
            g = sample_generator(self.seed, epoch, key)
            images.append(prepare(data, name, self.in_chans, self.transform, g, self.defer))
            labels.append(label)
            if len(labels) == self.chunk:
                yield gather(images), torch.tensor(labels, dtype=torch.int64)
                images, labels = [], []
        if labels:
            yield gather(images), torch.tensor(labels, dtype=torch.int64)


class ShardBatches(BatchIterable):
    """Batches of one split's shards through a DataLoader with ``num_workers`` persistent
    workers that yield chunks of a batch's size; the main process cuts the stream of chunks
    into batches (so that a batch's size does not depend on how shards fall to workers) and
    finishes them like every other path."""

    def __init__(
        self,
        index: ShardIndex,
        split: str,
        *,
        in_chans: int,
        transform: TrainCrop | CenterCrop,
        num_workers: int = 2,
        decoder: DeviceDecoder | None = None,
        **kwargs,
    ) -> None:
        super().__init__(torch.empty(0, dtype=torch.int64), **kwargs)
        self.decoder = decoder
        self.dataset = ShardDataset(
            index,
            split,
            in_chans=in_chans,
            transform=transform,
            seed=self.seed,
            shuffle=self.shuffle,
            rank=self.rank,
            world_size=self.world_size,
            chunk=self.batch_size,
            defer=decoder is not None,
        )
        totals = [
            sum(n for _, n in self.dataset.shards[r :: self.world_size])
            for r in range(self.world_size)
        ]
        own = totals[self.rank]
        per_rank = totals if self.shuffle else [own]  # training ranks step together
        if self.drop_last:
            self._steps = min(t // self.batch_size for t in per_rank)
        else:
            self._steps = min(-(-t // self.batch_size) for t in per_rank)
        self._samples = min(own, self._steps * self.batch_size)
        self._loader = DataLoader(
            self.dataset,
            batch_size=None,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            generator=torch.Generator(),
        )

    @property
    def num_samples(self) -> int:
        return self._samples

    def __len__(self) -> int:
        return self._steps

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.dataset.set_epoch(epoch)

    def plan(self):
        return [None] * self._steps

    def fetch(self, plan):
        pin = self.device.type == "cuda" and self.decoder is None
        chunks = iter(unwrapped(self._loader))
        held: list = []  # samples received and not yet batched: uint8 images or Encoded JPEGs
        labels: list[int] = []
        for _ in plan:
            while len(labels) < self.batch_size and (chunk := next(chunks, None)) is not None:
                images, y = chunk
                held += images.unpack() if isinstance(images, Pending) else images.unbind()
                labels += y.tolist()
            samples, held = held[: self.batch_size], held[self.batch_size :]
            y, labels = torch.tensor(labels[: self.batch_size]), labels[self.batch_size :]
            if self.decoder is not None:
                yield self.decoder(samples), y.to(self.device)
                continue
            x = torch.stack(samples)
            if pin:
                x, y = x.pin_memory(), y.pin_memory()
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


__all__ = [
    "INDEX",
    "SHUFFLE_BUFFER",
    "ShardBatches",
    "ShardDataset",
    "ShardIndex",
    "iter_shard",
    "read_shard_index",
    "write_shards",
]
