import pytest
import timm
import torch

import cnnzoo
from cnnzoo.models import FeatureExtractor
from zoo_helpers import assert_loads_reference


def test_parameter_count():
    with torch.device("meta"):
        model = cnnzoo.create_model("xception")
    assert sum(p.numel() for p in model.parameters()) == 22_855_952  # the paper's 22.8M
    assert len(model.middle_flow) == 8
    assert len({id(b.seps[0].dw.weight) for b in model.middle_flow}) == 8  # each its own weights


def check_same_outputs_as_timm() -> None:
    ref = timm.create_model("legacy_xception", num_classes=10)
    assert_loads_reference("xception", ref, torch.randn(2, 3, 32, 32), num_classes=10)


def test_loads_timm_legacy_xception_weights_and_matches_outputs():
    check_same_outputs_as_timm()


def test_any_channels_and_classes_at_the_true_minimum_size():
    model = cnnzoo.create_model("xception", in_chans=1, num_classes=7).eval()
    h, w = model.default_cfg.min_input_size
    with torch.no_grad():
        assert model(torch.randn(2, 1, h, w)).shape == (2, 7)
        with pytest.raises(RuntimeError):
            model.forward_features(torch.randn(2, 1, h - 1, w - 1))
        maps = FeatureExtractor(model)(torch.randn(1, 1, 67, 67))
        assert (
            [m.shape[1] for m in maps]
            == [f["num_chs"] for f in model.feature_info]
            == [64, 128, 256, 728, 2048]
        )
        assert [m.shape[-1] for m in maps] == [31, 16, 8, 4, 2]
        model.reset_classifier(0)
        assert model(torch.randn(1, 1, h, w)).shape == (1, 2048)


def test_features_only_builds():
    feats = cnnzoo.create_model("xception", features_only=True, out_indices=[3]).eval()
    with torch.no_grad():
        (y,) = feats(torch.randn(1, 3, 32, 32))
    assert y.shape[1] == 728
