"""One data folder ($CNNZOO_DATA) for every dataset: each in its own named subfolder."""

import pytest
import torch
from datafiles import make_imagefolder, make_mnist

from cnnzoo.config import load_config
from cnnzoo.data import build_data, dataset_root
from cnnzoo.errors import ConfigError, DataError

CPU = torch.device("cpu")


def cfg(**kw):
    base = dict(
        root=None,
        download=False,
        val_split=0.0,
        loader="device",
        num_workers=0,
        train=dict(batch_size=2, pipeline=[]),
        val=dict(batch_size=2),
        test=dict(batch_size=2),
    )
    return base | kw


def test_one_setting_serves_mnist_and_a_cifar_imagefolder_together(tmp_path, monkeypatch):
    data = tmp_path / "data"
    make_mnist(data)
    make_imagefolder(data / "cifar10-jpeg", classes=("cat", "dog", "frog"), per_class=2)
    monkeypatch.setenv("CNNZOO_DATA", str(data))
    mnist = build_data(cfg(type="mnist"), device=CPU, seed=0)
    folder = build_data(cfg(type="imagefolder", folder="cifar10-jpeg"), device=CPU, seed=0)
    assert mnist.train.num_samples == 40 and mnist.dataset == "mnist"
    assert folder.class_names == ["cat", "dog", "frog"] and folder.test.num_samples == 6
    assert dataset_root("cifar10", None) == data
    assert dataset_root("imagefolder", None, "cifar10-jpeg") == data / "cifar10-jpeg"
    assert dataset_root("imagefolder", None) == data / "imagefolder"  # the default name
    # an explicit data.root is the ImageFolder itself, as before
    assert dataset_root("imagefolder", str(data / "cifar10-jpeg"), "other") == data / "cifar10-jpeg"


def test_a_data_folder_that_is_an_imagefolder_itself_says_how_to_fix_it(tmp_path, monkeypatch):
    tree = tmp_path / "cifar10-jpeg"
    make_imagefolder(tree)
    monkeypatch.setenv("CNNZOO_DATA", str(tree))
    with pytest.raises(DataError) as err:
        build_data(cfg(type="imagefolder", folder="cifar10-jpeg"), device=CPU, seed=0)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"CNNZOO_DATA={tmp_path} and data.folder=cifar10-jpeg" in msg
    assert f"data.root={tree}" in msg


def test_a_missing_imagefolder_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path))
    with pytest.raises(DataError, match=f"{tmp_path / 'mine'} has no train/ folder"):
        build_data(cfg(type="imagefolder", folder="mine"), device=CPU, seed=0)


@pytest.mark.parametrize("folder", ["a/b", "..", "", 3])
def test_folder_must_name_one_subfolder(folder):
    with pytest.raises(ConfigError, match="data.folder"):
        load_config("resnet18_b64_1x_imagefolder", {"data.folder": folder})
    if isinstance(folder, str) and folder:
        with pytest.raises(ConfigError, match="data.folder"):
            dataset_root("imagefolder", None, folder)


def test_folder_belongs_to_imagefolders_only():
    assert load_config("speedrun/cifar10_94").data.folder == "cifar10-jpeg"
    with pytest.raises(ConfigError, match="remove data.folder"):
        load_config("resnet20_b128_164e_cifar10", {"data.folder": "cifar10-jpeg"})


def test_a_missing_data_set_names_the_imagefolder_copy_beside_it(tmp_path, monkeypatch):
    make_imagefolder(tmp_path / "cifar10-jpeg", classes=("cat", "dog"), per_class=2)
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path))
    with pytest.raises(DataError) as err:
        build_data(cfg(type="cifar10"), device=CPU, seed=0)
    msg = str(err.value)
    assert "cifar10 files not found" in msg and "set data.download=True" in msg
    assert f"{tmp_path} holds the ImageFolder tree cifar10-jpeg/" in msg
    hint = "--cfg-options data.type=imagefolder data.folder=cifar10-jpeg"
    assert hint in msg
    # the overrides it names read the copy
    assert build_data(cfg(type="imagefolder", folder="cifar10-jpeg"), device=CPU, seed=0)

    # download on (the default) and failing: no advice to turn it on, and why it failed
    monkeypatch.setattr("cnnzoo.data.datasets._download", lambda fetch: "URLError: offline")
    with pytest.raises(DataError) as err:
        build_data(cfg(type="cifar10", download=True), device=CPU, seed=0)
    msg = str(err.value)
    assert "set data.download=True" not in msg and "the download failed: URLError" in msg
    assert hint in msg

    # an explicit data.root (not the data folder): the hint names the tree's own path
    monkeypatch.delenv("CNNZOO_DATA")
    with pytest.raises(DataError, match=f"data.root={tmp_path / 'cifar10-jpeg'}"):
        build_data(cfg(type="cifar10", root=str(tmp_path)), device=CPU, seed=0)
