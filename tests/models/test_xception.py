import pytest
import timm
import torch
import torch.nn as nn

import cnnzoo
from cnnzoo.models import FeatureExtractor


def test_parameter_count():
    with torch.device("meta"):
        model = cnnzoo.create_model("xception")
    assert sum(p.numel() for p in model.parameters()) == 22_855_952  # the paper's 22.8M
    assert len(model.middle_flow) == 8
    assert len({id(b.seps[0].dw.weight) for b in model.middle_flow}) == 8  # each its own weights


def test_loads_timm_legacy_xception_weights_and_matches_outputs(tmp_path):
    torch.manual_seed(0)
    ref = timm.create_model("legacy_xception", num_classes=10).eval()
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    path = tmp_path / "legacy_xception.pt"
    torch.save(ref.state_dict(), path)
    model = cnnzoo.create_model("xception", num_classes=10, pretrained=str(path)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=0)


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
