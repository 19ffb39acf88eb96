import pytest
import torch
import torch.nn as nn
import torchvision

import cnnzoo
from cnnzoo.layers import DropPath, SqueezeExcite
from cnnzoo.models.efficientnet import checkpoint_filter_fn
from zoo_helpers import assert_loads_reference

# torchvision's num_params (EfficientNet_B*_Weights.meta).
PUBLISHED = {
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
}
# Tan & Le 2019: input resolution and dropout of B0..B7.
RESOLUTION = dict(zip(sorted(PUBLISHED), (224, 240, 260, 300, 380, 456, 528, 600), strict=True))
DROPOUT = dict(zip(sorted(PUBLISHED), (0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5), strict=True))


def meta_pair(name: str) -> tuple[nn.Module, nn.Module]:
    with torch.device("meta"):
        return cnnzoo.create_model(name), torchvision.models.get_model(name)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_and_layout_equal_torchvision(name):
    ours, theirs = meta_pair(name)
    assert sum(p.numel() for p in ours.parameters()) == PUBLISHED[name]
    mapped = checkpoint_filter_fn(theirs.state_dict(), ours)
    assert {k: v.shape for k, v in mapped.items()} == {
        k: v.shape for k, v in ours.state_dict().items()
    }
    # BatchNorm settings: PyTorch defaults for B0..B4, TensorFlow's for the ported B5..B7.
    bn = lambda m: {(b.eps, b.momentum) for b in m.modules() if isinstance(b, nn.BatchNorm2d)}  # noqa: E731
    assert bn(ours) == bn(theirs)
    # Stochastic depth rises linearly from 0 to 0.2 * (n - 1) / n, block by block.
    ours_sd = [
        b.drop_path.drop_prob for b in ours.modules() if hasattr(b, "has_skip") and b.has_skip
    ]
    theirs_sd = [
        b.stochastic_depth.p
        for b in theirs.modules()
        if hasattr(b, "use_res_connect") and b.use_res_connect
    ]
    assert ours_sd == pytest.approx(theirs_sd)
    assert ours.head.drop.p == theirs.classifier[0].p == DROPOUT[name]
    assert ours.default_cfg.input_size == (3, RESOLUTION[name], RESOLUTION[name])


def check_same_outputs_as_torchvision(name: str) -> None:
    assert_loads_reference(name, torchvision.models.get_model(name), torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_b5"])
def test_same_outputs_as_torchvision(name):
    check_same_outputs_as_torchvision(name)


def test_mbconv_blocks_have_se_on_a_quarter_of_the_block_input():
    with torch.device("meta"):
        model = cnnzoo.create_model("efficientnet_b0")
    blocks = [b for stage in model.features[1:-1] for b in stage]
    assert len(blocks) == 16
    assert all(
        isinstance(b.se, SqueezeExcite) and isinstance(b.conv_dw.act, nn.SiLU) for b in blocks
    )
    first, second = blocks[0], blocks[1]
    assert first.se.fc1.out_channels == 32 // 4 and second.se.fc1.out_channels == 16 // 4
    assert second.conv_pw.conv.out_channels == 96  # expansion 6 of 16 channels
    assert [b.conv_dw.conv.kernel_size[0] for b in blocks[3:5]] == [5, 5]


def test_compound_scaling_of_depth_and_width():
    with torch.device("meta"):
        b7 = cnnzoo.create_model("efficientnet_b7")
    # ceil(repeats * 3.1) per stage; widths 32*2=64 stem, 320*2=640 last stage, 4x that in the head
    assert [len(s) for s in b7.features[1:-1]] == [4, 7, 7, 10, 10, 13, 4]
    assert b7.features[0].conv.out_channels == 64
    assert b7.num_features == 2560


def test_interface_small_input_features_and_stochastic_depth():
    model = cnnzoo.create_model("efficientnet_b0", num_classes=5, in_chans=1)
    assert any(isinstance(m, DropPath) for m in model.modules())
    x = torch.randn(2, 1, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 1, 1)).shape == (1, 5)
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 1280)
    model.reset_classifier(0)
    assert model.get_classifier().__class__ is nn.Identity
    feats = cnnzoo.create_model("efficientnet_b0", features_only=True, out_indices=(1, 4)).eval()
    with torch.no_grad():
        maps = feats(torch.randn(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(24, 16, 16), (1280, 2, 2)]


def test_classifier_init_is_the_reference_codes():
    """TensorFlow's and torchvision's dense init: uniform in +-1/sqrt(classes), bias zero."""
    fc = cnnzoo.create_model("efficientnet_b0", num_classes=100).head.fc
    bound = 100**-0.5
    assert fc.weight.abs().max() <= bound and fc.weight.abs().max() > 0.99 * bound
    assert fc.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.01)
    assert not fc.bias.any()
