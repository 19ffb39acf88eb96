import pytest
import torch
import torch.nn as nn
import torchvision.models as tvm

import cnnzoo
from cnnzoo.models import FeatureExtractor, get_model_entry
from zoo_helpers import assert_loads_reference


def _params(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in cnnzoo.create_model(name, **kwargs).parameters())


@pytest.mark.parametrize(
    ("name", "count"), [("alexnet", 61_100_840), ("alexnet_paper", 60_965_224)]
)
def test_parameter_counts(name, count):
    assert _params(name) == count


def test_loads_torchvision_weights_and_matches_outputs():
    x = torch.randn(2, 3, 63, 63)
    assert_loads_reference("alexnet", tvm.alexnet(num_classes=10), x, num_classes=10)


def test_paper_variant_follows_the_paper():
    model = cnnzoo.create_model("alexnet_paper").eval()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    lrn = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    assert [(n.size, n.alpha, n.beta, n.k) for n in lrn] == [(5, 1e-4, 0.75, 2.0)] * 2
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    # Paper init: biases 1 in conv2, conv4, conv5 and the hidden FC layers.
    assert [c.bias[0].item() for c in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    # 224x224 gives the paper's 55x55 first layer and 6x6 last map.
    with torch.no_grad():
        assert convs[0](torch.randn(1, 3, 224, 224)).shape[-1] == 55
        assert model.forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 256, 6, 6)


@pytest.mark.parametrize("name", ["alexnet", "alexnet_paper"])
def test_any_channels_and_classes_at_the_true_minimum_size(name):
    h, w = get_model_entry(name).cfg.min_input_size
    model = cnnzoo.create_model(name, in_chans=1, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, h, w)).shape == (2, 7)
        with pytest.raises(RuntimeError):
            model.forward_features(torch.randn(2, 1, h - 1, w - 1))
        maps = FeatureExtractor(model)(torch.randn(1, 1, 127, 127))
        convs = [c.out_channels for c in model.features if isinstance(c, nn.Conv2d)]
        assert [m.shape[1] for m in maps] == [f["num_chs"] for f in model.feature_info]
        assert [f["num_chs"] for f in model.feature_info] == [convs[0], convs[1], convs[4]]
        assert [m.shape[-1] for m in maps] == [15, 7, 3]
        model.reset_classifier(0)
        assert model(torch.randn(1, 1, h, w)).shape == (1, model.num_features)
    model.reset_classifier(5)
    assert model.get_classifier().out_features == 5


def test_features_only_builds():
    feats = cnnzoo.create_model("alexnet", features_only=True, out_indices=[2]).eval()
    with torch.no_grad():
        (y,) = feats(torch.randn(1, 3, 63, 63))
    assert y.shape == (1, 256, 1, 1)
