import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.errors import ConfigError
from cnnzoo.models.shufflenetv1 import ShuffleNetV1, ShuffleUnit

NAMES = [f"shufflenet_v1_g{g}" for g in (1, 2, 3, 4, 8)]
# Measured here (classifier with bias). The authors' code (megvii-model/ShuffleNet-Series,
# ShuffleNetV1/README.md) lists 1.0x g=3: 1.9M, g=8: 2.4M parameters.
MEASURED = dict(zip(NAMES, (1_531_936, 1_733_848, 1_865_728, 1_968_344, 2_434_768), strict=True))
OFFICIAL_MILLIONS = {"shufflenet_v1_g3": 1.9, "shufflenet_v1_g8": 2.4}
# Zhang et al. 2018, Table 1: complexity (MFLOPs = millions of multiply-adds) at 224x224.
PAPER_MFLOPS = dict(zip(NAMES, (143, 140, 137, 133, 137), strict=True))


def meta_model(name: str) -> nn.Module:
    with torch.device("meta"):
        return cnnzoo.create_model(name)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count(name):
    count = sum(p.numel() for p in meta_model(name).parameters())
    assert count == MEASURED[name]
    if name in OFFICIAL_MILLIONS:
        assert round(count / 1e6, 1) == OFFICIAL_MILLIONS[name]


@pytest.mark.parametrize("name", NAMES)
def test_complexity_matches_table_1(name):
    model = meta_model(name)
    with FlopCounterMode(display=False) as counter, torch.device("meta"):
        model(torch.empty(1, 3, 224, 224))
    macs = counter.get_total_flops() / 2 / 1e6
    assert macs == pytest.approx(PAPER_MFLOPS[name], rel=0.02)


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_stage_widths_and_grouping(groups):
    model = meta_model(f"shufflenet_v1_g{groups}")
    widths = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}[groups]
    assert [f["num_chs"] for f in model.feature_info] == [24, widths, 2 * widths, 4 * widths]
    units = [u for stage in model.stages for u in stage]
    assert len(units) == 16
    assert units[0].conv1.conv.groups == 1  # stage 2's first pointwise conv is not grouped
    assert all(u.conv1.conv.groups == groups for u in units[1:])
    assert all(
        u.conv3.conv.groups == groups
        and u.conv1.conv.out_channels * 4 in (widths, 2 * widths, 4 * widths)
        for u in units
    )


def test_stride_two_unit_concatenates_the_pooled_input():
    unit = ShuffleUnit(240, 480, 2, 3).eval()
    x = torch.randn(1, 240, 8, 8)
    with torch.no_grad():
        y = unit(x)
    assert y.shape == (1, 480, 4, 4)
    torch.testing.assert_close(y[:, :240], torch.relu(nn.functional.avg_pool2d(x, 3, 2, 1)))
    residual = ShuffleUnit(480, 480, 1, 3).eval()
    assert residual(y).shape == y.shape


def test_interface_small_input_and_features():
    model = cnnzoo.create_model("shufflenet_v1_g3", num_classes=10, in_chans=1, drop_rate=0.5)
    x = torch.randn(2, 1, 16, 16)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 1, 1)).shape == (1, 10)
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 960)
    model.reset_classifier(0)
    assert model(x).shape == (2, 960)
    feats = cnnzoo.create_model("shufflenet_v1_g8", features_only=True).eval()
    with torch.no_grad():
        maps = feats(torch.randn(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (24, 32, 32),
        (384, 8, 8),
        (768, 4, 4),
        (1536, 2, 2),
    ]


def test_unknown_group_count_is_a_config_error():
    with pytest.raises(ConfigError, match=r"\[1, 2, 3, 4, 8\]"):
        ShuffleNetV1(groups=5)
