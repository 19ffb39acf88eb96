import json

import pytest
import torch
from datafiles import make_cifar10, make_imagefolder, make_mnist

from cnnzoo.config import load_config
from cnnzoo.data import build_data, channel_stats, prepare_images, read_dataset, split_train_val
from cnnzoo.errors import ConfigError, DataError, UnknownNameError

CPU = torch.device("cpu")


def cfg(root, **kw):
    base = dict(
        type="cifar10",
        root=str(root),
        download=False,
        val_split=0.2,
        split_seed=0,
        loader="device",
        num_workers=0,
        train=dict(batch_size=4, pipeline=[]),
        val=dict(batch_size=5),
        test=dict(batch_size=3),
    )
    base.update(kw)
    return base


def collect(it, epoch=0):
    it.set_epoch(epoch)
    xs, ys = zip(*list(it), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_split_is_seeded_and_disjoint(tmp_path):
    make_cifar10(tmp_path)
    train = read_dataset("cifar10", tmp_path).train
    train.labels = torch.arange(len(train))  # identify samples
    a_tr, a_val = split_train_val(train, 0.3, 7)
    b_tr, b_val = split_train_val(train, 0.3, 7)
    c_tr, c_val = split_train_val(train, 0.3, 8)
    assert torch.equal(a_val.labels, b_val.labels) and not torch.equal(a_val.labels, c_val.labels)
    assert len(a_val) == 9 and len(a_tr) == 21
    assert set(a_tr.labels.tolist()).isdisjoint(a_val.labels.tolist())
    assert sorted(a_tr.labels.tolist() + a_val.labels.tolist()) == list(range(30))
    assert split_train_val(train, 0.0, 0)[1] is None
    with pytest.raises(ConfigError, match="val_split"):
        split_train_val(train, 1.5, 0)


def test_mean_std_over_all_pixels_of_train_split(tmp_path):
    make_cifar10(tmp_path)
    b = build_data(cfg(tmp_path), device=CPU, seed=0)
    src = read_dataset("cifar10", tmp_path)
    tr, _ = split_train_val(src.train, 0.2, 0)
    px = tr.images.double().div(255).transpose(0, 1).reshape(3, -1)
    assert torch.allclose(torch.tensor(b.mean, dtype=torch.float64), px.mean(1), atol=1e-9)
    assert torch.allclose(
        torch.tensor(b.std, dtype=torch.float64), px.std(1, unbiased=False), atol=1e-9
    )
    cached = list((tmp_path / "cache" / "stats").glob("cifar10-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["mean"] == list(b.mean)
    # the statistics are of the pixels after conversion and resizing
    grey = build_data(cfg(tmp_path, in_chans=1, image_size=16), device=CPU, seed=0)
    gtr, _ = split_train_val(
        read_dataset("cifar10", tmp_path, in_chans=1, image_size=16).train, 0.2, 0
    )
    assert grey.in_chans == 1 and grey.image_size == (16, 16)
    assert grey.mean[0] == pytest.approx(gtr.images.double().mean().item() / 255, abs=1e-9)


def test_channel_stats_is_not_mean_of_per_image_stds():
    imgs = torch.stack(
        [torch.zeros(1, 2, 2, dtype=torch.uint8), torch.full((1, 2, 2), 255, dtype=torch.uint8)]
    )
    s = channel_stats(imgs)
    assert s.mean == pytest.approx((0.5,)) and s.std == pytest.approx((0.5,))


def test_bundle_fields_and_batches(tmp_path):
    make_cifar10(tmp_path)
    b = build_data(cfg(tmp_path, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)), device=CPU, seed=0)
    assert (b.num_classes, b.in_chans, b.image_size, b.dataset) == (10, 3, (32, 32), "cifar10")
    assert b.class_names[0] == "airplane" and b.mean == (0.5, 0.5, 0.5)
    assert (b.train.num_samples, b.val.num_samples, b.test.num_samples) == (24, 6, 8)
    assert (len(b.train), len(b.val), len(b.test)) == (6, 2, 3)
    x, y = collect(b.test)
    raw = read_dataset("cifar10", tmp_path).test
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x, (raw.images.float() / 255 - 0.5) / 0.25) and torch.equal(y, raw.labels)
    assert b.meta()["image_size"] == [32, 32]


def test_no_val_split(tmp_path):
    make_cifar10(tmp_path)
    b = build_data(cfg(tmp_path, val_split=0.0), device=CPU, seed=0)
    assert b.val is None and b.train.num_samples == 30


def test_epochs_are_deterministic_and_differ(tmp_path):
    make_cifar10(tmp_path)
    pipe = [
        dict(type="RandomCrop", size=32, padding=4),
        dict(type="RandomHorizontalFlip"),
        dict(type="Cutout", size=8),
        dict(type="RandAugment", num_ops=1),
        dict(type="RandomErasing"),
    ]
    c = cfg(tmp_path, train=dict(batch_size=4, pipeline=pipe))
    a = build_data(c, device=CPU, seed=3)
    b = build_data(c, device=CPU, seed=3)
    xa0, ya0 = collect(a.train, 0)
    xb0, yb0 = collect(b.train, 0)
    xa1, ya1 = collect(a.train, 1)
    assert torch.equal(xa0, xb0) and torch.equal(ya0, yb0)
    assert not torch.equal(ya0, ya1)
    xa0_again, _ = collect(a.train, 0)
    assert torch.equal(xa0, xa0_again)  # a resumed run replays the epoch
    other = build_data(c, device=CPU, seed=4)
    assert not torch.equal(collect(other.train, 0)[0], xa0)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(
    "pipeline", [[], [dict(type="RandomResizedCrop", size=24), dict(type="Mixup", alpha=0.3)]]
)
def test_device_and_dataloader_paths_agree(tmp_path, workers, pipeline):
    make_cifar10(tmp_path)
    c = cfg(tmp_path, num_workers=workers, train=dict(batch_size=4, pipeline=pipeline))
    dev = build_data(c, device=CPU, seed=1)
    dl = build_data(dict(c, loader="dataloader"), device=CPU, seed=1)
    assert dev.loader == "device" and dl.loader == "dataloader"
    for epoch in (0, 1):
        for part in ("train", "val", "test"):
            xd, yd = collect(getattr(dev, part), epoch)
            xl, yl = collect(getattr(dl, part), epoch)
            assert torch.equal(xd, xl) and torch.equal(yd, yl)


def test_ddp_shards_are_equal_and_disjoint(tmp_path):
    make_cifar10(tmp_path)
    c = cfg(tmp_path, val_split=0.0, train=dict(batch_size=4, pipeline=[]))
    full, _ = collect(build_data(c, device=CPU, seed=0).test)
    shards = [build_data(c, device=CPU, seed=0, rank=r, world_size=3) for r in range(3)]
    seen = []
    for s in shards:
        assert s.train.num_samples == 10 and len(s.train) == 3
        x, _ = collect(s.train, 2)
        seen.append({tuple(v.flatten()[:8].tolist()) for v in x})
    assert sum(len(s) for s in seen) == 30 and len(set.union(*seen)) == 30
    test_parts = [collect(s.test)[0] for s in shards]
    assert sum(len(t) for t in test_parts) == 8
    assert torch.equal(torch.stack([test_parts[i % 3][i // 3] for i in range(8)]), full)


def test_drop_last(tmp_path):
    make_cifar10(tmp_path)
    b = build_data(
        cfg(tmp_path, val_split=0.0, train=dict(batch_size=7, drop_last=True)), device=CPU, seed=0
    )
    assert len(b.train) == 4 and b.train.num_samples == 28 and len(collect(b.train)[1]) == 28


def test_mnist_with_image_size_and_soft_targets(tmp_path):
    make_mnist(tmp_path)
    c = cfg(
        tmp_path,
        type="mnist",
        image_size=32,
        train=dict(batch_size=8, pipeline=[dict(type="CutMix", alpha=1.0)]),
    )
    b = build_data(c, device=CPU, seed=0)
    x, y = next(iter(b.train))
    assert (
        x.shape == (8, 1, 32, 32) and y.shape == (8, 10) and torch.allclose(y.sum(1), torch.ones(8))
    )
    assert b.image_size == (32, 32)


def test_digits_quickstart():
    c = dict(
        type="digits",
        image_size=32,
        val_split=0.1,
        split_seed=0,
        loader="auto",
        train=dict(batch_size=64, pipeline=[]),
        val=dict(batch_size=512),
        test=dict(batch_size=512),
    )
    b = build_data(c, device=CPU, seed=0)
    assert (
        b.loader == "device"
        and b.num_classes == 10
        and b.in_chans == 1
        and b.image_size == (32, 32)
    )
    assert b.train.num_samples + b.val.num_samples + b.test.num_samples == 1797
    x, _ = collect(b.train)
    assert abs(x.mean().item()) < 1e-3 and abs(x.std().item() - 1) < 1e-2


def test_imagefolder_lazy_dataloader_matches_in_memory(tmp_path):
    make_imagefolder(tmp_path, sizes=((12, 10), (9, 14)), modes=("RGB", "L"))
    c = cfg(tmp_path, type="imagefolder", image_size=8, val_split=0.0)
    mem = build_data(c, device=CPU, seed=0)
    import cnnzoo.data.build as build_mod

    old = build_mod.DEVICE_LIMIT_BYTES
    build_mod.DEVICE_LIMIT_BYTES = 10
    try:
        lazy = build_data(dict(c, loader="auto"), device=CPU, seed=0)
    finally:
        build_mod.DEVICE_LIMIT_BYTES = old
    assert (
        lazy.loader == "dataloader" and lazy.train.dataset.__class__.__name__ == "ImageFileDataset"
    )
    assert lazy.mean == pytest.approx(mem.mean)
    assert torch.equal(collect(mem.train)[0], collect(lazy.train)[0])
    assert torch.equal(collect(mem.test)[0], collect(lazy.test)[0])


def test_prepare_images_matches_eval_batches(tmp_path):
    files = make_imagefolder(tmp_path, sizes=((12, 10),), splits=("train", "test"))
    b = build_data(
        cfg(tmp_path, type="imagefolder", image_size=(6, 7), val_split=0.0), device=CPU, seed=0
    )
    test_files = [f for f in files if "test" in f.parts]
    x = prepare_images(
        test_files, in_chans=b.in_chans, image_size=b.image_size, mean=b.mean, std=b.std
    )
    assert torch.equal(x, collect(b.test)[0])
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match="bad.jpg"):
        prepare_images(
            [tmp_path / "bad.jpg"], in_chans=3, image_size=8, mean=(0,) * 3, std=(1,) * 3
        )


def test_train_subset_is_a_seeded_part_of_the_training_split(tmp_path):
    make_cifar10(tmp_path)
    fixed = dict(mean=(0.5,) * 3, std=(0.5,) * 3)

    def images(b):
        return {tuple(img.flatten().tolist()) for img in b.train.images}

    full = build_data(cfg(tmp_path, **fixed), device=CPU, seed=0)
    assert full.train.num_samples == len(images(full)) == 24
    for subset, n in ((0.25, 6), (10, 10), (1.0, 24), (24, 24)):
        b = build_data(cfg(tmp_path, train_subset=subset, **fixed), device=CPU, seed=0)
        assert b.train.num_samples == n and len(b.train) == -(-n // 4)
        assert len(collect(b.train)[1]) == n  # an epoch is n samples
        assert len(images(b)) == n and images(b) <= images(full)
        # the validation hold-out is the same with or without a subset
        assert torch.equal(collect(full.val)[0], collect(b.val)[0])
    # split_seed draws the subset (no hold-out here, so only the subset can differ)
    drawn = [
        images(
            build_data(
                cfg(tmp_path, val_split=0.0, train_subset=10, split_seed=s, **fixed),
                device=CPU,
                seed=s2,
            )
        )
        for s, s2 in ((0, 0), (0, 5), (1, 0))
    ]
    assert drawn[0] == drawn[1] != drawn[2]
    for bad in (0, -3, 25, 0.0, 1.5, "half", True):
        with pytest.raises(ConfigError, match="data.train_subset must be .* from 1 to 24"):
            build_data(cfg(tmp_path, train_subset=bad), device=CPU, seed=0)


def test_config_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="cifar10"):
        build_data(cfg(tmp_path, type="cifar11"), device=CPU, seed=0)
    with pytest.raises(ConfigError, match="data.loader must be one of 'auto', 'device'"):
        load_config(None, {"data.loader": "fast"})  # the config refuses it before any data
    with pytest.raises(DataError, match="data.root="):
        build_data(cfg(tmp_path / "empty"), device=CPU, seed=0)
    make_cifar10(tmp_path)
    with pytest.raises(ConfigError, match="3 values"):
        build_data(cfg(tmp_path, mean=(0.5,), std=(0.5,)), device=CPU, seed=0)


def test_data_root_from_env(tmp_path, monkeypatch):
    make_mnist(tmp_path)
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path))
    b = build_data(dict(cfg(tmp_path, type="mnist"), root=None), device=CPU, seed=0)
    assert b.test.num_samples == 12


def test_large_resize_happens_per_batch(tmp_path, monkeypatch):
    import cnnzoo.data.build as build_mod

    make_cifar10(tmp_path)
    c = cfg(
        tmp_path,
        image_size=40,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        train=dict(batch_size=4, pipeline=[dict(type="RandomCrop", size=36)]),
    )
    in_memory = build_data(c, device=CPU, seed=0)
    monkeypatch.setattr(build_mod, "DEVICE_LIMIT_BYTES", 10)
    per_batch = build_data(c, device=CPU, seed=0)
    via_loader = build_data(dict(c, loader="dataloader"), device=CPU, seed=0)
    assert per_batch.train.images.shape[-2:] == (32, 32) and per_batch.image_size == (36, 36)
    xm, _ = collect(in_memory.test)
    xp, _ = collect(per_batch.test)
    assert xp.shape == (8, 3, 36, 36)  # eval data come at the training output size
    assert (xm - xp).abs().max() <= 1.01 / 255 / 0.5  # uint8 rounding of the stored resize
    assert torch.equal(collect(per_batch.train)[0], collect(via_loader.train)[0])
    assert collect(per_batch.train)[0].shape[-2:] == (36, 36)


def test_failed_download_is_reported(tmp_path, monkeypatch):
    import cnnzoo.data.datasets as ds

    def offline(*_a, **_k):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(ds, "_tv_dataset", offline)
    with pytest.raises(DataError, match="download failed: OSError: <urlopen error"):
        build_data(cfg(tmp_path, type="fashion_mnist", download=True), device=CPU, seed=0)
