import pytest
import timm
import torch
import torch.nn as nn

import cnnzoo
from cnnzoo.errors import ConfigError
from cnnzoo.models.repvgg import RepVGGBlock, checkpoint_filter_fn
from zoo_helpers import assert_loads_reference, randomize_all

# Paper Table 3: parameters of the deployed (fused) networks, in millions, truncated to 2 decimals.
PAPER_DEPLOYED_M = {
    "repvgg_a0": 8.30,
    "repvgg_a1": 12.78,
    "repvgg_a2": 25.49,
    "repvgg_b0": 14.33,
    "repvgg_b1": 51.82,
    "repvgg_b1g2": 41.36,
    "repvgg_b1g4": 36.12,
    "repvgg_b2": 80.31,
    "repvgg_b2g4": 55.77,
    "repvgg_b3": 110.96,
    "repvgg_b3g4": 75.62,
}
# Training-form parameter counts (mmpretrain's model zoo lists the same for B1g2, 45.78M).
TRAIN_PARAMS = {"repvgg_b1g2": 45_782_376, "repvgg_b3g2": 96_911_848}


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("name", sorted(cnnzoo.list_models("repvgg*")))
def test_param_counts_training_and_deployed(name):
    with torch.device("meta"):
        m = cnnzoo.create_model(name).eval()
        train = _count(m)
        if name in TRAIN_PARAMS:
            assert train == TRAIN_PARAMS[name]
        else:
            assert train == _count(timm.create_model(m.default_cfg.timm))
        m.reparameterize()
    deployed = _count(m)
    assert deployed < train
    if name in PAPER_DEPLOYED_M:
        assert int(deployed / 1e4) / 100 == pytest.approx(PAPER_DEPLOYED_M[name])


def test_grouped_layers_are_the_papers():
    m = cnnzoo.create_model("repvgg_b1g4", num_classes=10)
    blocks = [m.stem] + [b for stage in m.stages for b in stage]
    grouped = [i for i, b in enumerate(blocks) if b.groups > 1]
    assert grouped == list(range(2, 27, 2))
    assert blocks[2].conv3x3.conv.groups == blocks[2].conv1x1.conv.groups == 4


@pytest.mark.parametrize("name", ["repvgg_a0", "repvgg_b1g4"])
def test_fused_model_matches_training_form(name):
    m = randomize_all(cnnzoo.create_model(name, num_classes=10)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = m(x)
        assert m.reparameterize() is m
        after = m(x)
    assert all(b.fused is not None for b in m.modules() if isinstance(b, RepVGGBlock))
    assert not any(isinstance(b, nn.BatchNorm2d) for b in m.modules())
    assert _rel_err(after, before) < 1e-5


def test_block_fusion_with_identity_and_groups():
    block = randomize_all(RepVGGBlock(8, 8, stride=1, groups=2)).eval()
    x = torch.randn(2, 8, 7, 7)
    with torch.no_grad():
        before = block(x)
        cnnzoo.reparameterize_model(nn.Sequential(block))
        after = block(x)
    assert block.fused.groups == 2 and block.fused.bias is not None
    assert _rel_err(after, before) < 1e-5


@pytest.mark.parametrize("name", ["repvgg_a0", "repvgg_b1g4"])
def test_loads_timm_state_dict_and_matches_outputs(name):
    ref = timm.create_model(name, num_classes=10)
    assert_loads_reference(name, ref, torch.randn(2, 3, 32, 32), num_classes=10)


def test_fused_weights_load_into_deploy_form(tmp_path):
    ref = randomize_all(timm.create_model("repvgg_a0", num_classes=10)).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = ref(x)
        ref = timm.utils.reparameterize_model(ref)  # timm's own fusion, timm's key names
    path = tmp_path / "fused.pt"
    torch.save(ref.state_dict(), path)
    ours = cnnzoo.create_model(
        "repvgg_a0", num_classes=10, deploy=True, pretrained=str(path)
    ).eval()
    assert not any(isinstance(b, nn.BatchNorm2d) for b in ours.modules())
    with torch.no_grad():
        assert _rel_err(ours(x), expected) < 1e-5


def test_filter_maps_official_keys():
    m = cnnzoo.create_model("repvgg_a0", num_classes=10)
    official = {
        "stage0.rbr_dense.conv.weight": 0,
        "stage1.1.rbr_identity.running_mean": 1,
        "stage4.0.rbr_1x1.bn.bias": 2,
        "linear.weight": 3,
    }
    mapped = checkpoint_filter_fn(official, m)
    assert set(mapped) == {
        "stem.conv3x3.conv.weight",
        "stages.0.1.identity.running_mean",
        "stages.3.0.conv1x1.bn.bias",
        "head.fc.weight",
    }
    assert set(mapped) <= set(m.state_dict())


def test_interface_features_and_head():
    m = cnnzoo.create_model("repvgg_a0", num_classes=7, in_chans=1).eval()
    x = torch.randn(1, 1, 32, 32)
    assert m(x).shape == (1, 7)
    assert m.forward_head(m.forward_features(x), pre_logits=True).shape == (1, 1280)
    m.reset_classifier(0)
    assert m(x).shape == (1, 1280) and isinstance(m.get_classifier(), nn.Identity)
    f = cnnzoo.create_model("repvgg_a0", in_chans=1, features_only=True).eval()
    maps = f(x)
    assert [t.shape[1] for t in maps] == [48, 48, 96, 192, 1280]
    assert [32 // t.shape[-1] for t in maps] == [i["reduction"] for i in f.feature_info]


def test_bad_architecture_arguments_are_named():
    with pytest.raises(ConfigError, match="five stages"):
        cnnzoo.create_model("repvgg_a0", depths=(1, 2, 4))
    with pytest.raises(ConfigError, match="groups=5"):
        cnnzoo.create_model("repvgg_a0", groups=5)


def test_min_input_size_is_true():
    m = cnnzoo.create_model("repvgg_a0", num_classes=3).eval()
    h, w = m.default_cfg.min_input_size
    assert m(torch.randn(1, 3, h, w)).shape == (1, 3)


@pytest.mark.parametrize("deploy", [False, True])
def test_rgb_weights_adapt_every_stem_branch_to_one_channel(deploy, tmp_path):
    rgb = cnnzoo.create_model("repvgg_a0", num_classes=10, deploy=deploy)
    torch.save(rgb.state_dict(), tmp_path / "rgb.pth")
    gray = cnnzoo.create_model(
        "repvgg_a0", num_classes=10, in_chans=1, deploy=deploy, pretrained=str(tmp_path / "rgb.pth")
    ).eval()
    stem_convs = [m for m in gray.stem.modules() if isinstance(m, nn.Conv2d)]
    assert stem_convs and all(c.weight.shape[1] == 1 for c in stem_convs)
    # a gray image is an RGB image with equal channels: the adapted stem sees the same input
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            gray(x), rgb.eval()(x.expand(-1, 3, -1, -1)), atol=1e-4, rtol=1e-4
        )
