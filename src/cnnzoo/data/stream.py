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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from cnnzoo.data.augment import (
    Pipeline,
    RandomHorizontalFlip,
    RandomResizedCrop,
)
from cnnzoo.data.batches import seeded_generator
from cnnzoo.data.images import (
    CenterCrop,
    TrainCrop,
    decode_full,
    open_image,
    read_file,
)
from cnnzoo.schema import DECODERS


def load_jpeg_decoder() -> tuple[Any, Callable[..., Any]]:
    """torchvision's ``(ImageReadMode, decode_jpeg)``, imported on first use: importing
    torchvision loads torch._dynamo (about 1.6 s), which the in-memory paths never need. The
    streaming datasets ask for it when they are made, in the main process, so that the
    DataLoader workers fork with it loaded (:func:`~cnnzoo.data.images.decode_full` uses it)
    instead of each importing it again."""
    from torchvision.io import ImageReadMode, decode_jpeg

    return ImageReadMode, decode_jpeg


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
        read_mode, self.decode_jpeg = load_jpeg_decoder()
        self.mode = read_mode.RGB if in_chans == 3 else read_mode.GRAY
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
                return self.decode_jpeg([j.data for j in jpegs], mode=self.mode, device=self.device)
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
        load_jpeg_decoder()  # before the workers fork

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


__all__ = [
    "DECODERS",
    "DeviceDecoder",
    "Encoded",
    "Pending",
    "StreamDataset",
    "collate_pending",
    "decode_on_device",
    "prepare",
    "sample_generator",
    "split_pipeline",
]
