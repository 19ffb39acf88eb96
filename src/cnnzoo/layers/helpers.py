from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without going more than 10% below
    it (the rule of the MobileNet and EfficientNet reference code)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet's channel shuffle (Zhang et al., CVPR 2018): view the channels as a
    (groups, C/groups) grid, transpose it and flatten, so that the next group convolution
    sees channels from every group."""
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w)
    return torch.transpose(x, 1, 2).contiguous().view(b, c, h, w)


def init_conv_fan_out(conv: nn.Conv2d) -> None:
    """He-normal init over the fan-out of one group's filters (k * k * out / groups), with zero
    bias: the init of the TensorFlow MobileNet/EfficientNet code and of timm's port. A
    depthwise 3x3 gets std sqrt(2/9); PyTorch's own ``mode="fan_out"`` counts every output
    channel (sqrt(2/(9C))), which shrinks the activations by sqrt(C) at each depthwise layer
    (to 1e-15 at the end of EfficientNet-B0)."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
