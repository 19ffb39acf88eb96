"""Tiny data files in the real formats (IDX, CIFAR pickles, ImageFolder trees)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """An IDX file: magic 00 00 08 <ndim>, big-endian uint32 dims, then uint8 data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = (
        bytes([0, 0, 0x08, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def make_mnist(
    root: Path,
    n_train: int = 40,
    n_test: int = 12,
    folder: str = "MNIST",
    gz: bool = False,
    seed: int = 0,
):
    """MNIST-layout IDX files; returns (train images, train labels, test images, test labels)."""
    rng = np.random.default_rng(seed)
    out = []
    raw = root / folder / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out += [images, labels]
    return tuple(out)


def write_cifar_batch(
    path: Path, data: np.ndarray, labels: list[int], label_key: bytes = b"labels"
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(
            {b"batch_label": b"testing", label_key: labels, b"data": data, b"filenames": []},
            f,
            protocol=2,
        )


def make_cifar10(root: Path, per_batch: int = 6, n_test: int = 8, seed: int = 0):
    """cifar-10-batches-py with 5 train batches and a test batch; returns (train data, labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    datas, labels = [], []
    for i in range(1, 6):
        d = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        write_cifar_batch(folder / f"data_batch_{i}", d, y)
        datas.append(d)
        labels += y
    write_cifar_batch(
        folder / "test_batch",
        rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
        [i % 10 for i in range(n_test)],
    )
    with open(folder / "batches.meta", "wb") as f:
        names = [
            b"airplane",
            b"automobile",
            b"bird",
            b"cat",
            b"deer",
            b"dog",
            b"frog",
            b"horse",
            b"ship",
            b"truck",
        ]
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f, protocol=2)
    return np.concatenate(datas), labels


def make_imagefolder(
    root: Path,
    classes=("cat", "dog"),
    per_class: int = 3,
    sizes=((12, 10),),
    modes=("RGB",),
    splits=("train", "test"),
    fmt="png",
):
    """An ImageFolder tree; pixel value encodes (class, index) so images can be told apart."""
    files = []
    k = 0
    for split in splits:
        for c, cls in enumerate(classes):
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = sizes[k % len(sizes)]
                mode = modes[k % len(modes)]
                value = 40 * c + 10 * i + 5
                img = Image.new("RGB", (w, h), (value, value // 2, 255 - value))
                if mode != "RGB":
                    img = img.convert(mode)
                path = d / f"{i}.{fmt}"
                img.save(path)
                files.append(path)
                k += 1
    return files


def make_jpeg_folder(
    root: Path,
    classes=("cat", "dog"),
    per_class: int = 4,
    splits=("train", "val"),
    sizes=((300, 400), (420, 310)),
    seed: int = 0,
):
    """An ImageFolder tree of full-size JPEGs (noise over a gradient, so crops differ); the
    sizes alternate between ``sizes`` (h, w)."""
    rng = np.random.default_rng(seed)
    files = []
    for split in splits:
        for cls in classes:
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = sizes[len(files) % len(sizes)]
                ramp = np.linspace(0, 160, w, dtype=np.float64)[None, :, None]
                arr = (rng.random((h, w, 3)) * 90 + ramp).astype(np.uint8)
                path = d / f"{i}.jpg"
                Image.fromarray(arr).save(path, quality=90)
                files.append(path)
    return files
