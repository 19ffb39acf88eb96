import pytest
import timm
import torch
import torch.nn as nn

import cnnzoo
from cnnzoo.errors import UnknownNameError
from cnnzoo.models import FeatureExtractor
from zoo_helpers import assert_loads_reference

# Exact counts at 1000 classes, BN included; the paper (Tables 6/7) rounds them to 4.2M, 2.6M,
# 1.3M and 0.5M.
COUNTS = {
    "mobilenetv1_100": (4_231_976, 4.2e6),
    "mobilenetv1_075": (2_585_560, 2.6e6),
    "mobilenetv1_050": (1_331_592, 1.3e6),
    "mobilenetv1_025": (470_072, 0.5e6),
}


@pytest.mark.parametrize(("name", "counts"), COUNTS.items())
def test_parameter_counts(name, counts):
    exact, paper = counts
    with torch.device("meta"):
        n = sum(p.numel() for p in cnnzoo.create_model(name).parameters())
    assert n == exact
    assert round(n / 1e5) / 10 == paper / 1e6


def test_timm_counts_the_same():
    with torch.device("meta"):
        ref = timm.create_model("mobilenetv1_100")
    assert sum(p.numel() for p in ref.parameters()) == COUNTS["mobilenetv1_100"][0]


def test_loads_timm_weights_and_matches_outputs():
    ref = timm.create_model("mobilenetv1_100", num_classes=10)
    x = torch.randn(2, 3, 32, 32)
    assert_loads_reference("mobilenetv1_100", ref, x, num_classes=10, act="relu6")


def test_paper_uses_relu_and_unknown_activation_is_named():
    with torch.device("meta"):
        model = cnnzoo.create_model("mobilenetv1_100")
        assert isinstance(model.blocks[0][0].act, nn.ReLU)
        with pytest.raises(UnknownNameError, match="relu6"):
            cnnzoo.create_model("mobilenetv1_100", act="relu7")


@pytest.mark.parametrize(("name", "last"), [("mobilenetv1_025", 256), ("mobilenetv1_075", 768)])
def test_any_channels_and_classes_at_the_true_minimum_size(name, last):
    model = cnnzoo.create_model(name, in_chans=1, num_classes=7).eval()
    assert model.default_cfg.min_input_size == (1, 1)
    with torch.no_grad():
        assert model(torch.randn(2, 1, 1, 1)).shape == (2, 7)
        maps = FeatureExtractor(model)(torch.randn(1, 1, 64, 64))
        assert [m.shape[1] for m in maps] == [f["num_chs"] for f in model.feature_info]
        assert maps[-1].shape[1] == last == model.num_features
        assert [
            m.shape[-1] * f["reduction"] for m, f in zip(maps, model.feature_info, strict=True)
        ] == [64] * 5
        model.reset_classifier(0)
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, last)


def test_features_only_builds():
    feats = cnnzoo.create_model("mobilenetv1_025", features_only=True, out_indices=[0, 4]).eval()
    with torch.no_grad():
        maps = feats(torch.randn(1, 3, 32, 32))
    assert [m.shape for m in maps] == [(1, 16, 16, 16), (1, 256, 1, 1)]
