from __future__ import annotations

import torch
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
