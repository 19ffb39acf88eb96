"""MobileNetV1 (Howard et al., "MobileNets: Efficient convolutional neural networks for mobile
vision applications", arXiv 2017).

Table 1 of the paper: a 3x3/2 conv to 32 channels, then 13 depthwise separable layers (3x3
depthwise conv, BN, ReLU; 1x1 pointwise conv, BN, ReLU) widening 64 -> 1024 with five stride-2
steps, global average pooling and one FC layer. The width multiplier alpha thins every layer
to round(alpha * channels) (Sec. 3.3); the resolution multiplier is just a smaller input.

Parameters at 224x224 with 1000 classes (BN included; the paper's Tables 6/7 in brackets):
``mobilenetv1_100`` 4,231,976 (4.2M), ``mobilenetv1_075`` 2,585,560 (2.6M),
``mobilenetv1_050`` 1,331,592 (1.3M), ``mobilenetv1_025`` 470,072 (0.5M).

Parameter names are timm's (``conv_stem``, ``bn1``, ``blocks.S.B.conv_dw/bn1/conv_pw/bn2``,
``classifier``), so timm's ``mobilenetv1_100`` state_dict loads as is. timm's network uses
ReLU6 where the paper says ReLU; build with ``act="relu6"`` for outputs identical to timm's.
Every conv is padded, so any input size from 1x1 runs. Convolutions are initialised He-normal
over one group's fan-out, as the TensorFlow code and timm (PyTorch's fan-out of a depthwise
conv counts all its channels, and the activations at the end of the net were 1e-19 at init).
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import unknown
from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model
from cnnzoo.models.mobilenetv2 import init_weights

PAPER = "Howard et al., MobileNets: Efficient convolutional neural networks for mobile vision applications, arXiv 2017"

# Table 1, grouped by output resolution: (output channels, stride of the depthwise conv).
STAGES: list[list[tuple[int, int]]] = [
    [(64, 1)],
    [(128, 2), (128, 1)],
    [(256, 2), (256, 1)],
    [(512, 2)] + [(512, 1)] * 5,
    [(1024, 2), (1024, 1)],
]

_ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6}


class DepthwiseSeparableConv(nn.Module):
    """Depthwise separable convolution (MobileNetV1, Howard et al. 2017): a 3x3 depthwise conv
    filters each channel alone, a 1x1 pointwise conv mixes them, each with BN and ReLU;
    8-9x cheaper than a full 3x3 conv."""

    def __init__(
        self, in_chs: int, out_chs: int, stride: int, act_layer: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(
            in_chs, in_chs, 3, stride=stride, padding=1, groups=in_chs, bias=False
        )
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv_pw = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.act = act_layer(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn1(self.conv_dw(x)))
        return self.act(self.bn2(self.conv_pw(x)))


class MobileNetV1(ClassifierModel):
    """MobileNetV1 (Howard et al. 2017): a plain stack of depthwise separable convolutions,
    thinned by a width multiplier to trade accuracy for size and latency."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        act: str = "relu",
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if act not in _ACTS:
            raise unknown("activation", act, _ACTS)
        self.num_classes = num_classes
        self.in_chans = in_chans
        act_layer = _ACTS[act]

        def width(c: int) -> int:
            return max(1, int(round(c * width_mult)))

        chs = width(32)
        self.conv_stem = nn.Conv2d(in_chans, chs, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(chs)
        self.act = act_layer(inplace=True)
        stages = []
        self.feature_info = []
        reduction = 2
        for i, stage in enumerate(STAGES):
            blocks = []
            for out, stride in stage:
                blocks.append(DepthwiseSeparableConv(chs, width(out), stride, act_layer))
                chs, reduction = width(out), reduction * stride
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(dict(module=f"blocks.{i}", num_chs=chs, reduction=reduction))
        self.blocks = nn.Sequential(*stages)
        self.num_features = chs
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.classifier = self._make_fc(num_classes)
        init_weights(self)

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.act(self.bn1(self.conv_stem(x)))
        return self.blocks(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(self.global_pool(x).flatten(1))
        return x if pre_logits else self.classifier(x)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = self._make_fc(num_classes)


def _cfg(timm: str | None = None) -> ModelCfg:
    return ModelCfg(
        paper=PAPER,
        min_input_size=(1, 1),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        first_conv="conv_stem",
        classifier="classifier",
        timm=timm,
    )


@register_model(_cfg("mobilenetv1_100"))
def mobilenetv1_100(**kwargs) -> MobileNetV1:
    return MobileNetV1(width_mult=1.0, **kwargs)


@register_model(_cfg())
def mobilenetv1_075(**kwargs) -> MobileNetV1:
    return MobileNetV1(width_mult=0.75, **kwargs)


@register_model(_cfg())
def mobilenetv1_050(**kwargs) -> MobileNetV1:
    return MobileNetV1(width_mult=0.5, **kwargs)


@register_model(_cfg())
def mobilenetv1_025(**kwargs) -> MobileNetV1:
    return MobileNetV1(width_mult=0.25, **kwargs)
