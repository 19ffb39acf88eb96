"""EfficientNet (Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019).

B0 is a MobileNetV2-like stack of MBConv blocks (inverted residuals with squeeze-and-excitation
and SiLU; Table 1 of the paper). B1..B7 scale it with one compound coefficient: width
(channels, rounded to multiples of 8), depth (ceil of the repeats) and resolution together.
Stochastic depth drops residual branches with a rate rising linearly to ``drop_path_rate``
(0.2 in the paper) at the last block; dropout before the classifier grows from 0.2 (B0) to
0.5 (B7).

Like torchvision, B0..B4 use PyTorch's default BatchNorm (eps 1e-5, momentum 0.1) and B5..B7,
whose weights were ported from the TensorFlow release, the paper's eps 1e-3 and decay 0.99
(momentum 0.01). Initialisation is the TensorFlow reference code's: convolutions He-normal
over one group's fan-out (torchvision counts a depthwise conv's every channel, which makes
B0's outputs 1e-15 at init), the classifier uniform in +-1/sqrt(classes) with zero bias (as
torchvision). Torchvision checkpoints load through :func:`checkpoint_filter_fn`.
"""

from __future__ import annotations

import math

import torch.nn as nn
from torch import Tensor

from cnnzoo.layers import ClassifierHead, ConvNormAct, make_divisible
from cnnzoo.models._base import PooledHeadModel
from cnnzoo.models._registry import ModelCfg, register_model
from cnnzoo.models.mobilenetv2 import InvertedResidual, init_weights, stage_feature_info
from cnnzoo.models.mobilenetv2 import checkpoint_filter_fn as checkpoint_filter_fn

PAPER = "Tan and Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks, ICML 2019"

# expansion, kernel, stride of the first block, output channels, repeats: Table 1 (B0).
EFFICIENTNET_B0_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]


class EfficientNet(PooledHeadModel):
    """EfficientNet (Tan and Le 2019): MBConv blocks (inverted residual + SE + SiLU)
    compound-scaled in width and depth by ``width_mult`` and ``depth_mult``."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        drop_rate: float = 0.2,
        drop_path_rate: float = 0.2,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        in_chs = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [ConvNormAct(in_chans, in_chs, 3, 2, act_layer=nn.SiLU)]
        reductions, chs = [2], [in_chs]
        depths = [math.ceil(n * depth_mult) for *_, n in EFFICIENTNET_B0_STAGES]
        block_idx, total = 0, sum(depths)
        for (e, k, s, c, _), depth in zip(EFFICIENTNET_B0_STAGES, depths, strict=True):
            out_chs = make_divisible(c * width_mult)
            blocks = []
            for i in range(depth):
                dpr = drop_path_rate * block_idx / total
                blocks.append(
                    InvertedResidual(
                        in_chs,
                        out_chs,
                        s if i == 0 else 1,
                        e,
                        k,
                        act_layer=nn.SiLU,
                        se_ratio=0.25,
                        drop_path_rate=dpr,
                    )
                )
                in_chs = out_chs
                block_idx += 1
            layers.append(nn.Sequential(*blocks))
            reductions.append(reductions[-1] * s)
            chs.append(out_chs)
        self.num_features = 4 * in_chs
        layers.append(ConvNormAct(in_chs, self.num_features, 1, act_layer=nn.SiLU))
        reductions.append(reductions[-1])
        chs.append(self.num_features)
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.feature_info = stage_feature_info(reductions, chs)
        init_weights(self)
        if num_classes > 0:
            bound = 1.0 / math.sqrt(num_classes)
            nn.init.uniform_(self.head.fc.weight, -bound, bound)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = bn_eps, bn_momentum

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)


def _efficientnet(
    width: float, depth: float, dropout: float, tf_bn: bool = False, **kwargs
) -> EfficientNet:
    kwargs.setdefault("drop_rate", dropout)
    if tf_bn:
        kwargs.setdefault("bn_eps", 1e-3)
        kwargs.setdefault("bn_momentum", 0.01)
    return EfficientNet(width_mult=width, depth_mult=depth, **kwargs)


def _cfg(name: str, resolution: int) -> ModelCfg:
    return ModelCfg(
        paper=PAPER,
        input_size=(3, resolution, resolution),
        min_input_size=(1, 1),
        first_conv="features.0.conv",
        classifier="head.fc",
        torchvision=name,
    )


@register_model(_cfg("efficientnet_b0", 224))
def efficientnet_b0(**kwargs) -> EfficientNet:
    return _efficientnet(1.0, 1.0, 0.2, **kwargs)


@register_model(_cfg("efficientnet_b1", 240))
def efficientnet_b1(**kwargs) -> EfficientNet:
    return _efficientnet(1.0, 1.1, 0.2, **kwargs)


@register_model(_cfg("efficientnet_b2", 260))
def efficientnet_b2(**kwargs) -> EfficientNet:
    return _efficientnet(1.1, 1.2, 0.3, **kwargs)


@register_model(_cfg("efficientnet_b3", 300))
def efficientnet_b3(**kwargs) -> EfficientNet:
    return _efficientnet(1.2, 1.4, 0.3, **kwargs)


@register_model(_cfg("efficientnet_b4", 380))
def efficientnet_b4(**kwargs) -> EfficientNet:
    return _efficientnet(1.4, 1.8, 0.4, **kwargs)


@register_model(_cfg("efficientnet_b5", 456))
def efficientnet_b5(**kwargs) -> EfficientNet:
    return _efficientnet(1.6, 2.2, 0.4, tf_bn=True, **kwargs)


@register_model(_cfg("efficientnet_b6", 528))
def efficientnet_b6(**kwargs) -> EfficientNet:
    return _efficientnet(1.8, 2.6, 0.5, tf_bn=True, **kwargs)


@register_model(_cfg("efficientnet_b7", 600))
def efficientnet_b7(**kwargs) -> EfficientNet:
    return _efficientnet(2.0, 3.1, 0.5, tf_bn=True, **kwargs)
