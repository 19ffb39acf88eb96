"""ImageFolder trees (torchvision's layout) and ImageNet-1k: listed, decoded once, cached.

``root/train/<class>/<image files>`` and optionally ``val/`` and ``test/`` of the same
layout. Every image is decoded once (in a thread pool: PIL releases the GIL), converted and
resized, and the uint8 splits are cached in ``<cache>/imagefolder/``; a tree too large to
hold decoded keeps its file paths for the DataLoader path. The cache is read back like any
other file, checked, and rebuilt when it does not hold exactly what the tree decodes to.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

import torch
from torch import Tensor

from cnnzoo.data.images import IMAGE_EXTENSIONS, image_channels, load_image, probe_image
from cnnzoo.data.splits import Source, Split, stat_fingerprint
from cnnzoo.errors import DataError
from cnnzoo.fileio import atomic_write
from cnnzoo.machine import cache_dir


def _not_listable(e: OSError) -> NoReturn:
    raise DataError(f"cannot list image folder {e.filename}: {e.strerror}") from None


def _class_folders(folder: Path) -> list[str]:
    """Names of the class sub-folders of ``folder`` (hidden ones skipped), sorted. A broken
    symbolic link (a loop, or a link to nothing) or a name that is not UTF-8 is refused: one
    would silently drop a class, the other cannot be written into checkpoints and reports."""
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        _not_listable(e)
    names = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() and not os.path.exists(entry.path):
            raise DataError(
                f"{entry.path} is a broken symbolic link (it loops or points nowhere); "
                f"remove it or point it at a class folder"
            )
        if not entry.is_dir():
            continue
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(
                f"class folder {os.fsencode(entry.name)!r} in {folder} has a name that is not "
                f"UTF-8; rename it (class names go into checkpoints and reports)"
            ) from None
        names.append(entry.name)
    return sorted(names)


def _scan_folder(
    folder: Path, class_names: list[str] | None
) -> tuple[list[str], list[Path], list[int]]:
    classes = _class_folders(folder)
    if class_names is None:
        if not classes:
            raise DataError(
                f"{folder} has no class sub-folders; expected {folder}/<class>/<image files>"
            )
        class_names = classes
    else:
        extra = sorted(set(classes) - set(class_names))
        if extra:
            raise DataError(f"{folder} has classes not in train/: {', '.join(extra[:5])}")
    index = {c: i for i, c in enumerate(class_names)}
    paths, labels = [], []
    for c in classes:
        found = [
            os.path.join(d, n)
            for d, _, names in os.walk(folder / c, onerror=_not_listable)
            for n in names
            if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
        ]
        paths += [Path(p) for p in sorted(found)]
        labels += [index[c]] * len(found)
    if not paths:
        raise DataError(f"{folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return class_names, paths, labels


PROGRESS_MIN_IMAGES = 2000  # a split of fewer images decodes without a word
PROGRESS_AFTER_S = 2.0  # nor does one that takes less time than this
PROGRESS_EVERY_S = 10.0  # at most this long between lines (and a line per tenth of the split)


class Progress:
    """The lines that say how far the first decoding of a large ImageFolder split has got
    (minutes for ImageNet, with nothing else to show), on stderr:
    ``decoding DIR: 12,000/50,000 images (24%)``, a line per tenth of the split or every
    :data:`PROGRESS_EVERY_S` seconds, whichever comes first, and one when it is done. Quiet
    for a split of fewer than :data:`PROGRESS_MIN_IMAGES` images or one decoded within
    :data:`PROGRESS_AFTER_S` seconds."""

    def __init__(self, where: Path, total: int) -> None:
        self.where, self.total = where, total
        self.start = self.last = time.monotonic()
        self.shown = 0  # images done at the last line

    def tick(self, done: int) -> None:
        """``done`` of the ``total`` images are decoded."""
        if self.total < PROGRESS_MIN_IMAGES:
            return
        now = time.monotonic()
        if now - self.start < PROGRESS_AFTER_S:
            return
        tenth = done * 10 // self.total > self.shown * 10 // self.total
        if done == self.total or tenth or now - self.last >= PROGRESS_EVERY_S:
            print(
                f"decoding {self.where}: {done:,}/{self.total:,} images "
                f"({100 * done // self.total}%)",
                file=sys.stderr,
                flush=True,
            )
            self.last, self.shown = now, done


def _decode_all(
    paths: list[Path],
    bad: set[Path],
    labels: list[int],
    in_chans: int,
    size: tuple[int, int] | None,
    skip_bad: bool,
    where: Path,
) -> Split:
    """Decode the files (in threads: PIL releases the GIL while decoding), in order; a large
    split (``where``: its folder) reports its progress (:class:`Progress`)."""

    def decode(p: Path) -> Tensor | DataError:
        try:
            return load_image(p, in_chans, size)
        except DataError as e:
            return e

    todo = [(p, y) for p, y in zip(paths, labels, strict=True) if p not in bad]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        progress = Progress(where, len(todo))
        decoded = []
        for img in pool.map(decode, [p for p, _ in todo]):
            decoded.append(img)
            progress.tick(len(decoded))
    images, kept, first = [], [], None
    for (p, y), img in zip(todo, decoded, strict=True):
        if isinstance(img, DataError):
            if not skip_bad:
                raise DataError(f"{img} (or set data.skip_bad=True to skip unreadable images)")
            warnings.warn(f"skipping unreadable image: {img}", stacklevel=3)
            continue
        if first is None:
            first = (p, img.shape)
        elif size is None and img.shape != first[1]:
            raise DataError(
                f"{p} is {img.shape[1]}x{img.shape[2]} but {first[0]} is "
                f"{first[1][1]}x{first[1][2]}: images of mixed sizes need "
                f"data.image_size=<size> to resize them to one size"
            )
        images.append(img)
        kept.append(y)
    if not images:
        raise DataError(
            f"no readable images among {len(paths)} files under {paths[0].parent.parent}"
        )
    return Split(torch.tensor(kept, dtype=torch.int64), torch.stack(images))


def list_imagefolder(root: Path) -> tuple[list[str], dict[str, tuple[list[Path], list[int]]]]:
    """The class names and, per split (``train`` and those of ``val``/``test`` present), the
    image files and their labels of the ImageFolder tree ``root``; nothing is opened."""
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DataError(
            f"ImageFolder root {root} has no train/ folder; expected {root}/train/<class>/<images> "
            f"(and optionally val/ and test/); set data.root=<folder>, or put it in "
            f"$CNNZOO_DATA/<data.folder>"
        )
    class_names, train_paths, train_labels = _scan_folder(train_dir, None)
    splits = {"train": (train_paths, train_labels)}
    for name in ("val", "test"):
        if (root / name).is_dir():
            _, p, y = _scan_folder(root / name, class_names)
            splits[name] = (p, y)
    return class_names, splits


def read_imagefolder(
    root: Path,
    download: bool = False,
    *,
    in_chans: int | None = None,
    image_size: tuple[int, int] | None = None,
    skip_bad: bool = False,
    max_bytes: int | None = None,
    name: str = "imagefolder",
) -> Source:
    """A folder ``root`` with ``train/<class>/*.jpg|png|...`` and optionally ``val/`` and
    ``test/`` of the same layout (torchvision's ImageFolder convention).

    Every image is decoded once with PIL, converted to ``in_chans`` (default: 3 if any image
    is in colour, else 1), resized to ``image_size`` and cached as a uint8 tensor file keyed
    by a hash of the file list, in ``<cache>/imagefolder/``. When the decoded splits would
    exceed ``max_bytes``, nothing is decoded: the splits keep their file paths for the
    DataLoader path to decode lazily. ``name``: the data type (``imagenet`` is checked to
    hold the 1000 classes before anything is decoded)."""
    class_names, splits = list_imagefolder(root)
    if name == "imagenet":
        check_imagenet_classes(class_names, root / "train")
    all_paths = [p for ps, _ in splits.values() for p in ps]
    fingerprint = stat_fingerprint(all_paths)
    key = hashlib.sha1(f"{fingerprint}|{in_chans}|{image_size}|{skip_bad}".encode()).hexdigest()
    cache = cache_dir() / "imagefolder" / f"{key[:20]}.pt"
    fits = max_bytes is None or (cache.is_file() and cache.stat().st_size <= 1.1 * max_bytes)
    out = None
    if fits:
        out = _load_cached(
            cache,
            lambda obj: _cache_problem(obj, class_names, splits, in_chans, image_size, skip_bad),
        )
    if out is None:
        out = _decode_or_defer(splits, root, in_chans, image_size, skip_bad, max_bytes)
        if out["train"].images is not None:
            _save_cached(cache, out, class_names)
    return Source(
        name,
        out["train"],
        out.get("test"),
        class_names,
        fingerprint=fingerprint,
        val=out.get("val"),
    )


def _decode_or_defer(
    splits: dict[str, tuple[list[Path], list[int]]],
    root: Path,
    in_chans: int | None,
    image_size: tuple[int, int] | None,
    skip_bad: bool,
    max_bytes: int | None,
) -> dict[str, Split]:
    """Decode every split, or (when that would exceed ``max_bytes``) only list the files."""
    probes, bad = [], set()
    for p in (p for ps, _ in splits.values() for p in ps):
        try:
            probes.append(probe_image(p))
        except DataError as e:
            if not skip_bad:
                raise DataError(
                    f"{e} (or set data.skip_bad=True to skip unreadable images)"
                ) from None
            warnings.warn(f"skipping unreadable image: {e}", stacklevel=3)
            bad.add(p)
    if not probes:
        raise DataError(f"no readable images under {root}")
    if in_chans is None:
        in_chans = max(image_channels(mode) for mode, _ in probes)
    size = image_size or probes[0][1]
    if max_bytes is None or len(probes) * in_chans * size[0] * size[1] <= max_bytes:
        return {
            k: _decode_all(ps, bad, y, in_chans, image_size, skip_bad, root / k)
            for k, (ps, y) in splits.items()
        }
    if image_size is None:
        raise DataError(
            f"{root}: an ImageFolder too large to hold decoded needs data.image_size=<size>"
        )
    out = {}
    for k, (ps, y) in splits.items():
        keep = [i for i, p in enumerate(ps) if p not in bad]
        labels = torch.tensor([y[i] for i in keep], dtype=torch.int64)
        out[k] = Split(labels, None, [str(ps[i]) for i in keep], (in_chans, *size))
    return out


def _load_cached(path: Path, problem: Callable[[object], str | None]) -> dict[str, Split] | None:
    """The decoded splits cached at ``path``, or ``None`` (decode again) when there is none.
    The cache is read from disk, so it is checked like any other input: one of which
    ``problem`` (:func:`_cache_problem` for the tree) has something to say is rebuilt, with a
    one-line warning naming it and the reason."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a corrupt file can raise almost anything
        reason = f"unreadable: {(str(e).strip().splitlines() or [type(e).__name__])[0]}"
    else:
        reason = problem(obj)
    if reason is None:
        return {k: Split(v["labels"], v["images"]) for k, v in obj["splits"].items()}
    warnings.warn(
        f"ignoring the cache of decoded images {path} ({reason}); decoding the images again",
        stacklevel=4,
    )
    return None


CACHE_FORMAT = "cnnzoo-imagefolder/2"


def _cache_problem(
    obj: object,
    class_names: list[str],
    listing: dict[str, tuple[list[Path], list[int]]],
    in_chans: int | None,
    image_size: tuple[int, int] | None,
    skip_bad: bool,
) -> str | None:
    """What is wrong with the loaded cache ``obj`` for this tree, or ``None`` when it holds
    uint8 images and int64 labels for exactly the tree's splits: the labels those of the files
    (a subset of them with ``skip_bad``), in range of the class count, one image per label, all
    of one shape with the channels and size asked for."""
    if not isinstance(obj, dict) or obj.get("format") != CACHE_FORMAT:
        return f'not a cache of this cnnzoo (expected "format": "{CACHE_FORMAT}")'
    names, splits = obj.get("class_names"), obj.get("splits")
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        return "class_names is not a list of names"
    if names != class_names:
        return "its class names are not the tree's"
    if not isinstance(splits, dict) or set(splits) != set(listing):
        return f"its splits are not the tree's {sorted(listing)}"
    shape = None
    for part, (paths, labels) in listing.items():
        entry = splits[part]
        if not isinstance(entry, dict) or set(entry) != {"labels", "images"}:
            return f"split {part} does not hold labels and images"
        y, x = entry["labels"], entry["images"]
        if type(y) is not Tensor or y.dtype != torch.int64 or y.dim() != 1:
            return f"the {part} labels are not a 1-d int64 tensor"
        if type(x) is not Tensor or x.dtype != torch.uint8 or x.dim() != 4:
            return f"the {part} images are not a 4-d uint8 tensor"
        if len(x) != len(y):
            return f"{len(x)} {part} images but {len(y)} labels"
        if len(y) == 0 or len(y) > len(paths) or (not skip_bad and len(y) != len(paths)):
            return f"{len(y)} {part} images for the {len(paths)} files of the tree"
        if int(y.min()) < 0 or int(y.max()) >= len(class_names):
            return f"a {part} label is out of range 0..{len(class_names) - 1}"
        if not skip_bad and not torch.equal(y, torch.tensor(labels, dtype=torch.int64)):
            return f"the {part} labels are not those of the files"
        shape = shape or tuple(x.shape[1:])
        if tuple(x.shape[1:]) != shape:
            return f"the {part} images are {tuple(x.shape[1:])}, others {shape}"
    if shape[0] not in (1, 3) or (in_chans is not None and shape[0] != in_chans):
        return f"its images have {shape[0]} channels"
    if image_size is not None and shape[1:] != tuple(image_size):
        return f"its images are {shape[1]}x{shape[2]}, not {image_size[0]}x{image_size[1]}"
    return None


def _save_cached(path: Path, splits: dict[str, Split], class_names: list[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = dict(
            format=CACHE_FORMAT,
            class_names=list(class_names),
            splits={k: {"labels": s.labels, "images": s.images} for k, s in splits.items()},
        )
        atomic_write(path, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as e:  # torch.save reports a failed write as RuntimeError
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        warnings.warn(
            f"could not cache decoded images at {path} (disk full or not writable?): {reason}; "
            f"going on without the cache",
            stacklevel=3,
        )


IMAGENET_CLASSES = 1000


def check_imagenet_classes(class_names: list[str], where: Path) -> None:
    """ImageNet-1k (ILSVRC 2012) has 1000 classes; any other count is not ImageNet."""
    if len(class_names) != IMAGENET_CLASSES:
        raise DataError(
            f"{where} holds {len(class_names)} classes but ImageNet (ILSVRC 2012) has "
            f"{IMAGENET_CLASSES}; for other image sets use data.type=imagefolder"
        )


def read_imagenet(root: Path, download: bool = False, **kwargs) -> Source:
    """ImageNet-1k (Russakovsky et al. 2015) as an ImageFolder tree: ``root/train/<wnid>/``
    and ``root/val/<wnid>/`` (the usual layout; torchvision's ``ImageNet`` class writes it),
    read like :func:`read_imagefolder` and checked to hold the 1000 classes."""
    return read_imagefolder(root, download, name="imagenet", **kwargs)
