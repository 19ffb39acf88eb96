"""``cnnzoo browse CONFIG``: the augmented training images of a config as a PNG grid."""

from __future__ import annotations

import numpy as np
import torch
from datafiles import make_imagefolder
from matplotlib.image import imread

from cnnzoo.analysis.browse import _label
from cnnzoo.cli import main


def test_browse_writes_a_grid_of_augmented_images(tmp_path, capsys):
    make_imagefolder(tmp_path / "tree", per_class=4, sizes=((20, 20),))
    config = tmp_path / "flips.py"
    config.write_text(
        "_base_ = ['cnnzoo::resnet18_b64_1x_imagefolder.py']\n"
        f"data = dict(root={str(tmp_path / 'tree')!r}, image_size=32, loader='device', "
        "val_split=0.0, train=dict(pipeline=[dict(type='RandomHorizontalFlip'), "
        "dict(type='RandomCrop', size=32, padding=4)]))\n"
    )
    out = tmp_path / "grid.png"
    argv = ["browse", str(config), "--images", "6", "--output", str(out)]
    assert main(argv) == 0
    assert f"6 augmented training images written to {out}" in capsys.readouterr().out
    pixels = imread(out)
    assert pixels.shape[0] > 200 and np.std(pixels) > 0.05
    assert main([*argv[:3], "0"]) == 2  # --images 0
    assert "--images must be in [1, 256]" in capsys.readouterr().err


def test_mixed_targets_name_both_classes():
    names = ["cat", "dog", "frog"]
    assert _label(torch.tensor(2), names) == "frog"
    assert _label(torch.tensor([0.0, 1.0, 0.0]), names) == "dog"
    assert _label(torch.tensor([0.7, 0.0, 0.3]), names) == "cat 70% + frog 30%"
