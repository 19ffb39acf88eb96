import pytest
import torch
import torchvision.models as tvm

import cnnzoo
from cnnzoo.models import FeatureExtractor
from zoo_helpers import assert_loads_reference

# torchvision's counts (ImageNet, 1000 classes).
COUNTS = {
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248,
}


@pytest.mark.parametrize(("name", "count"), COUNTS.items())
def test_parameter_counts_and_names_match_torchvision(name, count):
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
        ref = getattr(tvm, name)()
    assert sum(p.numel() for p in model.parameters()) == count
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }


@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn"])
def test_loads_torchvision_weights_and_matches_outputs(name):
    ref = getattr(tvm, name)(num_classes=10)
    assert_loads_reference(name, ref, torch.randn(2, 3, 32, 32), num_classes=10)


def test_any_channels_and_classes_at_the_true_minimum_size():
    model = cnnzoo.create_model("vgg11", in_chans=1, num_classes=7).eval()
    h, w = model.default_cfg.min_input_size
    assert (h, w) == (32, 32)
    with torch.no_grad():
        assert model(torch.randn(2, 1, h, w)).shape == (2, 7)
        with pytest.raises(RuntimeError):
            model.forward_features(torch.randn(2, 1, h - 1, w - 1))
        maps = FeatureExtractor(model)(torch.randn(1, 1, 64, 64))
        assert (
            [m.shape[1] for m in maps]
            == [f["num_chs"] for f in model.feature_info]
            == [64, 128, 256, 512, 512]
        )
        assert [
            m.shape[-1] * f["reduction"] for m, f in zip(maps, model.feature_info, strict=True)
        ] == [64] * 5
        model.reset_classifier(0)
        assert model(torch.randn(1, 1, h, w)).shape == (1, 4096)


def test_drop_rate_reaches_the_classifier():
    with torch.device("meta"):
        model = cnnzoo.create_model("vgg11", drop_rate=0.3)
    assert [m.p for m in model.classifier if isinstance(m, torch.nn.Dropout)] == [0.3, 0.3]
