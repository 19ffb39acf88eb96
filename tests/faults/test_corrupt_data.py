"""Corrupted data through ``cnnzoo train``: each file is either handled (converted, resized
as configured) or reported in one line that names it; never a traceback, never code run
from a data file."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.data import build_data


def write_idx(path: Path, array: np.ndarray) -> Path:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        bytes([0, 0, 8, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.tobytes()
    )
    return path


def make_mnist(root: Path, n: int = 64) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    files = {}
    for prefix in ("train", "t10k"):
        files[f"{prefix}-images"] = write_idx(
            raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28))
        )
        files[f"{prefix}-labels"] = write_idx(
            raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10
        )
    return files


def write_pickle(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


def make_cifar10(root: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [i % 10 for i in range(n)],
        }
        write_pickle(folder / name, batch)
    return folder


def make_imagefolder(
    root: Path, modes=("RGB",), sizes=((12, 10),), per_class: int = 4
) -> list[Path]:
    files, k = [], 0
    for split in ("train", "test"):
        for c, cls in enumerate(("cat", "dog")):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = sizes[k % len(sizes)]
                mode = modes[k % len(modes)]
                img = Image.new("RGB", (w, h), (60 * c + 20 * i, 100, 200 - 40 * c))
                if mode == "I;16":
                    img = Image.fromarray(np.full((h, w), 1000 * (i + 1), np.uint16))
                elif mode != "RGB":
                    img = img.convert(mode)
                path = root / split / cls / f"{i}.{'tiff' if mode == 'CMYK' else 'png'}"
                img.save(path)
                files.append(path)
                k += 1
    return files


def config(tmp_path: Path, data: dict, model: dict | None = None) -> str:
    cfg = dict(
        model=model or dict(type="lenet5", num_classes=10, in_chans=1),
        data=dict(
            download=False,
            val_split=0.0,
            num_workers=0,
            train=dict(batch_size=4, pipeline=[]),
            **data,
        ),
        optimizer=dict(type="SGD", lr=0.01),
        param_scheduler=None,
        train_cfg=dict(max_epochs=1),
        device="cpu",
        log=dict(interval=1, tensorboard=False),
    )
    path = tmp_path / "data.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def train(cli, tmp_path, cfg: str) -> tuple[str, str]:
    return cli(["train", cfg, "--work-dir", str(tmp_path / "runs"), "--quiet"])


# ---- IDX ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage, which, expected",
    [
        ("truncate", "train-images", "truncated or corrupt"),
        ("empty", "train-labels", "not an IDX file"),
        ("magic", "t10k-images", "bad magic number"),
        ("gzip-cut", "train-images", "cannot read IDX file"),
        ("count", "train-labels", "64 images but"),
    ],
)
def test_damaged_idx_files_are_reported_with_their_path(cli, tmp_path, damage, which, expected):
    files = make_mnist(tmp_path / "data")
    path = files[which]
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) - 100])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "magic":
        path.write_bytes(b"\x12\x34" + raw[2:])
    elif damage == "gzip-cut":
        os.remove(path)
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw)[:200])
    elif damage == "count":
        write_idx(path, np.zeros(60, np.uint8))
    cfg = config(tmp_path, dict(type="mnist", root=str(tmp_path / "data")))
    outcome, err = train(cli, tmp_path, cfg)
    assert outcome == "error" and str(path) in err and expected in err, err


# ---- CIFAR pickles ----------------------------------------------------------------------------


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    "batch, expected",
    [
        ({b"data": np.zeros((8, 3000), np.uint8), b"labels": [0] * 8}, "shape (N, 3072)"),
        ({b"data": np.zeros((8, 3072), np.float32), b"labels": [0] * 8}, "uint8"),
        ({b"data": np.zeros((8, 32, 32, 3), np.uint8), b"labels": [0] * 8}, "shape (N, 3072)"),
        ({b"data": np.zeros((8, 3072), np.uint8), b"labels": [0] * 7}, "8 images but 7 labels"),
        ({b"data": np.zeros((8, 3072), np.uint8), b"labels": [10] * 8}, "labels must lie in 0..9"),
        ({b"data": np.zeros((8, 3072), np.uint8), b"labels": ["cat"] * 8}, "list of ints"),
        ({b"labels": [0] * 8}, "b'data' must be"),
        ([1, 2, 3], "expected a dict"),
        ("payload", "refusing to load it"),
        ("truncated", "cannot read CIFAR batch"),
    ],
    ids=[
        "short-rows",
        "float",
        "hwc",
        "label-count",
        "label-range",
        "label-type",
        "no-data",
        "list",
        "code",
        "cut",
    ],
)
def test_bad_cifar_pickles_are_reported_and_never_run_code(cli, tmp_path, batch, expected):
    folder = make_cifar10(tmp_path / "data")
    path = folder / "data_batch_3"
    marker = tmp_path / "code-ran"
    if batch == "payload":
        write_pickle(path, {b"data": Payload(marker), b"labels": [0]})
    elif batch == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    else:
        write_pickle(path, batch)
    cfg = config(
        tmp_path,
        dict(type="cifar10", root=str(tmp_path / "data")),
        dict(type="lenet5", num_classes=10, in_chans=3),
    )
    outcome, err = train(cli, tmp_path, cfg)
    assert outcome == "error" and str(path) in err and expected in err, err
    assert not marker.exists()


def test_good_cifar_pickles_train(cli, tmp_path):
    make_cifar10(tmp_path / "data")
    cfg = config(
        tmp_path,
        dict(type="cifar10", root=str(tmp_path / "data")),
        dict(type="lenet5", num_classes=10, in_chans=3),
    )
    assert train(cli, tmp_path, cfg)[0] == "ran"


# ---- ImageFolder ---------------------------------------------------------------------------------

FOLDER_MODEL = dict(type="lenet5", num_classes=2, in_chans=3)


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "wrong-extension"])
def test_unreadable_images_are_reported_with_their_path(cli, tmp_path, damage):
    files = make_imagefolder(tmp_path / "data")
    bad = files[3]
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "garbage":
        bad.write_bytes(os.urandom(300))
    elif damage == "truncated":
        big = Image.effect_noise((64, 64), 50).convert("RGB")
        big.save(bad)
        bad.write_bytes(bad.read_bytes()[:400])
    elif damage == "wrong-extension":
        bad.write_bytes(b"GIF89a but not really a picture")
    cfg = config(
        tmp_path, dict(type="imagefolder", root=str(tmp_path / "data"), image_size=32), FOLDER_MODEL
    )
    outcome, err = train(cli, tmp_path, cfg)
    assert outcome == "error" and str(bad) in err and "skip_bad" in err, err


def test_unreadable_images_are_skipped_with_a_warning_when_asked(tmp_path, monkeypatch):
    files = make_imagefolder(tmp_path / "data")
    files[2].write_bytes(b"")
    cfg = dict(type="imagefolder", root=str(tmp_path / "data"), image_size=32, skip_bad=True, val_split=0.0,
               num_workers=0, train=dict(batch_size=4, pipeline=[]))  # fmt: skip
    with pytest.warns(UserWarning, match=f"skipping unreadable image: .*{files[2]}"):
        bundle = build_data(cfg, device="cpu", seed=0)
    assert bundle.train.num_samples == 7


def test_mixed_modes_and_sizes_are_converted_and_resized(cli, tmp_path):
    modes = ("RGB", "L", "RGBA", "P", "CMYK", "I;16", "LA", "1")
    make_imagefolder(tmp_path / "data", modes=modes, sizes=((12, 10), (40, 33), (7, 9)))
    cfg = config(
        tmp_path, dict(type="imagefolder", root=str(tmp_path / "data"), image_size=32), FOLDER_MODEL
    )
    assert train(cli, tmp_path, cfg)[0] == "ran"
    bundle = build_data(json.loads(Path(cfg).read_text())["data"], device="cpu", seed=0)
    images, _ = next(iter(bundle.test))
    assert bundle.in_chans == 3 and images.shape[1:] == (3, 32, 32) and torch.isfinite(images).all()


def test_mixed_sizes_without_image_size_name_a_file(cli, tmp_path):
    files = make_imagefolder(tmp_path / "data", sizes=((30, 30), (32, 29)))
    cfg = config(tmp_path, dict(type="imagefolder", root=str(tmp_path / "data")), FOLDER_MODEL)
    outcome, err = train(cli, tmp_path, cfg)
    assert outcome == "error" and "data.image_size" in err and any(str(f) in err for f in files), (
        err
    )
