import pytest
import timm
import torch
import torch.nn as nn
import torchvision

import cnnzoo
from cnnzoo.layers import SqueezeExcite
from cnnzoo.models.mobilenetv2 import InvertedResidual
from zoo_helpers import assert_loads_reference, count_params

# torchvision's num_params for mobilenet_v2; the width variants equal torchvision's
# mobilenet_v2(width_mult=w) and timm's mobilenetv2_050 / _140 (1.97M, 6.11M).
PARAMS = {
    "mobilenet_v2": 3_504_872,
    "mobilenet_v2_050": 1_968_680,
    "mobilenet_v2_075": 2_636_424,
    "mobilenet_v2_140": 6_108_776,
}
WIDTHS = {
    "mobilenet_v2": 1.0,
    "mobilenet_v2_050": 0.5,
    "mobilenet_v2_075": 0.75,
    "mobilenet_v2_140": 1.4,
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count_equals_torchvision(name):
    assert count_params(name) == PARAMS[name]
    with torch.device("meta"):
        reference = torchvision.models.mobilenet_v2(width_mult=WIDTHS[name])
    assert sum(p.numel() for p in reference.parameters()) == PARAMS[name]


def check_same_outputs_as_torchvision(name: str) -> None:
    """BN outputs scaled by 8, so that the ReLU6 clamps bind (a ReLU would give other outputs);
    the check counts that they do."""
    reference = torchvision.models.mobilenet_v2(width_mult=WIDTHS[name])
    clamped = []
    for m in reference.modules():
        if isinstance(m, nn.ReLU6):
            m.register_forward_pre_hook(lambda _m, args: clamped.append((args[0] > 6).sum()))
    assert_loads_reference(name, reference, torch.randn(2, 3, 32, 32), bn_scale=8)
    assert sum(clamped) > 100


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v2_050", "mobilenet_v2_140"])
def test_same_outputs_as_torchvision(name):
    check_same_outputs_as_torchvision(name)


@pytest.mark.parametrize(
    ("name", "timm_name"),
    [("mobilenet_v2", "mobilenetv2_100"), ("mobilenet_v2_050", "mobilenetv2_050")],
)
def test_same_outputs_as_timm(name, timm_name):
    assert cnnzoo.get_model_entry(name).cfg.timm == timm_name
    assert_loads_reference(name, timm.create_model(timm_name), torch.randn(2, 3, 32, 32))


def test_width_rounding_and_last_conv():
    def widths(name):
        with torch.device("meta"):
            model = cnnzoo.create_model(name)
        return (
            [model.features[0].conv.out_channels]
            + [b.conv_pwl.conv.out_channels for b in model.features[1:-1]]
            + [model.num_features]
        )

    assert widths("mobilenet_v2_050")[:3] == [16, 8, 16]  # 32*0.5, 16*0.5, 24*0.5=12 -> 16
    assert widths("mobilenet_v2_050")[-1] == 1280  # the last conv stays 1280 below width 1
    assert widths("mobilenet_v2_140")[-1] == 1792
    assert all(w % 8 == 0 for w in widths("mobilenet_v2_075"))


def test_inverted_residual_skip_only_between_equal_narrow_ends():
    same = InvertedResidual(24, 24, 1, 6)
    assert same.has_skip and same.conv_pw.conv.out_channels == 144
    assert not InvertedResidual(24, 32, 1, 6).has_skip
    assert not InvertedResidual(24, 24, 2, 6).has_skip
    assert isinstance(InvertedResidual(32, 16, 1, 1).conv_pw, nn.Identity)  # t=1: no expansion
    assert isinstance(same.conv_pwl.act, nn.Identity)  # linear bottleneck


def test_optional_squeeze_excite():
    model = cnnzoo.create_model("mobilenet_v2", num_classes=10, se_ratio=0.25).eval()
    ses = [b.se for b in model.features[1:-1]]
    assert all(isinstance(se, SqueezeExcite) for se in ses)
    assert ses[1].fc1.out_channels == 16 // 4  # a quarter of the block's input channels
    assert count_params("mobilenet_v2", se_ratio=0.25) > PARAMS["mobilenet_v2"]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_torchvision_weights_for_other_channels_and_classes(tmp_path):
    path = tmp_path / "tv.pth"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), path)
    with pytest.warns(UserWarning, match="class count"):
        model = cnnzoo.create_model(
            "mobilenet_v2", pretrained=str(path), num_classes=10, in_chans=1
        )
    assert model.features[0].conv.weight.shape[1] == 1
    assert model.eval()(torch.randn(1, 1, 32, 32)).shape == (1, 10)


def test_smallest_input_and_features_only():
    model = cnnzoo.create_model("mobilenet_v2", num_classes=4).eval()
    assert model.default_cfg.min_input_size == (1, 1)
    feats = cnnzoo.create_model("mobilenet_v2", features_only=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 1, 1)).shape == (1, 4)
        maps = feats(torch.randn(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == [16, 24, 32, 96, 1280]
    assert [64 // m.shape[-1] for m in maps] == [2, 4, 8, 16, 32]


def test_classifier_interface_and_dropout():
    model = cnnzoo.create_model(
        "mobilenet_v2_050", num_classes=3, drop_rate=0.5, drop_path_rate=0.1
    )
    assert model.head.drop.p == 0.5
    x = torch.randn(2, 3, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 1280)
    assert model.get_classifier().out_features == 3
    model.reset_classifier(0)
    assert model(x).shape == (2, 1280)


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0", "mobilenetv1_100"])
def test_depthwise_convs_are_initialised_over_one_groups_fan_out(name):
    """TensorFlow's and timm's init: std sqrt(2 / (k * k * out / groups)), sqrt(2/9) for a
    depthwise 3x3, so that each depthwise layer does not shrink the activations by sqrt(C)
    (the eval-mode features at init were 1e-15 to 1e-19 with PyTorch's fan-out)."""
    model = cnnzoo.create_model(name)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    dw = [c for c in convs if c.groups == c.in_channels > 1 and c.kernel_size == (3, 3)]
    assert dw
    weights = torch.cat([c.weight.detach().flatten() for c in dw])
    assert weights.std().item() == pytest.approx((2 / 9) ** 0.5, rel=0.05)
    with torch.no_grad():
        assert model.eval().forward_features(torch.randn(2, 3, 64, 64)).abs().max() > 1e-6
