"""The streaming data path (data.loader='stream') and tar shards (data.format='shards'), on
folders of full-size JPEGs written by the tests."""

from __future__ import annotations

import json
import struct
import tarfile
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datafiles import make_jpeg_folder
from PIL import Image

from cnnzoo.config import load_config
from cnnzoo.data import build_data
from cnnzoo.data.augment import RandomResizedCrop
from cnnzoo.data.batches import seeded_generator
from cnnzoo.data.images import CenterCrop, TrainCrop
from cnnzoo.data.shards import INDEX, ShardBatches, iter_shard, read_shard_index, write_shards
from cnnzoo.data.stream import Encoded, Pending
from cnnzoo.errors import ConfigError, DataError

CPU = torch.device("cpu")
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
RRC_FLIP = [dict(type="RandomResizedCrop", size=48), dict(type="RandomHorizontalFlip")]


def cfg(root, **kw):
    base = dict(
        type="imagefolder",
        root=str(root),
        image_size=48,
        mean=MEAN,
        std=STD,
        loader="stream",
        num_workers=0,
        val_split=0.0,
        train=dict(batch_size=3, pipeline=RRC_FLIP),
        val=dict(batch_size=5),
    )
    base.update(kw)
    return base


def epoch(batches, e):
    batches.set_epoch(e)
    xs, ys = zip(*list(batches), strict=True)
    return torch.cat(xs), torch.cat(ys)


def pil_pixels(path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


def png_claiming(w: int, h: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims ``w`` x ``h`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpegs")
    make_jpeg_folder(root, per_class=5)
    return root


def test_training_crops_come_from_the_full_image_per_sample(folder):
    b = build_data(cfg(folder), device=CPU, seed=3)
    assert b.loader == "stream" and b.image_size == (48, 48) and len(b.train) == 4  # 10 / 3
    b.train.set_epoch(2)
    plan = b.train.plan()
    x, y = epoch(b.train, 2)
    assert x.shape == (10, 3, 48, 48) and y.tolist() == b.train.labels[torch.cat(plan)].tolist()
    # sample i's crop, rebuilt by hand from the full decoded file and its own generator
    i = int(plan[0][0])
    path = sorted((folder / "train").rglob("*.jpg"))[i]
    full = pil_pixels(path)
    g = seeded_generator("sample", 3, 2, i)  # seed, epoch, sample: nothing else
    top, left, h, w = (int(v) for v in RandomResizedCrop(48).boxes(1, *full.shape[1:], g)[0])
    crop = F.interpolate(full[None, :, top : top + h, left : left + w], size=(48, 48),
                         mode="bilinear", antialias=True)[0]  # fmt: skip
    if float(torch.rand(1, generator=g)) < 0.5:
        crop = crop.flip(-1)
    expected = (crop.float() / 255 - 0.5) / 0.25
    assert (x[0] - expected).abs().max() <= 2 / 255 / 0.25  # libjpeg-turbo vs PIL: +-1 level


@pytest.mark.parametrize(
    ("scale", "ratio"),
    [((0.08, 1.0), (3 / 4, 4 / 3)), ((0.9, 1.0), (3.0, 4.0)), ((0.95, 1), (0.1, 0.2))],
)
def test_the_per_sample_box_is_the_batch_ops_box(scale, ratio):
    """The same rule and random numbers as RandomResizedCrop.boxes, fallbacks included."""
    op = RandomResizedCrop(48, scale, ratio)
    for i in range(300):
        h, w = ((375, 500), (500, 333), (64, 900), (31, 40))[i % 4]
        expected = op.boxes(1, h, w, seeded_generator("t", i))[0].tolist()
        assert list(TrainCrop(op).box(h, w, seeded_generator("t", i))) == expected


def test_batches_depend_on_seed_epoch_sample_not_on_workers(folder):
    zero = build_data(cfg(folder), device=CPU, seed=0)
    two = build_data(cfg(folder, num_workers=2), device=CPU, seed=0)
    a, b = epoch(zero.train, 1), epoch(two.train, 1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(epoch(two.train, 1)[0], a[0])  # replayed: a resumed epoch is the same
    assert not torch.equal(epoch(two.train, 2)[0], a[0])
    other = build_data(cfg(folder), device=CPU, seed=1)
    assert not torch.equal(epoch(other.train, 1)[0], a[0])


def test_two_copies_of_one_image_get_their_own_crops(tmp_path):
    make_jpeg_folder(tmp_path, per_class=1, splits=("train",))
    first = tmp_path / "train" / "cat" / "0.jpg"
    (tmp_path / "train" / "cat" / "copy.jpg").write_bytes(first.read_bytes())
    b = build_data(
        cfg(tmp_path, train=dict(batch_size=3, pipeline=RRC_FLIP[:1])), device=CPU, seed=0
    )
    b.train.set_epoch(1)
    order = b.train.plan()[0].tolist()
    x, _ = epoch(b.train, 1)
    assert not torch.equal(x[order.index(0)], x[order.index(1)])


def test_evaluation_resizes_the_shorter_side_then_crops_the_centre(folder):
    b = build_data(cfg(folder, resize=64), device=CPU, seed=0)
    x, _ = epoch(b.val, 0)
    path = sorted((folder / "val").rglob("*.jpg"))[0]
    full = pil_pixels(path)  # 300x400: the shorter side 300 -> 64, the longer 400 -> 85
    small = F.interpolate(full[None], size=(64, 85), mode="bilinear", antialias=True)[0]
    expected = (small[:, 8:56, 18:66].float() / 255 - 0.5) / 0.25
    assert (x[0] - expected).abs().max() <= 2 / 255 / 0.25
    default = build_data(cfg(folder), device=CPU, seed=0)  # resize 55 = 48 * 256 / 224
    assert not torch.allclose(epoch(default.val, 0)[0][0], x[0])
    assert CenterCrop(55, (48, 48))(full).shape == (3, 48, 48)


def test_a_pipeline_without_a_resized_crop_gets_the_eval_crop_then_batch_ops(folder):
    ops = [dict(type="RandomCrop", size=40, padding=2)]
    b = build_data(cfg(folder, train=dict(batch_size=3, pipeline=ops)), device=CPU, seed=0)
    x, _ = epoch(b.train, 1)
    assert x.shape[-2:] == (40, 40)
    assert isinstance(b.train.dataset.transform, CenterCrop)
    mixed = [*RRC_FLIP, dict(type="Mixup", alpha=0.2)]
    m = build_data(cfg(folder, train=dict(batch_size=3, pipeline=mixed)), device=CPU, seed=0)
    assert isinstance(m.train.dataset.transform, TrainCrop) and m.train.dataset.transform.flip
    assert [type(op).__name__ for op in m.train.pipeline.ops] == ["Mixup"]
    assert epoch(m.train, 1)[1].shape == (10, 2)  # soft targets from the batch op


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (dict(mean=None), ConfigError, "data.mean/std"),
        (dict(skip_bad=True), ConfigError, "skip_bad"),
        (dict(resize=40), ConfigError, "data.resize=40"),
        (dict(image_size=None), ConfigError, "image_size"),
        (dict(type="imagenet"), DataError, "1000"),
        (dict(type="cifar10"), ConfigError, "imagefolder or imagenet"),
        (dict(format="shards"), DataError, "holds no shards.json"),  # test_shard_settings.py
        (
            dict(train=dict(batch_size=3, pipeline=[dict(type="PCAColor")])),
            ConfigError,
            "PCAColor",
        ),
    ],
)
def test_settings_the_stream_cannot_honour_are_refused(folder, change, error, match):
    with pytest.raises(error, match=match):
        build_data(cfg(folder, **change), device=CPU, seed=0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(loader="dataloader", resize=64), "data.resize .* belongs to the streaming path"),
        (dict(format="tar"), "data.format must be one of 'folder', 'shards'; got 'tar'"),
        (dict(decode="auto"), "data.decode must be one of 'workers', 'device'; got 'auto'"),
        (dict(loader="dataloader", decode="device"), "belongs to the streaming path"),
    ],
)
def test_the_config_refuses_settings_only_the_stream_takes(folder, change, match):
    options = {"data.type": "imagefolder", "data.root": str(folder), "data.image_size": 48}
    with pytest.raises(ConfigError, match=match):
        load_config(None, {**options, **{f"data.{k}": v for k, v in change.items()}})


def test_decompression_bombs_and_broken_files_are_named(tmp_path):
    make_jpeg_folder(tmp_path, per_class=2, splits=("train",))
    bomb = tmp_path / "train" / "cat" / "bomb.png"
    bomb.write_bytes(png_claiming(20000, 20000))
    b = build_data(cfg(tmp_path, num_workers=2), device=CPU, seed=0)
    with pytest.raises(DataError, match="decompression bomb") as e:
        epoch(b.train, 1)
    assert str(bomb) in str(e.value) and "Traceback" not in str(e.value)
    bomb.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(DataError, match=f"cannot read image {bomb}"):
        epoch(build_data(cfg(tmp_path), device=CPU, seed=0).train, 1)


# ---- shards -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    write_shards(folder, out, shard_size=3, seed=0)
    return out


def test_shards_follow_webdataset_layout_and_hold_the_files_bytes(folder, shards):
    index = json.loads((shards / INDEX).read_text())
    assert index["classes"] == ["cat", "dog"]
    assert [s["samples"] for s in index["splits"]["train"]] == [3, 3, 3, 1]
    names = sorted(p.name for p in shards.iterdir())  # no temporary file left behind
    assert names == [INDEX, *(f"{s}-{k:06d}.tar" for s in ("train", "val") for k in range(4))]
    with tarfile.open(shards / "train-000000.tar") as tar:
        names = tar.getnames()
    assert len(names) == 6 and all(n.split(".")[1] in ("jpg", "cls") for n in names)
    assert [n.split(".")[0] for n in names[::2]] == [n.split(".")[0] for n in names[1::2]]
    files = {p.read_bytes(): i for i, p in enumerate(sorted((folder / "train").rglob("*.jpg")))}
    seen = []
    for name, _ in read_shard_index(shards).splits["train"]:
        for key, data, _, label in iter_shard(shards / name, 2):
            i = files[bytes(data)]
            assert label == i // 5 and key == f"{i:09d}"
            seen.append(i)
    assert sorted(seen) == list(range(10)) and seen != sorted(seen)  # shuffled across shards


def test_shards_split_over_2_ranks_x_2_workers_without_overlap(tmp_path):
    make_jpeg_folder(tmp_path / "f", per_class=9, splits=("train",), sizes=((40, 50),))
    write_shards(tmp_path / "f", tmp_path / "s", shard_size=4)  # 18 samples: 4+4+4+4+2
    index = read_shard_index(tmp_path / "s")
    kw = dict(in_chans=3, transform=CenterCrop(32, (32, 32)), num_workers=2, batch_size=4,
              device=CPU, mean=MEAN, std=STD, out_size=(32, 32), seed=0, world_size=2)  # fmt: skip
    for e in (1, 2):
        keys = []
        ranks = [ShardBatches(index, "train", shuffle=True, rank=r, **kw) for r in (0, 1)]
        for b in ranks:
            for w in (0, 1):
                keys += [k for k, *_ in b.dataset.samples(e, w, 2)]
        assert sorted(keys) == [f"{i:09d}" for i in range(18)]  # each sample once, all of them
    # rank 0 holds shards 0, 2, 4 (10 samples), rank 1 shards 1, 3 (8): both take 2 steps of 4
    assert [len(b) for b in ranks] == [2, 2] and [b.num_samples for b in ranks] == [8, 8]
    ranks[0].set_epoch(1)
    got = [y for _, y in ranks[0]]
    assert [len(y) for y in got] == [4, 4]
    evals = [ShardBatches(index, "train", shuffle=False, rank=r, **kw) for r in (0, 1)]
    assert [e.num_samples for e in evals] == [10, 8] and [len(e) for e in evals] == [3, 2]
    labels = torch.cat([y for e in evals for _, y in e])
    assert sorted(labels.tolist()) == [0] * 9 + [1] * 9  # evaluation reads every sample once


def test_shards_train_like_the_folder_and_replay_exactly(folder, shards):
    b = build_data(cfg(shards, format="shards", loader="auto", num_workers=2), device=CPU, seed=0)
    assert b.loader == "shards" and len(b.train) == 4 and b.train.num_samples == 10
    x1, y1 = epoch(b.train, 1)
    x1b, y1b = epoch(b.train, 1)
    assert torch.equal(x1, x1b) and torch.equal(y1, y1b) and x1.shape == (10, 3, 48, 48)
    assert not torch.equal(epoch(b.train, 2)[0], x1)
    folder_val, _ = epoch(build_data(cfg(folder), device=CPU, seed=0).val, 0)
    shard_val, _ = epoch(b.val, 0)  # the same crops; the order is the shards' (two workers)
    assert sorted(shard_val.sum((1, 2, 3)).tolist()) == sorted(folder_val.sum((1, 2, 3)).tolist())


def test_bad_shards_are_named(folder, shards, tmp_path):
    with pytest.raises(DataError, match="cnnzoo shards"):
        build_data(cfg(tmp_path, format="shards"), device=CPU, seed=0)
    with pytest.warns(UserWarning, match="training without validation.*--val-split"):
        write_shards(folder, tmp_path / "noval", shard_size=50)
        (tmp_path / "noval" / "val-000000.tar").unlink()
        index = json.loads((tmp_path / "noval" / INDEX).read_text())
        del index["splits"]["val"]
        (tmp_path / "noval" / INDEX).write_text(json.dumps(index))
        build_data(cfg(tmp_path / "noval", format="shards", val_split=0.1), device=CPU, seed=0)
    index["classes"] = ["cat"]  # labels 1 are now out of range
    (tmp_path / "noval" / INDEX).write_text(json.dumps(index))
    b = build_data(cfg(tmp_path / "noval", format="shards"), device=CPU, seed=0)
    with pytest.raises(DataError, match="not a class index"):
        epoch(b.train, 1)
    index["classes"], index["splits"]["train"][0]["samples"] = ["cat", "dog"], 11
    (tmp_path / "noval" / INDEX).write_text(json.dumps(index))
    b = build_data(cfg(tmp_path / "noval", format="shards"), device=CPU, seed=0)
    with pytest.raises(DataError, match="holds 10 samples but shards.json says 11"):
        epoch(b.train, 1)
    index["splits"]["train"][0]["file"] = "../train-000000.tar"
    (tmp_path / "noval" / INDEX).write_text(json.dumps(index))
    with pytest.raises(DataError, match="not a plain .tar file name"):
        read_shard_index(tmp_path / "noval")


def test_shard_writer_holds_out_the_same_val_split_as_the_folder(tmp_path):
    make_jpeg_folder(tmp_path / "f", per_class=5, splits=("train",), sizes=((40, 50),))
    write_shards(tmp_path / "f", tmp_path / "s", shard_size=4, val_split=0.2, split_seed=3)
    index = read_shard_index(tmp_path / "s")
    assert index.num_samples("val") == 2 and index.num_samples("train") == 8
    kw = dict(image_size=32, val=dict(batch_size=8), val_split=0.2, split_seed=3)
    a = epoch(build_data(cfg(tmp_path / "f", **kw), device=CPU, seed=0).val, 0)[0]
    s = build_data(cfg(tmp_path / "s", format="shards", **kw), device=CPU, seed=0)
    assert torch.equal(epoch(s.val, 0)[0], a)


def test_the_shards_command_writes_shards_and_names_bad_input(folder, tmp_path, capsys):
    from cnnzoo.cli import main

    assert main(["shards", str(folder), str(tmp_path / "s"), "--shard-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "train: 10 samples in 3 shard(s)" in out and "data.format='shards'" in out
    assert read_shard_index(tmp_path / "s").num_samples("val") == 10
    assert main(["shards", str(tmp_path / "nowhere"), str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no train/ folder" in err[0]
    assert main(["shards", str(folder), str(tmp_path / "t"), "--shard-size", "0"]) == 2
    assert not (tmp_path / "t").exists()


def test_train_subset_on_the_stream_and_refused_on_shards(folder, shards):
    b = build_data(cfg(folder, train_subset=4), device=CPU, seed=0)
    assert b.train.num_samples == 4 and b.val.num_samples == 10  # validation stays whole
    with pytest.raises(ConfigError, match="train_subset"):
        build_data(cfg(shards, format="shards", train_subset=4), device=CPU, seed=0)


def test_predict_prepares_an_image_as_the_streamed_evaluation_did(folder):
    """A run on the streaming path keeps data_meta['resize']; predict and explain then resize
    the shorter side and crop the centre exactly as its validation and test did."""
    from cnnzoo.data import prepare_images

    b = build_data(cfg(folder, resize=64), device=CPU, seed=0)
    x, _ = epoch(b.val, 0)
    path = sorted((folder / "val").rglob("*.jpg"))[0]
    kw = dict(in_chans=3, image_size=48, mean=MEAN, std=STD)
    assert torch.allclose(prepare_images([path], resize=64, **kw)[0], x[0], atol=1e-6)
    squashed = prepare_images([path], **kw)[0]  # the whole image resized: another picture
    assert not torch.allclose(squashed, x[0], atol=0.1)


# ---- JPEGs decoded on the training device (data.decode) -----------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """RGB JPEGs, and the files a device decoder leaves to the workers: a grey JPEG (decoded
    to RGB on the device), a CMYK JPEG and a PNG (cut by the workers)."""
    root = tmp_path_factory.mktemp("mixed")
    make_jpeg_folder(root, per_class=4)
    rng = np.random.default_rng(1)
    art = rng.integers(0, 255, (90, 120, 4), dtype=np.uint8)
    Image.fromarray(art[..., 0]).save(root / "train" / "cat" / "grey.jpg")
    Image.fromarray(art, "CMYK").save(root / "train" / "dog" / "cmyk.jpg")
    Image.fromarray(art[..., :3]).save(root / "train" / "dog" / "art.png")
    return root


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("fmt", ["folder", "shards"])
def test_device_decoding_gives_the_batches_of_worker_decoding(mixed, tmp_path, workers, fmt):
    """On the CPU the device's decoder is libjpeg-turbo as in the workers: the same batches to
    the bit, though the workers sent JPEG bytes and crop parameters instead of images."""
    root = mixed
    if fmt == "shards":
        root = tmp_path / "s"
        write_shards(mixed, root, shard_size=4, seed=0)
    kw = dict(format=fmt, num_workers=workers)
    ref = build_data(cfg(root, decode="workers", **kw), device=CPU, seed=5)
    dev = build_data(cfg(root, decode="device", **kw), device=CPU, seed=5)
    assert ref.train.decoder is None and dev.train.decoder is not None
    for part in ("train", "val"):
        for e in (1, 2):
            a, b = epoch(getattr(ref, part), e), epoch(getattr(dev, part), e)
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert len(ref.train.labels if fmt == "folder" else range(ref.train.num_samples)) == 11


def test_workers_leave_rgb_and_grey_jpegs_encoded_and_cut_the_rest(mixed):
    b = build_data(cfg(mixed, decode="device"), device=CPU, seed=0)
    ds = b.train.dataset
    names = [p.rsplit("/", 1)[-1] for p in ds.paths]
    samples = [ds[(1, i)][0] for i in range(len(ds))]
    left = {n for n, s in zip(names, samples, strict=True) if isinstance(s, Encoded)}
    assert left == {n for n in names if n.endswith(".jpg") and n != "cmyk.jpg"}
    assert all(s.shape == (3, 48, 48) for s in samples if not isinstance(s, Encoded))
    back = Pending.pack(samples).unpack()  # one blob of bytes across the workers' pipe
    for s, t in zip(samples, back, strict=True):
        if isinstance(s, Encoded):
            assert torch.equal(s.data, t.data) and (s.params, s.name) == (t.params, t.name)
        else:
            assert torch.equal(s, t)


def test_a_batch_the_device_decoder_refuses_is_decoded_on_the_cpu(mixed, monkeypatch):
    import cnnzoo.data.stream as stream

    ref = epoch(build_data(cfg(mixed, decode="workers"), device=CPU, seed=0).train, 1)

    def refuse(*args, **kwargs):
        raise RuntimeError("nvjpegDecodeBatched failed: NVJPEG_STATUS_BAD_JPEG\nmore detail")

    read_mode, _ = stream.load_jpeg_decoder()
    monkeypatch.setattr(stream, "load_jpeg_decoder", lambda: (read_mode, refuse))
    b = build_data(cfg(mixed, decode="device"), device=CPU, seed=0)
    with pytest.warns(UserWarning, match=r"\(nvjpegDecodeBatched failed: NVJPEG_STATUS_BAD_JPEG\)"):
        got = epoch(b.train, 1)
    assert torch.equal(got[0], ref[0]) and b.train.decoder.fell_back == len(b.train)


def test_a_broken_jpeg_decoded_on_the_device_is_named(tmp_path):
    make_jpeg_folder(tmp_path, per_class=2, splits=("train",))
    broken = tmp_path / "train" / "dog" / "1.jpg"
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # the header whole, the image data cut short
    b = build_data(cfg(tmp_path, decode="device", num_workers=2), device=CPU, seed=0)
    with pytest.raises(DataError, match=f"cannot read image {broken}"), pytest.warns(UserWarning):
        epoch(b.train, 1)


def test_workers_decode_unless_the_device_is_asked_for(folder):
    assert build_data(cfg(folder), device=CPU, seed=0).train.decoder is None
    assert build_data(cfg(folder, decode="device"), device=CPU, seed=0).val.decoder is not None


def test_the_cuda_stream_is_drained_before_nvjpeg_decodes(monkeypatch):
    """torchvision 0.29's CUDA decoder does not wait for the caller's stream (pytorch/vision
    #9606): the decoder synchronizes it first. Checked by order of calls, without a GPU."""
    import cnnzoo.data.stream as stream

    calls = []

    class Stream:
        def synchronize(self):
            calls.append("synchronize")

    def decode(data, mode, device):
        calls.append(f"decode {len(data)} on {device}")
        return [torch.zeros(3, 4, 4, dtype=torch.uint8) for _ in data]

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    read_mode, _ = stream.load_jpeg_decoder()
    monkeypatch.setattr(stream, "load_jpeg_decoder", lambda: (read_mode, decode))
    decoder = stream.DeviceDecoder(CenterCrop(4, (4, 4)), 3, torch.device("cuda"))
    jpeg = Encoded(torch.zeros(8, dtype=torch.uint8), (4, 4), "x.jpg")
    assert len(decoder.decode([jpeg, jpeg])) == 2
    assert calls == ["synchronize", "decode 2 on cuda"]
    cpu = stream.DeviceDecoder(CenterCrop(4, (4, 4)), 3, CPU)
    calls.clear()
    cpu.decode([jpeg])
    assert calls == ["decode 1 on cpu"]


def test_the_float_resize_of_other_devices_matches_the_uint8_kernel():
    """CUDA has no uint8 antialiased kernel: crops cut on the GPU are resized in float32 and
    rounded, within one level of the CPU's uint8 kernel."""
    from cnnzoo.data.images import resize_image, resize_image_float

    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, 317, 233), dtype=torch.uint8, generator=g)
    for size in ((224, 224), (48, 61), (400, 300)):
        a, b = resize_image(img, size), resize_image_float(img, size)
        assert b.dtype == torch.uint8 and b.shape == a.shape
        assert (a.int() - b.int()).abs().max() <= 1
