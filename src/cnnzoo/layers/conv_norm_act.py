from __future__ import annotations

import inspect
from collections.abc import Callable

import torch.nn as nn
from torch import Tensor


def _make_act(act_layer: Callable[..., nn.Module]) -> nn.Module:
    """The activation, in place where it can be (it follows BN, whose output nothing else reads)."""
    if "inplace" in inspect.signature(act_layer).parameters:
        return act_layer(inplace=True)
    return act_layer()


class ConvNormAct(nn.Module):
    """Conv2d, then BatchNorm, then an activation: the unit most CNNs stack.

    ``padding=None`` keeps the spatial size at stride 1 ("same" padding for odd kernels).
    ``act_layer=None`` leaves the output linear (MobileNetV2's projection).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        dilation: int = 1,
        bias: bool = False,
        norm: bool = True,
        act_layer: Callable[..., nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_chs,
            out_chs,
            kernel_size,
            stride,
            padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.bn = nn.BatchNorm2d(out_chs) if norm else nn.Identity()
        self.act = nn.Identity() if act_layer is None else _make_act(act_layer)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))
