"""ShuffleNet (Zhang, Zhou, Lin and Sun, "ShuffleNet: An Extremely Efficient Convolutional
Neural Network for Mobile Devices", CVPR 2018).

A bottleneck unit whose 1x1 convolutions are group convolutions; a channel shuffle after the
first lets information cross the groups. Bottlenecks are 1/4 of the unit's output channels.
Stride-2 units concatenate the branch with a 3x3 average pool of the input instead of adding.
Table 1 of the paper (1.0x): a 3x3/2 conv to 24 channels and a 3x3/2 max pool, stages of 4, 8
and 4 units whose widths depend on the number of groups g, global pooling and a classifier.
The first 1x1 of stage 2 is not grouped (its input has only 24 channels).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.errors import ConfigError
from cnnzoo.layers import ClassifierHead, ConvNormAct, channel_shuffle
from cnnzoo.models._base import PooledHeadModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Zhang et al., ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices, CVPR 2018"

# Output channels of stages 2, 3 and 4 at 1.0x for each number of groups: Table 1.
STAGE_CHANNELS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}


class ShuffleUnit(nn.Module):
    """ShuffleNet unit (Zhang et al. 2018): group 1x1 conv, channel shuffle, depthwise 3x3,
    group 1x1 conv; added to the input, or at stride 2 concatenated with its average pool."""

    def __init__(
        self, in_chs: int, out_chs: int, stride: int, groups: int, group_first: bool = True
    ) -> None:
        super().__init__()
        self.stride = stride
        self.groups = groups
        mid_chs = out_chs // 4
        branch_chs = out_chs - in_chs if stride == 2 else out_chs
        self.conv1 = ConvNormAct(in_chs, mid_chs, 1, groups=groups if group_first else 1)
        self.conv2 = ConvNormAct(mid_chs, mid_chs, 3, stride, groups=mid_chs, act_layer=None)
        self.conv3 = ConvNormAct(mid_chs, branch_chs, 1, groups=groups, act_layer=None)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = channel_shuffle(self.conv1(x), self.groups)
        y = self.conv3(self.conv2(y))
        if self.stride == 2:
            return F.relu(torch.cat((self.shortcut(x), y), 1))
        return F.relu(x + y)


class ShuffleNetV1(PooledHeadModel):
    """ShuffleNet (Zhang et al. 2018): pointwise group convolutions and channel shuffles
    in stages of bottleneck units."""

    def __init__(
        self,
        groups: int = 3,
        stage_repeats: tuple[int, ...] = (4, 8, 4),
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if groups not in STAGE_CHANNELS:
            raise ConfigError(
                f"ShuffleNet groups must be one of {sorted(STAGE_CHANNELS)} (Table 1), got {groups!r}"
            )
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.conv1 = ConvNormAct(in_chans, 24, 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.feature_info = [dict(module="conv1", num_chs=24, reduction=2)]
        in_chs, stages = 24, []
        for i, (repeats, out_chs) in enumerate(
            zip(stage_repeats, STAGE_CHANNELS[groups], strict=True)
        ):
            units = [ShuffleUnit(in_chs, out_chs, 2, groups, group_first=i > 0)]
            units += [ShuffleUnit(out_chs, out_chs, 1, groups) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            in_chs = out_chs
            self.feature_info.append(
                dict(module=f"stages.{i}", num_chs=out_chs, reduction=2 ** (i + 3))
            )
        self.stages = nn.Sequential(*stages)
        self.num_features = in_chs
        self.head = ClassifierHead(in_chs, num_classes, drop_rate)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.maxpool(self.conv1(x)))


def _cfg() -> ModelCfg:
    return ModelCfg(
        paper=PAPER, min_input_size=(1, 1), first_conv="conv1.conv", classifier="head.fc"
    )


@register_model(_cfg())
def shufflenet_v1_g1(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups=1, **kwargs)


@register_model(_cfg())
def shufflenet_v1_g2(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups=2, **kwargs)


@register_model(_cfg())
def shufflenet_v1_g3(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups=3, **kwargs)


@register_model(_cfg())
def shufflenet_v1_g4(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups=4, **kwargs)


@register_model(_cfg())
def shufflenet_v1_g8(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups=8, **kwargs)
