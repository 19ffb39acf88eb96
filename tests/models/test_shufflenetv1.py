import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.errors import ConfigError
from cnnzoo.layers import channel_shuffle
from cnnzoo.models.shufflenetv1 import ShuffleNetV1, ShuffleUnit
from zoo_helpers import bn_eval, randomize_all

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


# No reference implementation has these networks: they are checked against the paper itself.


def shuffle_by_hand(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Zhang et al. 2018, Fig. 1(c): the next layer's group j gets one channel from each group
    of this one, so output channel i * groups + j is channel i of input group j."""
    per_group = x.shape[1] // groups
    order = [j * per_group + i for i in range(per_group) for j in range(groups)]
    return x[:, order]


def unit_by_hand(unit: ShuffleUnit, x: torch.Tensor, stride: int, groups: int, first: bool):
    """Fig. 2(b)/(c): GConv1x1-BN-ReLU, shuffle, DWConv3x3 (stride)-BN, GConv1x1-BN, then
    ReLU(x + branch), or at stride 2 ReLU(concat(AvgPool3x3/2(x), branch)). The first 1x1 of
    stage 2 is an ordinary conv (its input has only 24 channels)."""
    y = F.conv2d(x, unit.conv1.conv.weight, groups=1 if first else groups)
    y = shuffle_by_hand(torch.relu(bn_eval(y, unit.conv1.bn)), groups)
    y = F.conv2d(y, unit.conv2.conv.weight, stride=stride, padding=1, groups=y.shape[1])
    y = bn_eval(y, unit.conv2.bn)
    y = bn_eval(F.conv2d(y, unit.conv3.conv.weight, groups=groups), unit.conv3.bn)
    if stride == 2:
        return torch.relu(torch.cat((F.avg_pool2d(x, 3, 2, 1), y), 1))
    return torch.relu(x + y)


def check_forward_by_hand(groups: int = 3) -> None:
    """The whole network (Table 1) built from :func:`unit_by_hand`, against the model, with
    every tensor random: conv3x3/2-BN-ReLU, max-pool 3x3/2, stages of units, global average
    pooling, FC."""
    model = randomize_all(cnnzoo.create_model(f"shufflenet_v1_g{groups}", num_classes=10)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = F.conv2d(x, model.conv1.conv.weight, stride=2, padding=1)
        y = F.max_pool2d(torch.relu(bn_eval(y, model.conv1.bn)), 3, 2, 1)
        for s, stage in enumerate(model.stages):
            for i, unit in enumerate(stage):
                y = unit_by_hand(unit, y, 2 if i == 0 else 1, groups, first=s == 0 and i == 0)
        expected = F.linear(y.mean((2, 3)), model.head.fc.weight, model.head.fc.bias)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-4)


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    x = torch.randn(2, 24, 3, 3)
    assert torch.equal(channel_shuffle(x, 4), shuffle_by_hand(x, 4))


@pytest.mark.parametrize("groups", [3, 8])
def test_forward_equals_the_paper_built_by_hand(groups):
    check_forward_by_hand(groups)
