"""ShuffleNet V2 (Ma, Zhang, Zheng and Sun, "ShuffleNet V2: Practical Guidelines for Efficient
CNN Architecture Design", ECCV 2018).

Guided by measured speed rather than FLOPs, a unit splits its channels in two: one half passes
untouched, the other goes through 1x1 conv, 3x3 depthwise conv and 1x1 conv (equal widths,
no group convolution); the halves are concatenated and shuffled. A stride-2 unit feeds the
whole input to both branches (the left one a depthwise 3x3/2 and a 1x1), doubling the width.
Stages of 4, 8 and 4 units (Table 5) sit between a 3x3/2 conv + max pool stem and a 1x1 conv
(1024 or 2048 channels). Parameter names are torchvision's.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.layers import channel_shuffle
from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design, ECCV 2018"


def _conv_bn(
    in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(
            in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_chs),
    ]


class ShuffleV2Block(nn.Module):
    """ShuffleNet V2 unit (Ma et al. 2018): channel split, 1x1 -> depthwise 3x3 -> 1x1 on one
    half, concat with the other, channel shuffle; at stride 2 both branches see all input."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch_chs = out_chs // 2
        if stride == 2:
            self.branch1 = nn.Sequential(
                *_conv_bn(in_chs, in_chs, 3, stride, groups=in_chs),
                *_conv_bn(in_chs, branch_chs),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Identity()
        self.branch2 = nn.Sequential(
            *_conv_bn(in_chs if stride == 2 else branch_chs, branch_chs),
            nn.ReLU(inplace=True),
            *_conv_bn(branch_chs, branch_chs, 3, stride, groups=branch_chs),
            *_conv_bn(branch_chs, branch_chs),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(ClassifierModel):
    """ShuffleNet V2 (Ma et al. 2018): channel-split units with shuffles, in three stages."""

    def __init__(
        self,
        stage_out_channels: tuple[int, int, int, int, int] = (24, 116, 232, 464, 1024),
        stage_repeats: tuple[int, int, int] = (4, 8, 4),
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        stem_chs, *stage_chs, self.num_features = stage_out_channels
        self.conv1 = nn.Sequential(*_conv_bn(in_chans, stem_chs, 3, 2), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.feature_info = [dict(module="conv1", num_chs=stem_chs, reduction=2)]
        in_chs = stem_chs
        for i, (repeats, out_chs) in enumerate(zip(stage_repeats, stage_chs, strict=True)):
            blocks = [ShuffleV2Block(in_chs, out_chs, 2)] + [
                ShuffleV2Block(out_chs, out_chs, 1) for _ in range(repeats - 1)
            ]
            setattr(self, f"stage{i + 2}", nn.Sequential(*blocks))
            in_chs = out_chs
            if i < len(stage_repeats) - 1:
                self.feature_info.append(
                    dict(module=f"stage{i + 2}", num_chs=out_chs, reduction=2 ** (i + 3))
                )
        self.conv5 = nn.Sequential(*_conv_bn(in_chs, self.num_features), nn.ReLU(inplace=True))
        self.feature_info.append(
            dict(module="conv5", num_chs=self.num_features, reduction=2 ** (len(stage_repeats) + 2))
        )
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.conv5(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(x.mean((2, 3)))
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


def _cfg(name: str) -> ModelCfg:
    return ModelCfg(
        paper=PAPER, min_input_size=(1, 1), first_conv="conv1.0", classifier="fc", torchvision=name
    )


@register_model(_cfg("shufflenet_v2_x0_5"))
def shufflenet_v2_x0_5(**kwargs) -> ShuffleNetV2:
    return ShuffleNetV2((24, 48, 96, 192, 1024), **kwargs)


@register_model(_cfg("shufflenet_v2_x1_0"))
def shufflenet_v2_x1_0(**kwargs) -> ShuffleNetV2:
    return ShuffleNetV2((24, 116, 232, 464, 1024), **kwargs)


@register_model(_cfg("shufflenet_v2_x1_5"))
def shufflenet_v2_x1_5(**kwargs) -> ShuffleNetV2:
    return ShuffleNetV2((24, 176, 352, 704, 1024), **kwargs)


@register_model(_cfg("shufflenet_v2_x2_0"))
def shufflenet_v2_x2_0(**kwargs) -> ShuffleNetV2:
    return ShuffleNetV2((24, 244, 488, 976, 2048), **kwargs)
