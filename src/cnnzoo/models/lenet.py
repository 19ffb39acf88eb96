"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 1998).

Two convolution + subsampling stages and three fully connected layers, on a 32x32 input:
C1 (6@28x28) -> S2 (6@14x14) -> C3 (16@10x10) -> S4 (16@5x5) -> C5 (120) -> F6 (84) -> output.
Modernised only where the paper's choices are not reproducible in a standard layer: the
trainable subsampling layers become average pooling and the RBF output becomes a linear
layer, as in every current re-implementation (e.g. d2l 7.6). C3 is fully connected to S2
(the paper's sparse connection table was a compute-saving device).

Input sizes: the network is built for the paper's 32x32 (C5 sees exactly 5x5 maps). Smaller
inputs, from 28x28 (``min_input_size``), are zero-padded to 32x32, centred, each side on its
own (``pad_to_32=True``, the default): what the paper did to MNIST's 28x28 digits. Inputs
larger than 32 in either side are refused with an :class:`~cnnzoo.errors.InputShapeError`
naming the sizes it takes (resize them to 32x32); with ``pad_to_32=False`` only 32x32 is taken.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.errors import InputShapeError
from cnnzoo.layers import Tanh
from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "LeCun et al., Gradient-based learning applied to document recognition, Proc. IEEE 1998"


class LeNet5(ClassifierModel):
    """LeNet-5: conv(5x5, 6) -> pool -> conv(5x5, 16) -> pool -> fc 120 -> fc 84 -> fc classes,
    with the paper's saturating tanh-like activation (``act="tanh"``) or ReLU. Takes 32x32
    inputs; smaller ones are zero-padded to 32x32 when ``pad_to_32``, larger ones refused."""

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        act: str = "tanh",
        pad_to_32: bool = True,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 84
        self.pad_to_32 = pad_to_32
        act_layer = {"tanh": Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}[act]
        self.c1 = nn.Conv2d(in_chans, 6, 5)
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.s4 = nn.AvgPool2d(2)
        self.c5 = nn.Linear(16 * 5 * 5, 120)
        self.f6 = nn.Linear(120, 84)
        self.act = act_layer()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(84, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [
            dict(module="s2", num_chs=6, reduction=2),
            dict(module="s4", num_chs=16, reduction=4),
        ]

    def forward_features(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if (h, w) != (32, 32):
            if not self.pad_to_32 or h > 32 or w > 32:
                takes = "up to" if self.pad_to_32 else "of exactly"
                raise InputShapeError(
                    f"LeNet-5 takes inputs {takes} the paper's 32x32 (smaller ones are "
                    f"zero-padded to it when pad_to_32=True); got {h}x{w}: resize the images "
                    f"to 32x32 (data.image_size=32, or --input 1x32x32)"
                )
            pad_h, pad_w = 32 - h, 32 - w
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        x = self.s2(self.act(self.c1(x)))
        return self.s4(self.act(self.c3(x)))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.act(self.c5(x.flatten(1)))
        x = self.drop(self.act(self.f6(x)))
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(84, num_classes) if num_classes > 0 else nn.Identity()


@register_model(
    ModelCfg(
        paper=PAPER,
        input_size=(1, 32, 32),
        min_input_size=(28, 28),
        mean=(0.1307,),
        std=(0.3081,),
        num_classes=10,
        first_conv="c1",
        classifier="fc",
    )
)
def lenet5(**kwargs) -> LeNet5:
    return LeNet5(**kwargs)
