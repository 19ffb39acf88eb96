from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn
from torch import Tensor


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al., CVPR 2018): pool each channel to one number,
    pass the vector through a bottleneck MLP, and rescale the channels by its sigmoid.

    The MLP is two 1x1 convolutions with bias (fc1 reduces by ``rd_ratio``, or to
    ``rd_channels`` when given; fc2 restores). Any family can drop it into a block.
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1 / 16,
        rd_channels: int | None = None,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        gate_layer: Callable[..., nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        if rd_channels is None:
            rd_channels = max(1, int(round(channels * rd_ratio)))
        self.fc1 = nn.Conv2d(channels, rd_channels, 1, bias=True)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1, bias=True)
        self.gate = gate_layer()

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(self.act(self.fc1(s)))
        return x * self.gate(s)
