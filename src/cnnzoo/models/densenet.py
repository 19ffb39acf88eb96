"""DenseNet (Huang, Liu, van der Maaten and Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017).

Inside a dense block every layer takes the concatenation of all earlier feature maps and adds
``growth_rate`` (k) new channels. DenseNet-BC layers are BN-ReLU-Conv(1x1, 4k)-BN-ReLU-
Conv(3x3, k); transitions between blocks (BN-ReLU-Conv1x1-AvgPool 2x2) compress the channels
by 0.5. The ImageNet models (Table 1) have a 7x7/2 stem and a 3x3/2 max pool before four
blocks; the CIFAR DenseNet-BC (L=100, k=12) has a single 3x3 conv of 2k channels and three
blocks of (L - 4) / 6 = 16 layers.

The paper's dropout after every convolution but the first (used on CIFAR without data
augmentation) is ``dense_drop_rate``; ``drop_rate`` is dropout before the classifier.
Parameter names are torchvision's, so its checkpoints load as they are (old ones, with
``norm.1``-style keys, through :func:`checkpoint_filter_fn`).
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017"
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class DenseLayer(nn.Module):
    """DenseNet-BC composite function H_l (Huang et al. 2017): BN-ReLU-Conv(1x1, 4k)-BN-ReLU-
    Conv(3x3, k) on the concatenation of all earlier maps; returns the k new channels."""

    def __init__(
        self, in_chs: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_chs)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_chs, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = torch.cat(features, 1)
        x = self.drop(self.conv1(self.relu1(self.norm1(x))))
        return self.drop(self.conv2(self.relu2(self.norm2(x))))


class DenseBlock(nn.ModuleDict):
    """Dense block (Huang et al. 2017): each layer sees every earlier map of the block;
    the output is all of them concatenated (in_chs + num_layers * k channels)."""

    def __init__(
        self, num_layers: int, in_chs: int, growth_rate: int, bn_size: int, drop_rate: float
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(
                in_chs + i * growth_rate, growth_rate, bn_size, drop_rate
            )

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """DenseNet transition layer (Huang et al. 2017): BN-ReLU-Conv1x1 to ``out_chs``
    (compression) and 2x2 average pooling."""

    def __init__(self, in_chs: int, out_chs: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_chs)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.drop = nn.Dropout(drop_rate)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet(ClassifierModel):
    """DenseNet (Huang et al. 2017): dense blocks, where each layer is fed every earlier
    feature map, joined by compressing transitions."""

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        small_inputs: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        dense_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        if small_inputs:
            stem = [("conv0", nn.Conv2d(in_chans, num_init_features, 3, padding=1, bias=False))]
            reduction, self.feature_info = 1, []
        else:
            stem = [
                ("conv0", nn.Conv2d(in_chans, num_init_features, 7, 2, 3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(3, 2, 1)),
            ]
            reduction = 4
            self.feature_info = [
                dict(module="features.relu0", num_chs=num_init_features, reduction=2)
            ]
        self.features = nn.Sequential(OrderedDict(stem))
        chs = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(
                f"denseblock{i + 1}",
                DenseBlock(num_layers, chs, growth_rate, bn_size, dense_drop_rate),
            )
            chs += num_layers * growth_rate
            if i < len(block_config) - 1:
                self.feature_info.append(
                    dict(module=f"features.denseblock{i + 1}", num_chs=chs, reduction=reduction)
                )
                out_chs = int(chs * compression)
                self.features.add_module(
                    f"transition{i + 1}", Transition(chs, out_chs, dense_drop_rate)
                )
                chs, reduction = out_chs, reduction * 2
        self.features.add_module("norm5", nn.BatchNorm2d(chs))
        self.features.add_module("relu5", nn.ReLU(inplace=True))
        self.feature_info.append(dict(module="features.relu5", num_chs=chs, reduction=reduction))
        self.num_features = chs
        self.drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(x.mean((2, 3)))
        return x if pre_logits else self.classifier(x)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = (
            nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        )


_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var)$"
)


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Torchvision's published DenseNet weights predate its current names (``norm.1`` for
    ``norm1``) and BatchNorm's ``num_batches_tracked``: rename the former, add the latter."""
    out = {}
    for k, v in state_dict.items():
        m = _OLD_KEY.match(k)
        out[f"{m[1]}{m[2]}.{m[3]}" if m else k] = v
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out.setdefault(k, v)
    return out


def _cfg(name: str) -> ModelCfg:
    return ModelCfg(
        paper=PAPER,
        min_input_size=(29, 29),
        first_conv="features.conv0",
        classifier="classifier",
        torchvision=name,
    )


@register_model(_cfg("densenet121"))
def densenet121(**kwargs) -> DenseNet:
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)


@register_model(_cfg("densenet161"))
def densenet161(**kwargs) -> DenseNet:
    return DenseNet(48, (6, 12, 36, 24), 96, **kwargs)


@register_model(_cfg("densenet169"))
def densenet169(**kwargs) -> DenseNet:
    return DenseNet(32, (6, 12, 32, 32), 64, **kwargs)


@register_model(_cfg("densenet201"))
def densenet201(**kwargs) -> DenseNet:
    return DenseNet(32, (6, 12, 48, 32), 64, **kwargs)


@register_model(
    ModelCfg(
        paper=PAPER,
        input_size=(3, 32, 32),
        min_input_size=(4, 4),
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        num_classes=10,
        first_conv="features.conv0",
        classifier="classifier",
    )
)
def densenet_bc_100_k12(**kwargs) -> DenseNet:
    return DenseNet(12, (16, 16, 16), 24, small_inputs=True, **kwargs)
