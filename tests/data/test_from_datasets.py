"""Training on torch datasets of one's own: ``cnnzoo.from_datasets`` -> ``train(data=...)``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

import cnnzoo
from cnnzoo.errors import DataError


class Squares(Dataset):
    """Label k: a bright square at row 3k; ``kind`` is how the image comes (as in torchvision)."""

    def __init__(self, n: int, kind: str, size: int = 32) -> None:
        self.n, self.kind, self.size = n, kind, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        label = i % 10
        pixels = np.zeros((self.size, self.size), np.uint8)
        pixels[3 * label : 3 * label + 3, :3] = 255
        if self.kind == "pil":
            return Image.fromarray(pixels), label
        return torch.from_numpy(pixels)[None].float() / 255, label  # ToTensor's floats


def test_a_bundle_of_datasets_trains(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    bundle = cnnzoo.from_datasets(
        Squares(60, "pil"),
        test=Squares(20, "tensor"),
        batch_size=16,
        pipeline=[dict(type="RandomHorizontalFlip")],
    )
    assert (bundle.num_classes, bundle.in_chans, bundle.image_size) == (10, 1, (32, 32))
    assert bundle.class_names == [str(i) for i in range(10)] and bundle.val is None
    images, labels = next(iter(bundle.test))
    assert images.shape == (20, 1, 32, 32) and labels.tolist() == [i % 10 for i in range(20)]
    cfg = cnnzoo.load_config(
        "quickstart_lenet5_digits", {"train_cfg.max_epochs": 1, "work_dir": str(tmp_path)}
    )
    result = cnnzoo.train(cfg, data=bundle)
    assert 0 <= result.metrics["test/top1"] <= 100


def test_datasets_that_cannot_be_read_say_why():
    with pytest.raises(DataError, match="the val images are"):
        cnnzoo.from_datasets(Squares(10, "pil"), val=Squares(10, "pil", size=28))
    with pytest.raises(DataError, match="the train dataset is empty"):
        cnnzoo.from_datasets(Squares(0, "pil"))
    with pytest.raises(DataError, match="3 class names for labels up to 9"):
        cnnzoo.from_datasets(Squares(10, "pil"), class_names=["a", "b", "c"])
