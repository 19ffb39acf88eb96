"""The data sets cnnzoo reads, by name (:data:`READERS`), and where it reads them from.

The torchvision families are parsed here (MNIST, Fashion-MNIST, CIFAR-10/100, and
scikit-learn's bundled digits); ImageFolder trees and ImageNet in
:mod:`cnnzoo.data.imagefolder`. Every reader returns a :class:`~cnnzoo.data.splits.Source`
of uint8 tensors.

The file formats are parsed here, strictly: IDX files (MNIST, Fashion-MNIST) have their
magic numbers, dimensions and sizes checked; CIFAR's Python pickles are read with an
unpickler that can only rebuild numpy arrays, then checked for keys, dtypes and shapes.
Anything off raises :class:`DataError` naming the file. Downloads, when allowed, go through
torchvision's own download code and are then read by the same parsers.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from cnnzoo.data.imagefolder import read_imagefolder, read_imagenet
from cnnzoo.data.images import (
    as_size,
    convert_channels,
    resize_uint8,
)
from cnnzoo.data.splits import Source, Split, stat_fingerprint
from cnnzoo.errors import ConfigError, DataError, unknown


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
