"""SqueezeNet (Iandola, Han, Moskewicz, Ashraf, Dally and Keutzer, "SqueezeNet: AlexNet-level
accuracy with 50x fewer parameters and <0.5MB model size", arXiv 2016).

A stem conv and max-pool, eight fire modules with two more max-pools between them, dropout
0.5, and a 1x1 conv to the classes followed by global average pooling (no fully connected
layer).

- ``squeezenet1_0``: the paper's Table 1 (conv1 96@7x7/2; pools after conv1, fire4, fire8).
  1,248,424 parameters.
- ``squeezenet1_1``: the v1.1 of the authors' repository (conv1 64@3x3/2; pools after conv1,
  fire3, fire5): the same accuracy for 2.4x less computation. 1,235,496 parameters.

Parameter names are torchvision's (``features.N``, ``classifier.1``), so its state_dicts load
as is. Max-pools use ``ceil_mode`` as in the Caffe original.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size, arXiv 2016"


class Fire(nn.Module):
    """Fire module (SqueezeNet, Iandola et al. 2016): a 1x1 "squeeze" conv to few channels, then
    1x1 and 3x3 "expand" convs side by side, concatenated."""

    def __init__(
        self, in_chs: int, squeeze_chs: int, expand1x1_chs: int, expand3x3_chs: int
    ) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_chs, squeeze_chs, 1)
        self.expand1x1 = nn.Conv2d(squeeze_chs, expand1x1_chs, 1)
        self.expand3x3 = nn.Conv2d(squeeze_chs, expand3x3_chs, 3, padding=1)
        self.out_chs = expand1x1_chs + expand3x3_chs

    def forward(self, x: Tensor) -> Tensor:
        s = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(s)), torch.relu(self.expand3x3(s))], dim=1)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


class SqueezeNet(ClassifierModel):
    """SqueezeNet (Iandola et al. 2016): AlexNet accuracy with 50x fewer parameters, from 1x1
    filters, few input channels to the 3x3 filters, and late downsampling."""

    def __init__(
        self,
        version: str = "1_0",
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 512
        if version == "1_0":
            layers = [nn.Conv2d(in_chans, 96, 7, stride=2), nn.ReLU(inplace=True), _pool()]
            layers += [
                Fire(96, 16, 64, 64),
                Fire(128, 16, 64, 64),
                Fire(128, 32, 128, 128),
                _pool(),
            ]
            layers += [Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192)]
            layers += [Fire(384, 64, 256, 256), _pool(), Fire(512, 64, 256, 256)]
        else:
            layers = [nn.Conv2d(in_chans, 64, 3, stride=2), nn.ReLU(inplace=True), _pool()]
            layers += [Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), _pool()]
            layers += [Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), _pool()]
            layers += [Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256)]
            layers += [Fire(512, 64, 256, 256)]
        self.features = nn.Sequential(*layers)
        # One entry per resolution: the last layer before each pool, and the last fire module.
        self.feature_info = []
        chs, reduction = layers[0].out_channels, 2
        for i, m in enumerate(layers):
            if isinstance(m, Fire):
                chs = m.out_chs
            if i + 1 == len(layers) or isinstance(layers[i + 1], nn.MaxPool2d):
                self.feature_info.append(
                    dict(module=f"features.{i}", num_chs=chs, reduction=reduction)
                )
                reduction *= 2
        self.classifier = nn.Sequential(
            nn.Dropout(drop_rate),
            self._make_final_conv(num_classes),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self._init_weights()

    def _make_final_conv(self, num_classes: int) -> nn.Module:
        return nn.Conv2d(512, num_classes, 1) if num_classes > 0 else nn.Identity()

    def _init_weights(self) -> None:
        # As the authors' Caffe model: Xavier for the fire convs, N(0, 0.01) for conv10.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is self.classifier[1]:
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if pre_logits:
            return x.mean((2, 3))
        return self.classifier(x).flatten(1)

    def get_classifier(self) -> nn.Module:
        return self.classifier[1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[1] = self._make_final_conv(num_classes)


def _cfg(torchvision: str, min_size: int) -> ModelCfg:
    return ModelCfg(
        paper=PAPER,
        min_input_size=(min_size, min_size),
        first_conv="features.0",
        classifier="classifier.1",
        torchvision=torchvision,
    )


@register_model(_cfg("squeezenet1_0", 21))
def squeezenet1_0(**kwargs) -> SqueezeNet:
    return SqueezeNet("1_0", **kwargs)


@register_model(_cfg("squeezenet1_1", 17))
def squeezenet1_1(**kwargs) -> SqueezeNet:
    return SqueezeNet("1_1", **kwargs)
