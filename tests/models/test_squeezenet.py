import pytest
import torch
import torchvision.models as tvm

import cnnzoo
from cnnzoo.models import FeatureExtractor
from zoo_helpers import assert_loads_reference


@pytest.mark.parametrize(
    ("name", "count"), [("squeezenet1_0", 1_248_424), ("squeezenet1_1", 1_235_496)]
)
def test_parameter_counts(name, count):
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_loads_torchvision_weights_and_matches_outputs(name):
    x = torch.randn(2, 3, 48, 48)
    assert_loads_reference(name, getattr(tvm, name)(num_classes=10), x, num_classes=10)


@pytest.mark.parametrize(
    ("name", "chans", "sizes"),
    [
        ("squeezenet1_0", [96, 256, 512, 512], [45, 22, 11, 5]),
        ("squeezenet1_1", [64, 128, 256, 512], [47, 23, 11, 5]),
    ],
)
def test_any_channels_and_classes_at_the_true_minimum_size(name, chans, sizes):
    model = cnnzoo.create_model(name, in_chans=1, num_classes=7).eval()
    h, w = model.default_cfg.min_input_size
    with torch.no_grad():
        assert model(torch.randn(2, 1, h, w)).shape == (2, 7)
        with pytest.raises(RuntimeError):
            model.forward_features(torch.randn(2, 1, h - 1, w - 1))
        maps = FeatureExtractor(model)(torch.randn(1, 1, 96, 96))
        assert [m.shape[1] for m in maps] == [f["num_chs"] for f in model.feature_info] == chans
        assert [m.shape[-1] for m in maps] == sizes
        assert model.forward_head(
            model.forward_features(torch.randn(1, 1, h, w)), pre_logits=True
        ).shape == (1, 512)
        model.reset_classifier(0)
        assert model(torch.randn(1, 1, h, w)).shape == (1, 512)


def test_features_only_builds():
    feats = cnnzoo.create_model("squeezenet1_1", features_only=True).eval()
    with torch.no_grad():
        maps = feats(torch.randn(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == [f["num_chs"] for f in feats.feature_info]
