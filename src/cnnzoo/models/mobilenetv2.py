"""MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov and Chen, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018).

A 3x3 stem, then 17 inverted residual blocks (Table 2 of the paper: expansion t, output
channels c, repeats n, first stride s), a 1x1 conv to 1280 channels, global pooling and a
linear classifier. The width multiplier scales every layer, rounded to a multiple of 8 as in
the authors' code; the last conv keeps 1280 channels for multipliers below 1.

Parameter names differ from torchvision's (``conv_pw``/``conv_dw``/``conv_pwl`` instead of
``conv.0``/``conv.1``/...); :func:`checkpoint_filter_fn` maps torchvision checkpoints
onto them by position.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn
from torch import Tensor

from cnnzoo.layers import (
    ClassifierHead,
    ConvNormAct,
    DropPath,
    SqueezeExcite,
    init_conv_fan_out,
    make_divisible,
)
from cnnzoo.models._base import PooledHeadModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018"

# t (expansion), c (output channels), n (repeats), s (stride of the first block): Table 2.
MOBILENETV2_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class InvertedResidual(nn.Module):
    """Inverted residual (MobileNetV2, Sandler et al. 2018): expand 1x1, depthwise 3x3,
    linear 1x1 projection; the skip joins the narrow ends.

    ``se_ratio > 0`` adds a squeeze-and-excitation gate on the expanded channels (its
    bottleneck is ``se_ratio`` times the block's input channels) and ``drop_path_rate`` drops
    the residual branch per sample; with SiLU and 5x5 kernels this is EfficientNet's MBConv.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int = 1,
        expand_ratio: float = 6.0,
        kernel_size: int = 3,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
        se_ratio: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        mid_chs = int(round(in_chs * expand_ratio))
        self.has_skip = stride == 1 and in_chs == out_chs
        self.conv_pw = (
            ConvNormAct(in_chs, mid_chs, 1, act_layer=act_layer)
            if expand_ratio != 1
            else nn.Identity()
        )
        self.conv_dw = ConvNormAct(
            mid_chs, mid_chs, kernel_size, stride, groups=mid_chs, act_layer=act_layer
        )
        self.se = (
            SqueezeExcite(mid_chs, rd_channels=max(1, int(in_chs * se_ratio)), act_layer=act_layer)
            if se_ratio > 0
            else nn.Identity()
        )
        self.conv_pwl = ConvNormAct(mid_chs, out_chs, 1, act_layer=None)
        self.drop_path = (
            DropPath(drop_path_rate) if self.has_skip and drop_path_rate > 0 else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        return x + self.drop_path(y) if self.has_skip else y


def stage_feature_info(reductions: list[int], chs: list[int]) -> list[dict]:
    """feature_info for a ``features`` Sequential whose i-th layer has stride ``reductions[i]``
    and ``chs[i]`` output channels: the last layer at each stride, after the stem."""
    info = {}
    for i, (r, c) in enumerate(zip(reductions, chs, strict=True)):
        if i > 0:
            info[r] = dict(module=f"features.{i}", num_chs=c, reduction=r)
    return list(info.values())


def init_weights(model: nn.Module) -> None:
    """He init for convs over one group's fan-out (:func:`~cnnzoo.layers.init_conv_fan_out`, as
    the TensorFlow reference code), unit BatchNorm, small normal linear layers."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            init_conv_fan_out(m)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class MobileNetV2(PooledHeadModel):
    """MobileNetV2 (Sandler et al. 2018): a stack of inverted residuals with linear
    bottlenecks, scaled in width by ``width_mult``."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        round_nearest: int = 8,
        se_ratio: float = 0.0,
        drop_rate: float = 0.2,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        stem_chs = make_divisible(32 * width_mult, round_nearest)
        self.num_features = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        layers: list[nn.Module] = [ConvNormAct(in_chans, stem_chs, 3, 2, act_layer=nn.ReLU6)]
        reductions, chs = [2], [stem_chs]
        total = sum(n for _, _, n, _ in MOBILENETV2_STAGES)
        in_chs = stem_chs
        for t, c, n, s in MOBILENETV2_STAGES:
            out_chs = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                dpr = drop_path_rate * (len(layers) - 1) / total
                layers.append(
                    InvertedResidual(
                        in_chs, out_chs, stride, t, se_ratio=se_ratio, drop_path_rate=dpr
                    )
                )
                in_chs = out_chs
                reductions.append(reductions[-1] * stride)
                chs.append(out_chs)
        layers.append(ConvNormAct(in_chs, self.num_features, 1, act_layer=nn.ReLU6))
        reductions.append(reductions[-1])
        chs.append(self.num_features)
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.feature_info = stage_feature_info(reductions, chs)
        init_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename a torchvision (or any same-layout) checkpoint's tensors to ``model``'s names.

    Both networks register their layers in the same order, so the i-th tensor of one is the
    i-th of the other; each pair must agree in kind (``weight``, ``running_mean``, ...) and
    rank, otherwise the checkpoint is returned unchanged for the strict loader to report.
    BatchNorm ``num_batches_tracked`` counters, absent from old checkpoints, are matched
    through their layer's ``running_var`` (or kept from the model).
    """
    own = model.state_dict()
    counter = "num_batches_tracked"
    theirs = [k for k in state_dict if not k.endswith(counter)]
    mine = [k for k in own if not k.endswith(counter)]
    if len(theirs) != len(mine):
        return state_dict
    out: dict[str, Tensor] = {}
    for a, b in zip(theirs, mine, strict=True):
        if a.rsplit(".", 1)[-1] != b.rsplit(".", 1)[-1] or state_dict[a].dim() != own[b].dim():
            return state_dict
        out[b] = state_dict[a]
        if b.endswith("running_var"):
            b_count = b[: -len("running_var")] + counter
            out[b_count] = state_dict.get(a[: -len("running_var")] + counter, own[b_count])
    return out


def _cfg(**kwargs) -> ModelCfg:
    return ModelCfg(
        paper=PAPER,
        min_input_size=(1, 1),
        first_conv="features.0.conv",
        classifier="head.fc",
        **kwargs,
    )


@register_model(_cfg(torchvision="mobilenet_v2", timm="mobilenetv2_100"))
def mobilenet_v2(**kwargs) -> MobileNetV2:
    return MobileNetV2(**kwargs)


@register_model(_cfg(timm="mobilenetv2_050"))
def mobilenet_v2_050(**kwargs) -> MobileNetV2:
    return MobileNetV2(width_mult=0.5, **kwargs)


@register_model(_cfg())
def mobilenet_v2_075(**kwargs) -> MobileNetV2:
    return MobileNetV2(width_mult=0.75, **kwargs)


@register_model(_cfg(timm="mobilenetv2_140"))
def mobilenet_v2_140(**kwargs) -> MobileNetV2:
    return MobileNetV2(width_mult=1.4, **kwargs)
