"""What ``cnnzoo shards`` measures goes into ``shards.json``, so that ``data.format='shards'
data.root=OUT`` trains without more settings; what is still missing is one message."""

from __future__ import annotations

import json

import pytest
import torch
from datafiles import make_imagefolder, make_jpeg_folder

from cnnzoo.data import build_data
from cnnzoo.data.images import decode_image
from cnnzoo.data.shards import INDEX, read_shard_index, write_shards
from cnnzoo.data.stats import channel_stats
from cnnzoo.errors import ConfigError, DataError

CPU = torch.device("cpu")


def _bare(root, **kw):
    """A data config that names the shards and nothing else they record, as a config of
    another data set would (the quick start's digits, with its val_split)."""
    base = dict(type="digits", format="shards", root=str(root), image_size=None, in_chans=None,
                mean=None, std=None, val_split=0.1, num_workers=0,
                train=dict(batch_size=4, pipeline=[]), test=dict(batch_size=4))  # fmt: skip
    return base | kw


def test_the_index_records_channels_size_and_statistics(tmp_path):
    files = make_imagefolder(tmp_path / "f", per_class=3, sizes=((12, 10),), fmt="png")
    index = write_shards(tmp_path / "f", tmp_path / "s", shard_size=4)
    train = [p for p in files if p.parts[-3] == "train"]
    stats = channel_stats(decode_image(p, 3)[None] for p in train)
    assert index.data == read_shard_index(tmp_path / "s").data
    assert index.data["image_size"] == [12, 10] and index.data["in_chans"] == 3
    assert index.data["mean"] == pytest.approx(stats.mean, abs=1e-4)
    assert index.data["std"] == pytest.approx(stats.std, abs=1e-4)
    make_imagefolder(tmp_path / "grey", per_class=2, modes=("L",), sizes=((9, 9), (20, 30)))
    grey = write_shards(tmp_path / "grey", tmp_path / "gs").data
    assert grey["in_chans"] == 1 and len(grey["mean"]) == 1
    assert grey["image_size"] == [20, 20]  # several sizes: the median shorter side


def test_format_and_root_are_enough(tmp_path):
    make_jpeg_folder(tmp_path / "f", per_class=4, splits=("train", "test"), sizes=((40, 40),))
    recorded = write_shards(tmp_path / "f", tmp_path / "s", shard_size=3).data
    with pytest.warns(UserWarning, match="hold no val split.*training without validation"):
        b = build_data(_bare(tmp_path / "s"), device=CPU, seed=0)
    assert b.dataset == "imagefolder" and b.val is None and b.test.num_samples == 8
    assert b.image_size == (40, 40) and b.in_chans == 3
    assert b.mean == pytest.approx(recorded["mean"]) and b.std == pytest.approx(recorded["std"])
    # what the config sets wins over what the index records
    b = build_data(_bare(tmp_path / "s", image_size=32, val_split=0.0), device=CPU, seed=0)
    assert b.image_size == (32, 32)


def test_what_is_still_missing_is_one_message(tmp_path):
    make_jpeg_folder(tmp_path / "f", per_class=2, splits=("train",), sizes=((40, 40),))
    write_shards(tmp_path / "f", tmp_path / "s")
    index = json.loads((tmp_path / "s" / INDEX).read_text())
    del index["data"]  # as an earlier cnnzoo wrote it
    (tmp_path / "s" / INDEX).write_text(json.dumps(index))
    with pytest.raises(ConfigError) as err:
        build_data(_bare(tmp_path / "s", val_split=0.0, loader="device"), device=CPU, seed=0)
    msg = str(err.value)
    assert "\n" not in msg and msg.count("training on the shards") == 1
    for needed in ("data.loader='stream'", "data.image_size", "data.mean and data.std"):
        assert needed in msg
    assert "write the shards again with `cnnzoo shards`" in msg


@pytest.mark.parametrize(
    "data",
    [
        [],
        dict(image_size=[40, 40], in_chans=2, mean=[0.5], std=[0.2]),
        dict(image_size=[40, "x"], in_chans=3, mean=[0.5] * 3, std=[0.2] * 3),
        dict(image_size=[40, 40], in_chans=3, mean=[0.5] * 3, std=[0.2, 0.0, 0.2]),
        dict(image_size=[40, 40], in_chans=1, mean=[0.5, 0.5], std=[0.2]),
        dict(image_size=[40, 40], in_chans=1, mean=[float("nan")], std=[0.2]),
    ],
)
def test_bad_recorded_settings_are_named(tmp_path, data):
    make_jpeg_folder(tmp_path / "f", per_class=2, splits=("train",), sizes=((40, 40),))
    write_shards(tmp_path / "f", tmp_path / "s")
    index = json.loads((tmp_path / "s" / INDEX).read_text())
    (tmp_path / "s" / INDEX).write_text(json.dumps(index | dict(data=data)))
    with pytest.raises(DataError, match='"data"'):
        read_shard_index(tmp_path / "s")
