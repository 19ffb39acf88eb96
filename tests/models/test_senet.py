import pytest
import timm
import torch

import cnnzoo
from cnnzoo.layers import SqueezeExcite
from zoo_helpers import assert_loads_reference

# timm's num_params (SE-ResNet-50: 28.09M in Hu et al. 2018, Table 2); se_resnet18/34 are
# smaller than timm's seresnet18/34 (11,779,624 / 21,960,416) because their 64-channel
# blocks keep the paper's 64/16 = 4 reduced units where timm rounds up to 8.
COUNTS = {
    "se_resnet18": 11_778_592,
    "se_resnet34": 21_958_868,
    "se_resnet50": 28_088_024,
    "se_resnet101": 49_326_872,
    "se_resnet152": 66_821_848,
    "se_resnext50_32x4d": 27_559_896,
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts(name):
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == COUNTS[name]


def test_se_resnet50_matches_the_paper():
    with torch.device("meta"):
        model = cnnzoo.create_model("se_resnet50")
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 28.09


def check_same_outputs_as_timm(name: str) -> None:
    ref = cnnzoo.get_model_entry(name).cfg.timm
    assert_loads_reference(name, timm.create_model(ref), torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize(
    "name, ref", [("se_resnet50", "seresnet50"), ("se_resnext50_32x4d", "seresnext50_32x4d")]
)
def test_timm_state_dict_loads_and_gives_the_same_outputs(name, ref):
    assert cnnzoo.get_model_entry(name).cfg.timm == ref
    check_same_outputs_as_timm(name)


def test_every_block_has_an_se_unit_on_its_residual_branch():
    model = cnnzoo.create_model("se_resnet50")
    units = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    assert len(units) == 3 + 4 + 6 + 3
    assert model.layer1[0].se.fc1.out_channels == 256 // 16
    assert model.layer4[0].se.fc1.out_channels == 2048 // 16


def test_se_ratio_sets_the_reduction():
    model = cnnzoo.create_model("se_resnet18", se_ratio=1 / 8)
    assert model.layer1[0].se.fc1.out_channels == 8
    assert cnnzoo.create_model("se_resnet18").layer1[0].se.fc1.out_channels == 4


def test_features_only_and_small_inputs():
    features = cnnzoo.create_model("se_resnet18", features_only=True, in_chans=1).eval()
    with torch.no_grad():
        maps = features(torch.randn(1, 1, 32, 32))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 8, 8), (128, 4, 4), (256, 2, 2), (512, 1, 1)]
    model = cnnzoo.create_model("se_resnet18", num_classes=3).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
