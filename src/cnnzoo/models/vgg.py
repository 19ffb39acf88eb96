"""VGG (Simonyan and Zisserman, "Very deep convolutional networks for large-scale image
recognition", ICLR 2015).

Stacks of 3x3 convolutions (stride 1, padding 1) with ReLU, five 2x2/2 max-pools, and three
fully connected layers (4096, 4096, classes) with dropout 0.5 after the two hidden ones.
Configurations A, B, D and E of Table 1 are ``vgg11``, ``vgg13``, ``vgg16`` and ``vgg19``;
``_bn`` adds batch normalisation after every convolution (not in the paper; torchvision's
variant). Parameter names are torchvision's, so its state_dicts load as is.

An adaptive 7x7 average pool before the classifier (a no-op at 224x224, as in torchvision)
lets any input from 32x32 (the smallest that survives five halvings) through.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from cnnzoo.models._base import MLPHeadModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Simonyan and Zisserman, Very deep convolutional networks for large-scale image recognition, ICLR 2015"

# Table 1 of the paper: output channels of each 3x3 conv, "M" for a 2x2/2 max-pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


class VGG(MLPHeadModel):
    """VGG (Simonyan and Zisserman 2015): depth from stacked 3x3 convolutions only, two of which
    see a 5x5 field and three a 7x7 one, with fewer parameters and more non-linearities."""

    def __init__(
        self,
        cfg: list[int | str],
        num_classes: int = 1000,
        in_chans: int = 3,
        batch_norm: bool = False,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 4096
        layers: list[nn.Module] = []
        self.feature_info = []
        chs, reduction = in_chans, 1
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
                reduction *= 2
                self.feature_info.append(
                    dict(module=f"features.{len(layers) - 1}", num_chs=chs, reduction=reduction)
                )
                continue
            layers.append(nn.Conv2d(chs, int(v), 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(v)))
            layers.append(nn.ReLU(inplace=True))
            chs = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(chs * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(drop_rate),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(drop_rate),
            self._make_fc(num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # He init for the ReLU convs. The paper initialised deep nets from the trained net A,
        # and notes (Sec. 3.1) that a random init of the Glorot kind works without it.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)


def _cfg(torchvision: str) -> ModelCfg:
    return ModelCfg(
        paper=PAPER,
        min_input_size=(32, 32),
        first_conv="features.0",
        classifier="classifier.6",
        torchvision=torchvision,
    )


@register_model(_cfg("vgg11"))
def vgg11(**kwargs) -> VGG:
    return VGG(CONFIGS["A"], **kwargs)


@register_model(_cfg("vgg11_bn"))
def vgg11_bn(**kwargs) -> VGG:
    return VGG(CONFIGS["A"], batch_norm=True, **kwargs)


@register_model(_cfg("vgg13"))
def vgg13(**kwargs) -> VGG:
    return VGG(CONFIGS["B"], **kwargs)


@register_model(_cfg("vgg13_bn"))
def vgg13_bn(**kwargs) -> VGG:
    return VGG(CONFIGS["B"], batch_norm=True, **kwargs)


@register_model(_cfg("vgg16"))
def vgg16(**kwargs) -> VGG:
    return VGG(CONFIGS["D"], **kwargs)


@register_model(_cfg("vgg16_bn"))
def vgg16_bn(**kwargs) -> VGG:
    return VGG(CONFIGS["D"], batch_norm=True, **kwargs)


@register_model(_cfg("vgg19"))
def vgg19(**kwargs) -> VGG:
    return VGG(CONFIGS["E"], **kwargs)


@register_model(_cfg("vgg19_bn"))
def vgg19_bn(**kwargs) -> VGG:
    return VGG(CONFIGS["E"], batch_norm=True, **kwargs)
