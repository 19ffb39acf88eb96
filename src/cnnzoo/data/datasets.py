"""Readers for the datasets cnnzoo trains on, each returning uint8 tensors.

The file formats are parsed here, strictly: IDX files (MNIST, Fashion-MNIST) have their
magic numbers, dimensions and sizes checked; CIFAR's Python pickles are read with an
unpickler that can only rebuild numpy arrays, then checked for keys, dtypes and shapes.
Anything off raises :class:`DataError` naming the file. Downloads, when allowed, go through
torchvision's own download code and are then read by the same parsers.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import math
import os
import pickle
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
from torch import Tensor

from cnnzoo.data.images import (
    IMAGE_EXTENSIONS,
    as_size,
    convert_channels,
    image_channels,
    load_image,
    probe_image,
    resize_uint8,
)
from cnnzoo.data.splits import Source, Split, stat_fingerprint
from cnnzoo.errors import ConfigError, DataError, unknown
from cnnzoo.fileio import atomic_write
from cnnzoo.machine import cache_dir


def data_root(root: str | os.PathLike | None) -> Path:
    """``root``, else ``$CNNZOO_DATA``, else ``~/.cache/cnnzoo/data``."""
    if root is not None and not isinstance(root, str | os.PathLike):
        raise ConfigError(f"data.root must be a folder path (a string), got {root!r}")
    if root:
        return Path(root).expanduser()
    env = os.environ.get("CNNZOO_DATA")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/cnnzoo/data").expanduser()


DEFAULT_FOLDER = "imagefolder"


def dataset_root(name: str, root: str | os.PathLike | None, folder: str | None = None) -> Path:
    """Where dataset ``name`` is read from. An explicit ``root`` (``data.root``) is used as
    given: the folder that holds torchvision's layout (``MNIST/raw/``, ...), or the ImageFolder
    itself. Without one, every dataset lives in its own named subfolder of the data folder
    (:func:`data_root`: ``$CNNZOO_DATA``, else ``~/.cache/cnnzoo/data``): torchvision's data
    sets in theirs (``MNIST/``, ``cifar-10-batches-py/``, ...), an ImageFolder in ``folder``
    (``data.folder``, default ``imagefolder``; ImageNet's ``imagenet``), so one data folder
    serves them all."""
    if root:
        return data_root(root)
    base = data_root(None)
    if name not in FOLDER_TYPES:
        return base
    folder = folder or (DEFAULT_FOLDER if name == "imagefolder" else name)
    if not isinstance(folder, str) or folder in (".", "..") or "/" in folder or "\\" in folder:
        raise ConfigError(
            f"data.folder must be the name of one subfolder of the data folder, got {folder!r}"
        )
    sub = base / folder
    if not (sub / "train").is_dir() and (base / "train").is_dir():
        where = (
            f"CNNZOO_DATA={base}" if os.environ.get("CNNZOO_DATA") else f"the data folder {base}"
        )
        raise DataError(
            f"{where} holds an ImageFolder itself (train/), but ImageFolder data sets are read "
            f"from a named subfolder of it ({sub}/train/<class>/): move the tree there, or set "
            f"CNNZOO_DATA={base.parent} and data.folder={base.name}, or data.root={base}"
        )
    return sub


def _missing(
    what: str,
    looked: list[Path],
    dataset: str,
    layout: str,
    root: Path,
    download: bool,
    reason: str | None = None,
) -> DataError:
    """The data set is not where it was looked for: say where, how to put it there, and what
    the data folder ``root`` holds instead that could be read (an ImageFolder copy)."""
    where = ", ".join(str(p) for p in looked)
    msg = (
        f"{what} not found (looked for {where}). Put the {dataset} files in {layout} under a "
        f"folder and pass data.root=<folder> (or set CNNZOO_DATA)"
    )
    if not download:
        msg += ", or set data.download=True on a machine with a network"
    elif reason:
        msg += f"; the download failed: {reason}"
    trees = _image_folders(root)
    if trees:
        read = (
            f"data.folder={trees[0]}" if root == data_root(None) else f"data.root={root / trees[0]}"
        )
        msg += (
            f". {root} holds the ImageFolder tree{'s' if len(trees) > 1 else ''} "
            f"{', '.join(t + '/' for t in trees)} (train/<class>/ images): read "
            f"{'one' if len(trees) > 1 else 'it'} with --cfg-options data.type=imagefolder {read}"
        )
    return DataError(msg)


def _image_folders(root: Path) -> list[str]:
    """The subfolders of ``root`` that hold an ImageFolder tree (a ``train/`` folder)."""
    try:
        return sorted(p.name for p in root.iterdir() if (p / "train").is_dir())
    except OSError:
        return []


# --------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)
# --------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_IDX_BYTES = 4 << 30  # MNIST's largest file is 47 MB; a header claiming more is corrupt


def read_idx(path: str | os.PathLike, expect_ndim: int | None = None) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic ``00 00 <dtype> <ndim>``, ``ndim``
    big-endian uint32 sizes, then the data. Raises :class:`DataError` naming the file when
    the magic, the dimensions or the byte count are wrong. No more is read (or decompressed,
    so a gzip bomb is harmless) than the header says the file holds, plus one byte."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
                raise DataError(
                    f"{path} is not an IDX file (bad magic number {magic.hex() or 'none'}); "
                    "re-download it"
                )
            ndim = magic[3]
            if ndim == 0 or (expect_ndim is not None and ndim != expect_ndim):
                raise DataError(f"{path}: IDX file has {ndim} dimensions, expected {expect_ndim}")
            sizes = f.read(4 * ndim)
            if len(sizes) < 4 * ndim:
                raise DataError(f"{path}: IDX header is truncated; re-download the file")
            dims = tuple(int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(ndim))
            if 0 in dims[1:]:
                raise DataError(
                    f"{path}: IDX header {dims} has a zero-sized dimension; re-download it"
                )
            dtype = np.dtype(_IDX_DTYPES[magic[2]])
            needed = math.prod(dims) * dtype.itemsize
            if needed > MAX_IDX_BYTES:
                raise DataError(
                    f"{path}: IDX header {dims} claims {needed:,} bytes of data, more than any "
                    f"such data set holds ({MAX_IDX_BYTES:,}); the file is corrupt, re-download it"
                )
            data = f.read(needed + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read IDX file {path}: {e}; re-download it") from None
    if len(data) != needed:
        header, size = 4 + 4 * ndim, 4 + 4 * ndim + len(data)
        what = f"longer than {header + needed}" if len(data) > needed else f"{size}"
        raise DataError(
            f"{path}: IDX file is {what} bytes but its header {dims} needs {header + needed} "
            "(truncated or corrupt); re-download it"
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_idx_pair(images_path: Path, labels_path: Path, num_classes: int) -> Split:
    images = read_idx(images_path, expect_ndim=3)
    labels = read_idx(labels_path, expect_ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DataError(f"{images_path} / {labels_path}: expected unsigned byte IDX data")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; re-download them"
        )
    if labels.size and int(labels.max()) >= num_classes:
        raise DataError(
            f"{labels_path}: label {int(labels.max())} is out of range 0..{num_classes - 1}"
        )
    return Split(
        torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(images.copy()).unsqueeze(1)
    )


def _idx_dataset(
    name: str, folder_name: str, tv_class: str, class_names: list[str], root: Path, download: bool
) -> Source:
    raw = root / folder_name / "raw"
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }

    def locate() -> dict[str, tuple[Path, Path]] | None:
        found = {}
        for split, (im, lb) in stems.items():
            a, b = _find(raw, im), _find(raw, lb)
            if a is None or b is None:
                return None
            found[split] = (a, b)
        return found

    found = locate()
    if found is None:
        reason = None
        if download:
            reason = _download(lambda: _tv_dataset(tv_class, root))
            found = locate()
        if found is None:
            looked = [raw / f"{s}[.gz]" for pair in stems.values() for s in pair]
            layout = f"{folder_name}/raw/"
            raise _missing(f"{name} files", looked, name, layout, root, download, reason)
    train = _read_idx_pair(*found["train"], len(class_names))
    test = _read_idx_pair(*found["test"], len(class_names))
    return Source(
        name,
        train,
        test,
        class_names,
        fingerprint=stat_fingerprint(p for pair in found.values() for p in pair),
    )


def _tv_dataset(cls_name: str, root: Path) -> None:
    import torchvision.datasets as tvd

    getattr(tvd, cls_name)(str(root), train=True, download=True)
    getattr(tvd, cls_name)(str(root), train=False, download=True)


def _download(fetch: Callable[[], None]) -> str | None:
    """Run a download; on failure return its reason (the caller then reports what is missing)."""
    try:
        fetch()
    except Exception as e:  # noqa: BLE001 - urllib, http and archive errors all mean "no data"
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def read_mnist(root: Path, download: bool = False) -> Source:
    """MNIST (LeCun et al. 1998) from ``<root>/MNIST/raw/*-idx?-ubyte[.gz]``."""
    return _idx_dataset("mnist", "MNIST", "MNIST", MNIST_CLASSES, root, download)


def read_fashion_mnist(root: Path, download: bool = False) -> Source:
    """Fashion-MNIST (Xiao et al. 2017) from ``<root>/FashionMNIST/raw/*-idx?-ubyte[.gz]``."""
    return _idx_dataset(
        "fashion_mnist", "FashionMNIST", "FashionMNIST", FASHION_CLASSES, root, download
    )


# --------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (python pickles)
# --------------------------------------------------------------------------------------

_PICKLE_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild dicts, lists, bytes and numpy arrays, and nothing else."""

    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_ALLOWED:
            raise DataError(
                f"{self.path} is not a CIFAR batch: its pickle refers to {module}.{name}, which "
                f"a CIFAR file never does (refusing to load it)"
            )
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike, label_key: bytes, num_classes: int) -> Split:
    """One CIFAR pickle: a dict with ``b'data'`` uint8 (N, 3072) and ``label_key`` a list of
    N ints in ``0..num_classes-1``. Raises :class:`DataError` naming the file otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _ArrayOnlyUnpickler(f, path).load()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt pickle can raise almost anything
        raise DataError(
            f"cannot read CIFAR batch {path}: {type(e).__name__}: {e}; re-download it"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dict, found {type(obj).__name__}")
    data, labels = obj.get(b"data"), obj.get(label_key)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: b'data' must be a uint8 array of shape (N, 3072), found {got}")
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if not isinstance(labels, list) or not all(isinstance(v, int) for v in labels):
        raise DataError(f"{path}: {label_key!r} must be a list of ints")
    if len(labels) != data.shape[0]:
        raise DataError(f"{path}: {data.shape[0]} images but {len(labels)} labels")
    if labels and not 0 <= min(labels) <= max(labels) < num_classes:
        raise DataError(f"{path}: labels must lie in 0..{num_classes - 1}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return Split(torch.tensor(labels, dtype=torch.int64), images)


def _read_cifar_meta(path: Path, key: bytes, default: list[str]) -> list[str]:
    if not path.is_file():
        return default
    try:
        with open(path, "rb") as f:
            meta = _ArrayOnlyUnpickler(f, path).load()
        names = [n.decode() for n in meta[key]]
    except Exception:  # noqa: BLE001 - class names are cosmetic; fall back to the published list
        return default
    return names if len(names) == len(default) else default


CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _cifar(name: str, root: Path, download: bool) -> Source:
    ten = name == "cifar10"
    folder = root / ("cifar-10-batches-py" if ten else "cifar-100-python")
    train_files = [folder / f"data_batch_{i}" for i in range(1, 6)] if ten else [folder / "train"]
    test_files = [folder / ("test_batch" if ten else "test")]
    files = train_files + test_files
    if not all(p.is_file() for p in files):
        reason = None
        if download:
            reason = _download(lambda: _fetch_cifar(ten, root))
        if not all(p.is_file() for p in files):
            missing = [p for p in files if not p.is_file()]
            layout = f"{folder.name}/"
            raise _missing(f"{name} files", missing, name, layout, root, download, reason)
    num_classes = 10 if ten else 100
    key = b"labels" if ten else b"fine_labels"
    parts = [read_cifar_batch(p, key, num_classes) for p in train_files]
    train = Split(torch.cat([p.labels for p in parts]), torch.cat([p.images for p in parts]))
    test = read_cifar_batch(test_files[0], key, num_classes)
    if ten:
        names = _read_cifar_meta(folder / "batches.meta", b"label_names", CIFAR10_CLASSES)
    else:
        names = _read_cifar_meta(folder / "meta", b"fine_label_names", [str(i) for i in range(100)])
    return Source(name, train, test, names, fingerprint=stat_fingerprint(files))


def _fetch_cifar(ten: bool, root: Path) -> None:
    """Download and extract the CIFAR archive with torchvision's URL and checksum (without
    torchvision's own unrestricted unpickling)."""
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import download_and_extract_archive

    cls = tvd.CIFAR10 if ten else tvd.CIFAR100
    download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)


def read_cifar10(root: Path, download: bool = False) -> Source:
    """CIFAR-10 (Krizhevsky 2009) from ``<root>/cifar-10-batches-py/``."""
    return _cifar("cifar10", root, download)


def read_cifar100(root: Path, download: bool = False) -> Source:
    """CIFAR-100 (Krizhevsky 2009, fine labels) from ``<root>/cifar-100-python/``."""
    return _cifar("cifar100", root, download)


# --------------------------------------------------------------------------------------
# scikit-learn digits (bundled, offline)
# --------------------------------------------------------------------------------------

DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 1797


def read_digits(root: Path | None = None, download: bool = False) -> Source:
    """scikit-learn's bundled 8x8 digits (the UCI optdigits test set, 1797 images), read from
    the package's ``datasets/data/digits.csv.gz`` (without importing scikit-learn, which is
    slow), values 0..16 scaled to 0..255. It has no official test split, so a fixed 20%
    (always the same images, independent of ``split_seed``) is held out as test."""
    spec = importlib.util.find_spec("sklearn")
    path = (
        Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
        if spec
        else None
    )
    if path is None or not path.is_file():
        raise DataError(
            "the digits dataset comes with scikit-learn; install it: pip install scikit-learn"
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    if table.shape != (1797, 65):
        raise DataError(
            f"{path}: expected 1797 rows of 64 pixels and a label, found shape {table.shape}"
        )
    pixels = np.round(table[:, :64] * (255.0 / 16.0)).astype(np.uint8)
    images = torch.from_numpy(pixels.reshape(-1, 1, 8, 8))
    labels = torch.from_numpy(table[:, 64].astype(np.int64))
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(DIGITS_TEST_SEED))
    n_test = int(round(DIGITS_TEST_FRACTION * len(labels)))
    test_idx, train_idx = perm[:n_test].sort().values, perm[n_test:].sort().values
    full = Split(labels, images)
    return Source(
        "digits",
        full.subset(train_idx),
        full.subset(test_idx),
        MNIST_CLASSES,
        fingerprint="sklearn",
    )


# --------------------------------------------------------------------------------------
# ImageFolder
# --------------------------------------------------------------------------------------


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


def _decode_all(
    paths: list[Path],
    bad: set[Path],
    labels: list[int],
    in_chans: int,
    size: tuple[int, int] | None,
    skip_bad: bool,
) -> Split:
    """Decode the files (in threads: PIL releases the GIL while decoding), in order."""

    def decode(p: Path) -> Tensor | DataError:
        try:
            return load_image(p, in_chans, size)
        except DataError as e:
            return e

    todo = [(p, y) for p, y in zip(paths, labels, strict=True) if p not in bad]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(decode, [p for p, _ in todo]))
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
    out = _load_cached(cache, class_names, splits, in_chans, image_size, skip_bad) if fits else None
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
            k: _decode_all(ps, bad, y, in_chans, image_size, skip_bad)
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


def _load_cached(
    path: Path,
    class_names: list[str],
    listing: dict[str, tuple[list[Path], list[int]]],
    in_chans: int | None,
    image_size: tuple[int, int] | None,
    skip_bad: bool,
) -> dict[str, Split] | None:
    """The decoded splits cached at ``path`` for the tree listed as ``class_names`` and
    ``listing``, or ``None`` (decode again) when there is none. The cache is read from disk, so
    it is checked like any other input: one that does not hold exactly what this tree decodes
    to is rebuilt, with a one-line warning naming it and the reason."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a corrupt file can raise almost anything
        reason = f"unreadable: {(str(e).strip().splitlines() or [type(e).__name__])[0]}"
    else:
        reason = _cache_problem(obj, class_names, listing, in_chans, image_size, skip_bad)
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


# --------------------------------------------------------------------------------------

FOLDER_TYPES = ("imagefolder", "imagenet")  # data types read from a tree of image files
READERS: dict[str, Callable[..., Source]] = {
    "digits": read_digits,
    "mnist": read_mnist,
    "fashion_mnist": read_fashion_mnist,
    "cifar10": read_cifar10,
    "cifar100": read_cifar100,
    "imagefolder": read_imagefolder,
    "imagenet": read_imagenet,
}


def read_dataset(
    name: str,
    root: Path,
    *,
    download: bool = False,
    in_chans: int | None = None,
    image_size: tuple[int, int] | None = None,
    skip_bad: bool = False,
    max_bytes: int | None = None,
) -> Source:
    """Read dataset ``name`` and bring every in-memory split to ``in_chans`` channels and
    ``image_size`` (both ``None``: native)."""
    if name not in READERS:
        raise unknown("dataset", name, READERS)
    image_size = as_size(image_size)
    if name in FOLDER_TYPES:
        return READERS[name](
            root,
            download,
            in_chans=in_chans,
            image_size=image_size,
            skip_bad=skip_bad,
            max_bytes=max_bytes,
        )
    src = READERS[name](root, download)
    for attr in ("train", "val", "test"):
        split = getattr(src, attr)
        if split is not None:
            split.images = resize_uint8(convert_channels(split.images, in_chans), image_size)
    return src
