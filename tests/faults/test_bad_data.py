"""Bad data and bad data settings end in one line (exit 2) that names the problem: hostile
images (decompression bombs, odd GIFs), hostile ImageFolder trees (symbolic link loops,
names that are not UTF-8), malformed IDX files, empty splits, batches larger than the data,
out-of-range pipeline arguments, a ``data.root`` of the wrong type; and a full disk while
caching leaves the earlier files intact and no temporary behind."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from faultkit import child_env
from PIL import Image
from test_corrupt_data import config, make_imagefolder, make_mnist, train, write_idx

import cnnzoo.fileio
from cnnzoo.data import build_data, check_pipeline
from cnnzoo.data.datasets import read_idx
from cnnzoo.errors import CnnzooError, ConfigError, DataError

FOLDER_MODEL = dict(type="lenet5", num_classes=2, in_chans=3)


def png_claiming(w: int, h: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims ``w`` x ``h`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def animated_gif(frames: int = 3) -> bytes:
    images = [Image.new("P", (8, 8), i) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:])
    return buf.getvalue()


def gif_screen(w: int, h: int) -> bytes:
    """An animated GIF whose logical screen claims ``w`` x ``h`` pixels."""
    raw = bytearray(animated_gif())
    raw[6:10] = struct.pack("<HH", w, h)
    return bytes(raw)


def gif_frame(w: int, h: int) -> bytes:
    """An animated GIF whose first frame claims ``w`` x ``h`` pixels."""
    raw = bytearray(animated_gif())
    at = raw.index(b"\x2c")  # the first image descriptor
    raw[at + 5 : at + 9] = struct.pack("<HH", w, h)
    return bytes(raw)


BOMBS = {
    "png": png_claiming(20000, 20000),
    "gif-screen": gif_screen(65535, 65535),
    "gif-frame": gif_frame(60000, 60000),
}


def folder_config(tmp_path: Path, **data) -> str:
    cfg = dict(type="imagefolder", root=str(tmp_path / "data"), image_size=32, **data)
    return config(tmp_path, cfg, FOLDER_MODEL)


def with_data(cfg: str, **changes) -> str:
    """The config file ``cfg``, its ``data`` section changed."""
    obj = json.loads(Path(cfg).read_text())
    obj["data"].update(changes)
    Path(cfg).write_text(json.dumps(obj))
    return cfg


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---- images through predict -----------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_predict_refuses_decompression_bombs(cli, reference, tmp_path, kind):
    bomb = tmp_path / f"bomb.{kind[:3]}"
    bomb.write_bytes(BOMBS[kind])
    assert len(BOMBS[kind]) < 200
    outcome, err = cli(["predict", str(reference), str(bomb)])
    assert outcome == "error" and str(bomb) in err and "decompression bomb" in err, err


@pytest.mark.parametrize(
    "data, expected",
    [
        (animated_gif(), "ran"),
        (gif_screen(0, 0), "ran"),
        (animated_gif()[:40], "cannot read image"),
        (b"GIF89a", "cannot read image"),
    ],
    ids=["animated", "zero-screen", "truncated", "header-only"],
)
def test_predict_reads_odd_gifs_or_names_them(cli, reference, tmp_path, data, expected):
    gif = tmp_path / "odd.gif"
    gif.write_bytes(data)
    outcome, err = cli(["predict", str(reference), str(gif)])
    if expected == "ran":
        assert outcome == "ran", err
    else:
        assert outcome == "error" and str(gif) in err and expected in err, err


def test_predict_reports_a_missing_image_as_missing(cli, reference, tmp_path):
    missing = tmp_path / "no-such.png"
    outcome, err = cli(["predict", str(reference), str(missing)])
    assert outcome == "error" and f"{missing}: no such image file or folder" in err, err


# ---- images and trees through ImageFolder ------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_imagefolder_refuses_decompression_bombs(cli, tmp_path, kind):
    files = make_imagefolder(tmp_path / "data")
    bomb = files[2].with_suffix(f".{kind[:3]}")
    files[2].unlink()
    bomb.write_bytes(BOMBS[kind])
    outcome, err = train(cli, tmp_path, folder_config(tmp_path))
    assert outcome == "error" and str(bomb) in err and "decompression bomb" in err, err
    assert "skip_bad" in err
    outcome, err = train(cli, tmp_path, folder_config(tmp_path, skip_bad=True))
    assert outcome == "ran", err


def test_animated_gifs_in_an_imagefolder_are_read(cli, tmp_path):
    files = make_imagefolder(tmp_path / "data")
    for f in files[:3]:
        f.unlink()
        f.with_suffix(".gif").write_bytes(animated_gif())
    assert train(cli, tmp_path, folder_config(tmp_path))[0] == "ran"


def test_class_folder_names_that_are_not_utf8_are_refused(cli, tmp_path):
    make_imagefolder(tmp_path / "data")
    train_dir = os.fsencode(tmp_path / "data" / "train")
    os.rename(train_dir + b"/dog", train_dir + b"/d\xe9g")
    outcome, err = train(cli, tmp_path, folder_config(tmp_path))
    assert outcome == "error" and "b'd\\xe9g'" in err and "not UTF-8" in err, err


def test_image_file_names_that_are_not_utf8_are_read(cli, tmp_path):
    files = make_imagefolder(tmp_path / "data")
    os.rename(os.fsencode(files[0]), os.fsencode(files[0].parent) + b"/caf\xe9.png")
    assert train(cli, tmp_path, folder_config(tmp_path))[0] == "ran"


@pytest.mark.parametrize(
    "link, target, expected",
    [
        ("train/loop", "loop", "train/loop is a broken symbolic link"),
        ("train/bird", "nowhere", "train/bird is a broken symbolic link"),
        ("train/cat/x.png", "x.png", "Too many levels of symbolic links"),
        ("train/cat/up", "..", None),
    ],
    ids=["class-loop", "class-dangling", "file-loop", "folder-loop"],
)
def test_symlink_loops_in_an_imagefolder(cli, tmp_path, link, target, expected):
    make_imagefolder(tmp_path / "data")
    os.symlink(target, tmp_path / "data" / link)
    outcome, err = train(cli, tmp_path, folder_config(tmp_path))
    if expected is None:  # a folder link is not followed, so it cannot loop
        assert outcome == "ran", err
    else:
        assert outcome == "error" and expected in err, err


@pytest.mark.parametrize("where", ["train", "train/dog"])
def test_folders_that_cannot_be_listed_are_named(cli, tmp_path, monkeypatch, where):
    make_imagefolder(tmp_path / "data")
    blocked = str(tmp_path / "data" / where)
    real = os.scandir

    def scandir(path="."):
        if str(path) == blocked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), blocked)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    outcome, err = train(cli, tmp_path, folder_config(tmp_path))
    assert outcome == "error" and f"cannot list image folder {blocked}: Permission" in err, err


@pytest.mark.parametrize(
    "stats", [{}, dict(mean=[0.5] * 3, std=[0.25] * 3)], ids=["stats", "train"]
)
def test_an_image_that_fails_in_a_loader_worker_is_one_line(cli, tmp_path, monkeypatch, stats):
    import cnnzoo.data.build as build_mod

    files = make_imagefolder(tmp_path / "data")
    Image.effect_noise((64, 64), 50).convert("RGB").save(files[1])
    files[1].write_bytes(files[1].read_bytes()[:400])  # its header reads, its pixels do not
    monkeypatch.setattr(build_mod, "DEVICE_LIMIT_BYTES", 10)  # decoded lazily, by workers
    # one batch of all 8 training images: the worker fails before it sends any tensor back
    # (which the test's offline sockets would refuse)
    batch = dict(batch_size=8, pipeline=[])
    cfg = with_data(folder_config(tmp_path), num_workers=1, train=batch, **stats)
    outcome, err = train(cli, tmp_path, cfg)
    assert outcome == "error" and f"cannot read image {files[1]}: image file is truncated" in err
    assert "Traceback" not in err


# ---- IDX files -----------------------------------------------------------------------------------


def idx_header(dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            idx_header((2**22, 2**21, 2**21)),
            "claims 18,446,744,073,709,551,616 bytes",
        ),  # int64 wraps to 0
        (idx_header((2**32 - 1,) * 3) + bytes(10), "the file is corrupt"),
        (
            idx_header((3, 2, 2)) + bytes(13),
            "is longer than 28 bytes but its header (3, 2, 2) needs 28",
        ),
        (idx_header((64, 0, 28)), "zero-sized dimension"),
        (idx_header((64, 28, 0)), "zero-sized dimension"),
    ],
    ids=[
        "product-wraps-to-zero",
        "product-overflows",
        "trailing-bytes",
        "zero-height",
        "zero-width",
    ],
)
def test_idx_headers_that_overflow_or_hold_zero(cli, tmp_path, content, expected):
    """A header is checked before its data is read, so a corrupt one never allocates."""
    files = make_mnist(tmp_path / "data")
    files["train-images"].write_bytes(content)
    cfg = config(tmp_path, dict(type="mnist", root=str(tmp_path / "data")))
    outcome, err = train(cli, tmp_path, cfg)
    assert outcome == "error" and str(files["train-images"]) in err and expected in err, err


def test_corrupt_gzip_idx_is_reported(cli, tmp_path):
    files = make_mnist(tmp_path / "data")
    path = files["t10k-images"]
    packed = bytearray(gzip.compress(path.read_bytes()))
    packed[12] ^= 0xFF  # a damaged deflate stream: zlib.error, not OSError
    packed[13] ^= 0x5A
    path.unlink()
    gz = path.with_name(path.name + ".gz")
    gz.write_bytes(bytes(packed))
    cfg = config(tmp_path, dict(type="mnist", root=str(tmp_path / "data")))
    outcome, err = train(cli, tmp_path, cfg)
    assert outcome == "error" and f"cannot read IDX file {gz}" in err, err


def test_a_gzip_bomb_is_not_decompressed_beyond_what_the_header_claims(tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:  # 28 bytes claimed, 256 MiB packed
        f.write(idx_header((3, 2, 2)) + bytes(12))
        for _ in range(256):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(DataError, match="is longer than 28 bytes but its header"):
        read_idx(path, expect_ndim=3)


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_an_empty_split_is_an_error_not_a_nan_result(cli, tmp_path, split):
    files = make_mnist(tmp_path / "data")
    write_idx(files[f"{split}-images"], np.zeros((0, 28, 28)))
    write_idx(files[f"{split}-labels"], np.zeros(0))
    cfg = config(tmp_path, dict(type="mnist", root=str(tmp_path / "data")))
    outcome, err = train(cli, tmp_path, cfg)
    name = "train" if split == "train" else "test"
    assert outcome == "error" and f"the {name} split of mnist is empty" in err, err


# ---- batches larger than the data ----------------------------------------------------------------


@pytest.mark.parametrize("drop_last", [True, False])
def test_drop_last_with_a_batch_larger_than_the_data(cli, tmp_path, drop_last):
    make_mnist(tmp_path / "data", n=20)
    cfg = config(tmp_path, dict(type="mnist", root=str(tmp_path / "data"), image_size=32))
    with_data(cfg, train=dict(batch_size=64, drop_last=drop_last, pipeline=[]))
    outcome, err = train(cli, tmp_path, cfg)
    if drop_last:
        assert outcome == "error" and "data.train.batch_size=64" in err and "20 images" in err
        assert "drop_last=False" in err
    else:
        assert outcome == "ran", err


# ---- pipeline arguments ----------------------------------------------------------------------------

BAD_OPS = [
    (dict(type="RandomCrop", size=32, padding=-4), "padding"),
    (dict(type="RandomCrop", size=32, padding=True), "padding"),
    (dict(type="RandomCrop", size=32, padding=2.5), "padding"),
    (dict(type="RandomCrop", size=[32, 0]), "size"),
    (dict(type="RandomCrop", size=2**40), "size"),
    (dict(type="RandomCrop", size=32, padding_mode=["reflect"]), "padding_mode"),
    (dict(type="RandomTranslate", pixels=-2), "pixels"),
    (dict(type="RandomResizedCrop", size=32, ratio=[0, 0]), "ratio"),
    (dict(type="RandomResizedCrop", size=32, ratio=[1, float("inf")]), "ratio"),
    (dict(type="RandomResizedCrop", size=32, scale=[0, 1]), "scale"),
    (dict(type="RandomResizedCrop", size=32, scale=[0.5, 1.5]), "scale"),
    (dict(type="RandomResizedCrop", size=32, scale=[0.9, 0.5]), "scale"),
    (dict(type="RandomResizedCrop", size=32, scale=0.5), "scale"),
    (dict(type="Mixup", alpha=0), "alpha"),
    (dict(type="Mixup", alpha=float("nan")), "alpha"),
    (dict(type="CutMix", alpha=-1.0), "alpha"),
    (dict(type="Cutout", size=0), "size"),
    (dict(type="Cutout", size="16"), "size"),
    (dict(type="RandomHorizontalFlip", p=1.5), "p"),
    (dict(type="RandomHorizontalFlip", p=-0.1), "p"),
    (dict(type="RandomHorizontalFlip", p=None), "p"),
    (dict(type="PCAColor", std=-0.1), "std"),
    (dict(type="PCAColor", std=float("inf")), "std"),
    (dict(type="Resize", size=0), "size"),
    (dict(type="Resize", size=[32, 32, 3]), "size"),
]


@pytest.mark.parametrize(
    "op, key", BAD_OPS, ids=[f"{o['type']}-{k}-{i}" for i, (o, k) in enumerate(BAD_OPS)]
)
def test_pipeline_arguments_are_checked_before_training(cli, tmp_path, op, key):
    pipeline = [dict(type="RandomHorizontalFlip"), op]
    with pytest.raises(
        ConfigError, match=rf"^data\.train\.pipeline\.1\.{key} \({op['type']}\) must"
    ):
        check_pipeline(pipeline)
    cfg = config(tmp_path, dict(type="digits", image_size=32))
    outcome, err = train(cli, tmp_path, with_data(cfg, train=dict(batch_size=4, pipeline=pipeline)))
    assert outcome == "error" and f"data.train.pipeline.1.{key}" in err, err


@pytest.mark.parametrize(
    "op, expected",
    [
        (dict(type="RandomCrop", size=40), "larger than the padded image 32x32"),
        (dict(type="RandomCrop", size=32, padding=40, padding_mode="reflect"), "padding=40"),
    ],
)
def test_a_crop_that_cannot_fit_the_images_fails_when_the_data_is_built(tmp_path, op, expected):
    cfg = dict(type="digits", image_size=32, val_split=0.0, num_workers=0,
               train=dict(batch_size=8, pipeline=[op]))  # fmt: skip
    with pytest.raises(ConfigError, match=expected):
        build_data(cfg, device="cpu", seed=0)


def test_check_pipeline_takes_good_pipelines():
    check_pipeline([
        dict(type="RandomResizedCrop", size=[24, 32], scale=[0.08, 1], ratio=[0.75, 1.33]),
        dict(type="RandomCrop", size=32, padding=4, padding_mode="reflect"),
        dict(type="RandomTranslate", pixels=0), dict(type="RandomHorizontalFlip", p=1),
        dict(type="Cutout", size=8), dict(type="PCAColor", std=0), dict(type="Resize", size=32),
        dict(type="Mixup", alpha=0.2), dict(type="CutMix", alpha=1),
    ])  # fmt: skip


# ---- data settings of the wrong type -------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("root", [None], "data.root must be a folder path"),
        ("root", 5, "data.root must be a folder path"),
        ("root", {"a": 1}, "data.root must be a folder path"),
        ("root", True, "data.root must be a folder path"),
        ("image_size", True, "image_size must be positive integers"),
        ("image_size", [32, False], "image_size must be positive integers"),
    ],
)
def test_data_settings_of_the_wrong_type(cli, tmp_path, key, value, expected):
    data = {"type": "digits", key: value}
    with pytest.raises(ConfigError if key == "root" else CnnzooError, match=expected):
        build_data(data, device="cpu", seed=0)
    outcome, err = train(cli, tmp_path, config(tmp_path, data))
    assert outcome == "error" and f"{key}" in err, err


# ---- full disk while caching -------------------------------------------------------------------------

CACHING = """
import json, resource, signal, sys, warnings
from cnnzoo.data import build_data

cfg, limit = json.loads(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write, not a signal
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    bundle = build_data(cfg, device="cpu", seed=0)
print(json.dumps([bundle.train.num_samples, [str(w.message) for w in caught]]))
"""


def build_on_a_full_disk(cfg: dict, cache: Path, limit: int | None, monkeypatch):
    """Build the data while cache writes fail: (training samples, warning messages). With a
    ``limit``: in a child process whose writes fail past ``limit`` bytes (EFBIG, as the
    checkpoint tests do it); else fsync reports the disk full (ENOSPC, as delayed allocation
    does)."""
    if limit is not None:
        done = subprocess.run(
            [sys.executable, "-c", CACHING, json.dumps(cfg), str(limit)],
            env=child_env(cache),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cnnzoo.fileio.os, "fsync", full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = build_data(cfg, device="cpu", seed=0)
    return bundle.train.num_samples, [str(w.message) for w in caught]


@pytest.mark.parametrize(
    "dataset, stats, limit, cached_images",
    [
        ("imagefolder", False, 4096, True),  # torch.save fails midway: a RuntimeError
        ("imagefolder", False, 100, True),  # the first write fails: an OSError
        ("digits", True, 100, False),
        ("imagefolder", True, None, True),
    ],
    ids=["image-cache-midway", "image-cache-at-once", "stats-cache", "both-enospc"],
)
def test_full_disk_while_caching_keeps_earlier_files_and_leaves_no_temporary(
    tmp_path, monkeypatch, dataset, stats, limit, cached_images
):
    make_imagefolder(tmp_path / "data")
    cache = tmp_path / "cache"
    for name in ("imagefolder/earlier.pt", "stats/earlier.json"):
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        (cache / name).write_bytes(b"an earlier cache file " * 20)
    before = tree(cache)
    cfg = dict(type=dataset, root=str(tmp_path / "data"), image_size=32, val_split=0.0,
               num_workers=0, train=dict(batch_size=4, pipeline=[]))  # fmt: skip
    if not stats:  # given statistics: only the decoded images are cached
        cfg.update(mean=[0.5] * 3, std=[0.25] * 3)
    samples, messages = build_on_a_full_disk(cfg, cache, limit, monkeypatch)
    assert samples == (8 if dataset == "imagefolder" else 1438)
    if cached_images:
        assert len(messages) == 1 and "\n" not in messages[0], messages
        assert messages[0].startswith("could not cache decoded images at")
        assert "disk full" in messages[0]
    else:  # statistics are recomputed next time, silently
        assert messages == []
    assert tree(cache) == before  # nothing new, not even a temporary; the earlier files intact


def test_tta_translate_larger_than_built_images_is_refused_before_training(tmp_path):
    """The config cannot know an ImageFolder's size; the data build checks it."""
    make_imagefolder(tmp_path / "data")
    data = json.loads(Path(folder_config(tmp_path)).read_text())["data"]
    data["test"] = dict(batch_size=4, tta_translate=32)
    with pytest.raises(ConfigError, match="tta_translate=32 must be smaller than the images"):
        build_data(data, device="cpu", seed=0)
    data["test"]["tta_translate"] = 2
    assert build_data(data, device="cpu", seed=0).image_size == (32, 32)
