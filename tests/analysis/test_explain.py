"""Explaining models in pictures: Grad-CAM and occlusion find planted evidence, and every
family can be explained (RepVGG fused, MLP-Mixer's tokens, GoogLeNet with aux heads) in PNGs
of the right size that are not blank. The command on a trained run: tests/engine."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import cnnzoo
from cnnzoo.analysis.explain import (
    FILTER_CELL,
    MAP_CELL,
    PANEL,
    CamModel,
    Target,
    attribution_maps,
    explain,
    first_conv,
    stage_maps,
)
from cnnzoo.analysis.plots import EXPLAIN_DPI as DPI
from cnnzoo.models import ClassifierModel

pytest.importorskip("captum")


def _square_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise; in odd images (class 1) a bright 6x6 square at a random place in a random
    quadrant. Returns the images, the classes and the quadrants (0 top-left .. 3 bottom-right)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    quadrant = torch.randint(0, 4, (n,), generator=g)
    x = 0.5 * torch.randn(n, 1, 32, 32, generator=g)
    for i in range(n):
        r, q = divmod(int(quadrant[i]), 2)
        dy, dx = torch.randint(1, 9, (2,), generator=g).tolist()
        top, left = 16 * r + dy, 16 * q + dx
        x[i, :, top : top + 6, left : left + 6] += 2.0 * float(y[i])
    return x, y, quadrant


def _quadrant_share(maps: torch.Tensor) -> torch.Tensor:
    """(N, 32, 32) -> (N, 4): the share of each map in each quadrant."""
    q = maps.reshape(-1, 2, 16, 2, 16).sum(dim=(2, 4)).reshape(-1, 4)
    return q / q.sum(1, keepdim=True).clamp(min=1e-12)


class SquareNet(ClassifierModel):
    """Two convs, global average pooling, linear: it can only tell whether a square is there,
    not where, so where its evidence lies is for Grad-CAM and occlusion to find."""

    def __init__(self) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.num_features, self.feature_info = 2, 1, 16, []
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.fc = nn.Linear(16, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(16, num_classes)


@pytest.fixture(scope="module")
def square_net():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SquareNet()
    x, y, _ = _square_images(256, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(40):
        batch = slice(64 * (step % 4), 64 * (step % 4 + 1))
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    yield model.eval()
    torch.set_num_threads(threads)


def test_both_maps_peak_in_the_quadrant_where_the_square_is(square_net):
    x, y, quadrant = _square_images(24, seed=2)
    x, y, quadrant = x[y == 1], y[y == 1], quadrant[y == 1]
    cam = CamModel(square_net)
    with torch.no_grad():
        assert (cam(x).argmax(1) == 1).all(), "the planted task was not learnt"
    for method, maps in attribution_maps(cam, x, y).items():
        assert maps.shape == (len(y), 32, 32) and maps.amin() >= 0 and maps.amax() <= 1
        share = _quadrant_share(maps)
        assert (share.argmax(1) == quadrant).all(), f"{method} looks elsewhere: {share}"
        assert share[torch.arange(len(y)), quadrant].min() > 0.5, method


FAMILIES = [
    ("resnet20", {}, 32),
    ("repvgg_a0", {"deploy": True}, 32),
    ("mixer_s16_224", {"img_size": 64, "num_blocks": 2}, 64),
    ("googlenet", {"aux_logits": True}, 32),
]


@pytest.mark.parametrize("name, kwargs, size", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_is_explained_in_pictures(name, kwargs, size, tmp_path):
    torch.manual_seed(0)
    model = cnnzoo.create_model(name, num_classes=3, **kwargs).eval()
    x = torch.randn(1, 3, size, size)
    cam = CamModel(model)
    with torch.no_grad():  # the wrapper Grad-CAM reads computes what the model does
        torch.testing.assert_close(cam(x), model(x))
    stages = stage_maps(cam, x)
    rows = -(-min(first_conv(model).out_channels, 64) // 8)
    paths = explain(
        model, x, names=["img"], class_names=["a", "b", "c"], mean=[0.5] * 3, std=[0.25] * 3,
        out_dir=tmp_path, target=None,
    )  # fmt: skip
    assert [p.name for p in paths] == ["filters.png", "img.cam.png", "img.stages.png"]
    sizes = {
        "img.cam.png": (3 * PANEL * DPI, PANEL * DPI),
        "img.stages.png": (8 * MAP_CELL * DPI, (len(stages) + 0.3) * MAP_CELL * DPI),
        "filters.png": (8 * FILTER_CELL * DPI, (rows + 1) * FILTER_CELL * DPI),
    }
    for path in paths:
        with Image.open(path) as img:
            assert img.size == tuple(round(s) for s in sizes[path.name]), path.name
            pixels = np.asarray(img.convert("L"), dtype=np.float64)
        assert pixels.std() > 10, f"{path.name} is (nearly) blank"


def test_a_chosen_class_adds_its_overlays(square_net, tmp_path):
    x, _, _ = _square_images(1, seed=3)
    paths = explain(
        square_net, x, names=["q"], class_names=["noise", "square"], mean=[0.0], std=[1.0],
        out_dir=tmp_path, target=Target(1, "square"),
    )  # fmt: skip
    with Image.open(tmp_path / "q.cam.png") as img:  # input, then 2 methods x 2 classes
        assert img.size == (round(5 * PANEL * DPI), round(PANEL * DPI))
    assert [p.name for p in paths] == ["filters.png", "q.cam.png", "q.stages.png"]
