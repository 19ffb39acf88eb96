"""GoogLeNet / Inception v1 (Szegedy et al., "Going deeper with convolutions", CVPR 2015).

A stem (7x7/2 conv, pool, 1x1 and 3x3 convs, pool), nine Inception modules in three groups
(3a-3b, 4a-4e, 5a-5b, max-pools between), global average pooling, dropout and one linear
layer. Each Inception module runs 1x1, 1x1->3x3, 1x1->"5x5" and pool->1x1 branches side by
side and concatenates them; the 1x1 reductions keep the 3x3/5x5 convolutions cheap. Two
auxiliary classifiers (on 4a and 4d: 5x5/3 average pool, 1x1 conv 128, FC 1024, dropout 0.7,
FC classes) add gradient to the middle of the net in training (``aux_logits=True``); in
training mode the model then returns ``(logits, aux1, aux2)``, in eval mode only the logits.

Follows torchvision's ``googlenet`` so that its weights load as is, which departs from the
paper in four ways:

- every convolution is followed by batch normalisation (eps 1e-3), and the stem has no LRN;
- the "5x5" branch uses a 3x3 kernel (a slip kept in torchvision for its weights;
  ``branch3_kernel=5`` gives the paper's 5x5, 7,005,832 parameters without the aux heads);
- the aux heads pool adaptively to 4x4 (windows of 4 at offsets 0, 3, 7, 10 on the 14x14 map
  where the paper's 5x5/3 pool has windows of 5 at 0, 3, 6, 9);
- the max-pool between 4e and 5a is 2x2/2 (Table 1 gives 3x3/2; on the paper's 14x14 map both
  give 7x7, through different windows).

6,624,904 parameters without the aux heads, 13,004,888 with them. The paper's dropout
before the classifier is 40% (``drop_rate=0.4``, the default; torchvision uses 0.2). The
paper trains with both aux heads, their losses weighted 0.3: the shipped GoogLeNet configs
do (``aux_logits=True``, ``loss.aux_weight=0.3``).
``transform_input=True`` maps ImageNet-normalised input to the [-1, 1] scaling that the
torchvision weights were trained with (torchvision turns it on when it loads them).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import IMAGENET_MEAN, IMAGENET_STD, ModelCfg, register_model

PAPER = "Szegedy et al., Going deeper with convolutions, CVPR 2015"


class BasicConv2d(nn.Module):
    """Convolution (no bias), batch normalisation (eps 1e-3) and ReLU, as in torchvision's
    GoogLeNet."""

    def __init__(
        self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_chs, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Inception module (GoogLeNet, Szegedy et al. 2015): 1x1, 1x1->3x3, 1x1->5x5 and
    3x3 max-pool->1x1 branches in parallel, concatenated along channels."""

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        branch3_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_chs, ch1x1, 1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_chs, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_chs, ch5x5red, 1),
            BasicConv2d(ch5x5red, ch5x5, branch3_kernel, padding=branch3_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_chs, pool_proj, 1)
        )
        self.out_chs = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1
        )


class InceptionAux(nn.Module):
    """Auxiliary classifier of GoogLeNet: pool to 4x4, 1x1 conv to 128, FC 1024, dropout 0.7,
    FC to the classes."""

    def __init__(self, in_chs: int, num_classes: int, drop_rate: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(in_chs, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.pool(x)).flatten(1)
        x = self.dropout(torch.relu(self.fc1(x)))
        return self.fc2(x)


class GoogLeNet(ClassifierModel):
    """GoogLeNet (Szegedy et al. 2015): 22 layers of Inception modules whose 1x1 reductions
    make a deep, wide net cheap (1.5 billion multiply-adds)."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = False,
        drop_rate: float = 0.4,
        aux_drop_rate: float = 0.7,
        branch3_kernel: int = 3,
        transform_input: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 1024
        self.aux_logits = aux_logits
        self.aux_drop_rate = aux_drop_rate
        self.transform_input = transform_input
        k = branch3_kernel
        self.conv1 = BasicConv2d(in_chans, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, k)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, k)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, k)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, k)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, k)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, k)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, k)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, k)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, k)
        self.aux1 = (
            InceptionAux(512, num_classes, aux_drop_rate)
            if aux_logits and num_classes > 0
            else None
        )
        self.aux2 = (
            InceptionAux(528, num_classes, aux_drop_rate)
            if aux_logits and num_classes > 0
            else None
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = self._make_fc(num_classes)
        self.feature_info = [
            dict(module="conv1", num_chs=64, reduction=2),
            dict(module="conv3", num_chs=192, reduction=4),
            dict(module="inception3b", num_chs=480, reduction=8),
            dict(module="inception4e", num_chs=832, reduction=16),
            dict(module="inception5b", num_chs=1024, reduction=32),
        ]
        self._init_weights()

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(1024, num_classes) if num_classes > 0 else nn.Identity()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _transform_input(self, x: Tensor) -> Tensor:
        # ImageNet-normalised RGB -> (pixel - 0.5) / 0.5, channel by channel.
        scale = x.new_tensor([s / 0.5 for s in IMAGENET_STD]).view(1, 3, 1, 1)
        shift = x.new_tensor([(m - 0.5) / 0.5 for m in IMAGENET_MEAN]).view(1, 3, 1, 1)
        return x * scale + shift

    def _stem_to_4a(self, x: Tensor) -> Tensor:
        if self.transform_input and x.shape[1] == 3:
            x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        return self.inception4a(x)

    def _4a_to_end(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """From the 4a output to the 5b output; also returns the 4d output (aux2's input)."""
        x4d = self.inception4d(self.inception4c(self.inception4b(x)))
        x = self.maxpool4(self.inception4e(x4d))
        return self.inception5b(self.inception5a(x)), x4d

    def forward_features(self, x: Tensor) -> Tensor:
        return self._4a_to_end(self._stem_to_4a(x))[0]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(self.avgpool(x).flatten(1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        x4a = self._stem_to_4a(x)
        x, x4d = self._4a_to_end(x4a)
        logits = self.forward_head(x)
        if self.training and self.aux1 is not None:
            return logits, self.aux1(x4a), self.aux2(x4d)
        return logits

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = self._make_fc(num_classes)
        if self.aux_logits:
            self.aux1 = (
                InceptionAux(512, num_classes, self.aux_drop_rate) if num_classes > 0 else None
            )
            self.aux2 = (
                InceptionAux(528, num_classes, self.aux_drop_rate) if num_classes > 0 else None
            )


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: GoogLeNet) -> dict[str, Tensor]:
    """torchvision's GoogLeNet state_dicts carry the aux heads; drop them for a model built
    without ``aux_logits``."""
    if model.aux1 is not None:
        return dict(state_dict)
    return {k: v for k, v in state_dict.items() if not k.startswith(("aux1.", "aux2."))}


@register_model(
    ModelCfg(
        paper=PAPER,
        min_input_size=(15, 15),
        first_conv="conv1.conv",
        classifier=("fc", "aux1.fc2", "aux2.fc2"),
        torchvision="googlenet",
    )
)
def googlenet(**kwargs) -> GoogLeNet:
    return GoogLeNet(**kwargs)
