"""Residual networks: ResNet (He et al. 2016), ResNeXt (Xie et al. 2017), Wide ResNet
(Zagoruyko and Komodakis 2016) and pre-activation ResNet (He et al. 2016b).

A residual unit learns a correction F(x) to its input and adds it back: y = F(x) + x.
Four blocks cover the lineage:

- :class:`BasicBlock`: two 3x3 convs (ResNet-18/34 and the CIFAR ResNets);
- :class:`Bottleneck`: 1x1 reduce, 3x3, 1x1 expand (ResNet-50/101/152; grouped 3x3 for
  ResNeXt, a wider 3x3 for Wide ResNet). The stride sits on the 3x3, as in torchvision's
  "ResNet v1.5" (the paper's Caffe models strode the first 1x1); same parameters, +0.5% top-1;
- :class:`PreActBasicBlock` / :class:`PreActBottleneck`: the same convs in BN-ReLU-conv
  order, so that the identity path from block to block is clean (He et al. 2016b).

Every block can carry a Squeeze-and-Excitation unit on its residual branch (``se_ratio``;
used by :mod:`cnnzoo.models.senet`) and stochastic depth (``drop_path_rate``).

ImageNet networks use torchvision's parameter names (conv1, bn1, layer1..4, fc,
downsample.0/1), so its state_dicts load as they are. The CIFAR networks of He et al. 2016,
section 4.2, have a 3x3 stem, no max-pool and three stages of 16/32/64 channels; their
shortcuts are option A (identity, subsampled, zero-padded: no parameters) or option B
(1x1 projection). Pre-activation networks follow timm's ``resnetv2_*`` layout (the stem
conv is not normalised; each block normalises its own input; a final BN-ReLU precedes the
pooling); :func:`checkpoint_filter_fn` maps timm's key names to ours. That layout equals the
authors' Torch code up to where the stem's BN-ReLU sits relative to the max-pool (the two
commute whenever BN's scale is positive).

Initialisation: convs He-normal over fan-out, BN at scale 1 and shift 0, as in every
reference. The ImageNet networks (ResNet, ResNeXt, Wide ResNet-50-2 and the SE-ResNets built
from them) also zero each block's last BN scale, as timm does (``zero_init_last``, Goyal et al.
2017), so every block starts as the identity and a 150-layer net does not grow its activations
a thousandfold at init; ``zero_init_residual=False`` gives torchvision's init. The CIFAR
networks keep He et al.'s init (no zero-init: their 0.27M-1.7M networks train as published),
and the pre-activation networks timm's ``resnetv2`` init (no zero-init either); both take
``zero_init_residual=True``.

``min_input_size`` is the total stride (32 for ImageNet layouts, 4 for CIFAR): the smallest
input whose last stage still sees one real pixel. Smaller inputs also run, since every conv
pads, but their later stride-2 layers then only see padding around a single pixel.
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.errors import ConfigError
from cnnzoo.layers import DropPath, SqueezeExcite
from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "He, Zhang, Ren and Sun, Deep Residual Learning for Image Recognition, CVPR 2016"
PAPER_RESNEXT = "Xie, Girshick, Dollar, Tu and He, Aggregated Residual Transformations for Deep Neural Networks, CVPR 2017"
PAPER_WRN = "Zagoruyko and Komodakis, Wide Residual Networks, BMVC 2016"
PAPER_PREACT = "He, Zhang, Ren and Sun, Identity Mappings in Deep Residual Networks, ECCV 2016"

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def conv3x3(in_chs: int, out_chs: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 3, stride, padding=1, groups=groups, bias=False)


def conv1x1(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 1, stride, bias=False)


class PadShortcut(nn.Module):
    """Option A shortcut (He et al. 2016, section 3.3): identity, subsampled by the stride,
    with zero channels appended for the increased width. It has no parameters."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.extra_chs = out_chs - in_chs
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_chs))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, zero_channels={self.extra_chs}"


def _se(channels: int, se_ratio: float | None) -> nn.Module:
    return SqueezeExcite(channels, rd_ratio=se_ratio) if se_ratio else nn.Identity()


class BasicBlock(nn.Module):
    """Basic residual block (He et al. 2016, Fig. 2 left): conv3x3-BN-ReLU, conv3x3-BN,
    add the shortcut, ReLU."""

    expansion = 1
    preact = False

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float | None = None,
        drop_path: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ConfigError(
                "BasicBlock has no grouped or widened 3x3 (groups=1, width_per_group=64 only); use Bottleneck"
            )
        self.conv1 = conv3x3(in_chs, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = _se(planes, se_ratio)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(self.drop(y)))
        y = self.se(y)
        return self.relu(self.drop_path(y) + shortcut)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)


class Bottleneck(nn.Module):
    """Bottleneck block (He et al. 2016, Fig. 5 right): 1x1 reduce, 3x3 (stride here; grouped
    for ResNeXt), 1x1 expand by 4, each followed by BN; add the shortcut, ReLU."""

    expansion = 4
    preact = False

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float | None = None,
        drop_path: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        width = int(planes * base_width / 64) * groups
        out_chs = planes * self.expansion
        self.conv1 = conv1x1(in_chs, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(dropout)
        self.conv3 = conv1x1(width, out_chs)
        self.bn3 = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.se = _se(out_chs, se_ratio)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(self.drop(y)))
        y = self.se(y)
        return self.relu(self.drop_path(y) + shortcut)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016b, Fig. 4e): BN-ReLU-conv3x3 twice, then add
    the shortcut with no activation after it. A projection (or option-A) shortcut starts
    from the pre-activated input, as in the authors' code; an identity shortcut carries x."""

    expansion = 1
    preact = True

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float | None = None,
        drop_path: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ConfigError(
                "PreActBasicBlock has no grouped or widened 3x3; use PreActBottleneck"
            )
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = conv3x3(in_chs, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.drop = nn.Dropout(dropout)
        self.conv2 = conv3x3(planes, planes)
        self.relu = nn.ReLU(inplace=True)
        self.se = _se(planes, se_ratio)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        x_pre = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(x_pre)
        y = self.conv1(x_pre)
        y = self.conv2(self.drop(self.relu(self.bn2(y))))
        y = self.se(y)
        return self.drop_path(y) + shortcut

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv2.weight)


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck (He et al. 2016b): BN-ReLU-conv1x1, BN-ReLU-conv3x3 (stride),
    BN-ReLU-conv1x1 (expand by 4), then add the shortcut."""

    expansion = 4
    preact = True

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float | None = None,
        drop_path: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        width = int(planes * base_width / 64) * groups
        out_chs = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = conv1x1(in_chs, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn3 = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(dropout)
        self.conv3 = conv1x1(width, out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.se = _se(out_chs, se_ratio)
        self.drop_path = DropPath(drop_path)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        x_pre = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(x_pre)
        y = self.conv1(x_pre)
        y = self.conv2(self.relu(self.bn2(y)))
        y = self.conv3(self.drop(self.relu(self.bn3(y))))
        y = self.se(y)
        return self.drop_path(y) + shortcut

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.weight)


Block = type[BasicBlock] | type[Bottleneck] | type[PreActBasicBlock] | type[PreActBottleneck]


class ResNet(ClassifierModel):
    """Residual network (He et al. 2016): a stem, stages of residual blocks that halve the
    resolution and double the width, global average pooling and one linear layer.

    ``stem="imagenet"``: conv7x7/2 and max-pool/2 (reductions 4..32 over four stages);
    ``stem="cifar"``: one conv3x3 (He et al. 2016, section 4.2). ``widths`` are the stages'
    ``planes`` (block output = planes x expansion). ``shortcut`` is ``"B"`` (projection when
    the shape changes, identity otherwise) or ``"A"`` (zero-padded identity, no parameters).
    Pre-activation blocks drop the stem's BN-ReLU and add a final BN-ReLU. ``se_ratio``
    puts a Squeeze-and-Excitation unit in every block; ``drop_path_rate`` is the stochastic
    depth of the last block (linear in depth from 0); ``dropout`` is dropout between a
    block's convs (Wide ResNet); ``drop_rate`` is dropout before ``fc``.
    ``zero_init_residual`` zeroes each block's last BN scale (its last conv for
    pre-activation blocks), so every block starts as the identity.
    """

    def __init__(
        self,
        block: Block,
        layers: list[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        stem: str = "imagenet",
        stem_width: int = 64,
        shortcut: str = "B",
        groups: int = 1,
        width_per_group: int = 64,
        se_ratio: float | None = None,
        dropout: float = 0.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if shortcut not in ("A", "B"):
            raise ConfigError(
                f"shortcut must be 'A' (zero-padded identity) or 'B' (1x1 projection), got {shortcut!r}"
            )
        if len(widths) != len(layers):
            raise ConfigError(
                f"one width per stage: got {len(widths)} widths for {len(layers)} stages"
            )
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.preact = block.preact
        self.shortcut = shortcut
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, stem_width, 7, 2, padding=3, bias=False)
        else:
            self.conv1 = conv3x3(in_chans, stem_width)
        self.bn1 = nn.Identity() if self.preact else nn.BatchNorm2d(stem_width)
        self.act1 = nn.Identity() if self.preact else nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1) if stem == "imagenet" else nn.Identity()

        total, done = sum(layers), 0
        chs, reduction = stem_width, 4 if stem == "imagenet" else 1
        self.stage_names = [f"layer{i + 1}" for i in range(len(layers))]
        self.feature_info = []
        for i, (name, planes, depth) in enumerate(
            zip(self.stage_names, widths, layers, strict=True)
        ):
            stride = 1 if i == 0 else 2
            reduction *= stride
            rates = [drop_path_rate * (done + j) / max(total - 1, 1) for j in range(depth)]
            stage = self._make_stage(
                block, chs, planes, depth, stride, groups, width_per_group, se_ratio, rates, dropout
            )
            self.add_module(name, stage)
            chs = planes * block.expansion
            done += depth
            self.feature_info.append(dict(module=name, num_chs=chs, reduction=reduction))
        self.num_features = chs
        self.norm = nn.BatchNorm2d(chs) if self.preact else nn.Identity()
        self.final_act = nn.ReLU(inplace=True) if self.preact else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.drop_rate = drop_rate
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if hasattr(m, "zero_init_last"):
                    m.zero_init_last()

    def _make_stage(
        self,
        block: Block,
        in_chs: int,
        planes: int,
        depth: int,
        stride: int,
        groups: int,
        width_per_group: int,
        se_ratio: float | None,
        drop_paths: list[float],
        dropout: float,
    ) -> nn.Sequential:
        out_chs = planes * block.expansion
        downsample = None
        if stride != 1 or in_chs != out_chs:
            if self.shortcut == "A":
                downsample = PadShortcut(in_chs, out_chs, stride)
            elif self.preact:
                downsample = conv1x1(in_chs, out_chs, stride)
            else:
                downsample = nn.Sequential(
                    conv1x1(in_chs, out_chs, stride), nn.BatchNorm2d(out_chs)
                )
        blocks = [
            block(
                in_chs if j == 0 else out_chs,
                planes,
                stride if j == 0 else 1,
                downsample if j == 0 else None,
                groups=groups,
                base_width=width_per_group,
                se_ratio=se_ratio,
                drop_path=drop_paths[j],
                dropout=dropout,
            )
            for j in range(depth)
        ]
        return nn.Sequential(*blocks)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.final_act(self.norm(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        x = F.dropout(x, self.drop_rate, self.training)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()


def _timm_v2_key(key: str) -> str:
    if key.startswith("stem.conv."):
        return "conv1." + key[len("stem.conv.") :]
    if key.startswith("head.fc."):
        return "fc." + key[len("head.fc.") :]
    m = re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.(.*)$", key)
    if m is None:
        return key
    stage, blk, rest = int(m[1]) + 1, m[2], m[3]
    rest = re.sub(r"^downsample\.conv\.", "downsample.", rest)
    rest = re.sub(r"^norm(\d)\.", r"bn\1.", rest)
    return f"layer{stage}.{blk}.{rest}"


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Map timm's ``resnetv2_*`` keys (stem.conv, stages.i.blocks.j.norm1, head.fc as a 1x1
    conv) onto the pre-activation ResNet's names; torchvision/timm ResNet keys already fit."""
    out = {}
    for key, value in state_dict.items():
        new = _timm_v2_key(key)
        if new.startswith("fc.weight") and value.ndim == 4:
            value = value.flatten(1)
        out[new] = value
    return out


def _imagenet(paper: str, tv: str | None = None, timm: str | None = None) -> ModelCfg:
    return ModelCfg(
        paper=paper,
        min_input_size=(32, 32),
        first_conv="conv1",
        classifier="fc",
        torchvision=tv,
        timm=timm,
    )


def _cifar(paper: str) -> ModelCfg:
    return ModelCfg(
        paper=paper,
        input_size=(3, 32, 32),
        min_input_size=(4, 4),
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        num_classes=10,
        first_conv="conv1",
        classifier="fc",
    )


def _cifar_depth(depth: int, per_block: int) -> int:
    if (depth - 2) % per_block:
        raise ConfigError(f"CIFAR ResNet depth must be {per_block}n+2, got {depth}")
    return (depth - 2) // per_block


def imagenet_resnet(block: Block, layers: list[int], **kwargs) -> ResNet:
    """An ImageNet ResNet, each block's last BN scale zero unless ``zero_init_residual=False``."""
    return ResNet(block, layers, **{"zero_init_residual": True} | kwargs)


def cifar_resnet(depth: int, shortcut: str = "A", **kwargs) -> ResNet:
    """He et al. 2016 section 4.2: 6n+2 layers, 3 stages of n basic blocks, 16/32/64 channels."""
    n = _cifar_depth(depth, 6)
    return ResNet(
        BasicBlock,
        [n] * 3,
        widths=(16, 32, 64),
        stem="cifar",
        stem_width=16,
        shortcut=shortcut,
        **kwargs,
    )


# ImageNet ResNets (He et al. 2016, Table 1), stride on the 3x3 ("v1.5").


@register_model(_imagenet(PAPER, "resnet18", "resnet18"))
def resnet18(**kwargs) -> ResNet:
    return imagenet_resnet(BasicBlock, [2, 2, 2, 2], **kwargs)


@register_model(_imagenet(PAPER, "resnet34", "resnet34"))
def resnet34(**kwargs) -> ResNet:
    return imagenet_resnet(BasicBlock, [3, 4, 6, 3], **kwargs)


@register_model(_imagenet(PAPER, "resnet50", "resnet50"))
def resnet50(**kwargs) -> ResNet:
    return imagenet_resnet(Bottleneck, [3, 4, 6, 3], **kwargs)


@register_model(_imagenet(PAPER, "resnet101", "resnet101"))
def resnet101(**kwargs) -> ResNet:
    return imagenet_resnet(Bottleneck, [3, 4, 23, 3], **kwargs)


@register_model(_imagenet(PAPER, "resnet152", "resnet152"))
def resnet152(**kwargs) -> ResNet:
    return imagenet_resnet(Bottleneck, [3, 8, 36, 3], **kwargs)


# ResNeXt (Xie et al. 2017): cardinality x bottleneck width of the grouped 3x3 in stage 1.


@register_model(_imagenet(PAPER_RESNEXT, "resnext50_32x4d", "resnext50_32x4d"))
def resnext50_32x4d(**kwargs) -> ResNet:
    return imagenet_resnet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4, **kwargs)


@register_model(_imagenet(PAPER_RESNEXT, "resnext101_32x8d", "resnext101_32x8d"))
def resnext101_32x8d(**kwargs) -> ResNet:
    return imagenet_resnet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=8, **kwargs)


# Wide ResNets (Zagoruyko and Komodakis 2016).


@register_model(_imagenet(PAPER_WRN, "wide_resnet50_2", "wide_resnet50_2"))
def wide_resnet50_2(**kwargs) -> ResNet:
    """ResNet-50 with the bottleneck's inner 3x3 twice as wide (WRN-50-2, paper Table 7)."""
    return imagenet_resnet(Bottleneck, [3, 4, 6, 3], width_per_group=128, **kwargs)


@register_model(_cifar(PAPER_WRN))
def wrn28_10(dropout: float = 0.0, **kwargs) -> ResNet:
    """WRN-28-10: 3 stages of 4 pre-activation basic blocks, 160/320/640 channels (k=10),
    1x1 projection shortcuts; the paper's dropout between the convs is ``dropout=0.3``."""
    return ResNet(
        PreActBasicBlock,
        [4, 4, 4],
        widths=(160, 320, 640),
        stem="cifar",
        stem_width=16,
        dropout=dropout,
        **kwargs,
    )


# CIFAR ResNets (He et al. 2016, section 4.2 and Table 6).


@register_model(_cifar(PAPER))
def resnet14(shortcut: str = "B", **kwargs) -> ResNet:
    """The small CIFAR ResNet of the classic tutorials: two basic blocks per stage,
    16/32/64 channels, 1x1 projection shortcuts."""
    return cifar_resnet(14, shortcut=shortcut, **kwargs)


@register_model(_cifar(PAPER))
def resnet20(**kwargs) -> ResNet:
    return cifar_resnet(20, **kwargs)


@register_model(_cifar(PAPER))
def resnet32(**kwargs) -> ResNet:
    return cifar_resnet(32, **kwargs)


@register_model(_cifar(PAPER))
def resnet44(**kwargs) -> ResNet:
    return cifar_resnet(44, **kwargs)


@register_model(_cifar(PAPER))
def resnet56(**kwargs) -> ResNet:
    return cifar_resnet(56, **kwargs)


@register_model(_cifar(PAPER))
def resnet110(**kwargs) -> ResNet:
    return cifar_resnet(110, **kwargs)


# Pre-activation ResNets (He et al. 2016b), timm's resnetv2 layout.


@register_model(_imagenet(PAPER_PREACT, timm="resnetv2_18"))
def preact_resnet18(**kwargs) -> ResNet:
    return ResNet(PreActBasicBlock, [2, 2, 2, 2], **kwargs)


@register_model(_imagenet(PAPER_PREACT, timm="resnetv2_34"))
def preact_resnet34(**kwargs) -> ResNet:
    return ResNet(PreActBasicBlock, [3, 4, 6, 3], **kwargs)


@register_model(_imagenet(PAPER_PREACT, timm="resnetv2_50"))
def preact_resnet50(**kwargs) -> ResNet:
    return ResNet(PreActBottleneck, [3, 4, 6, 3], **kwargs)


@register_model(_imagenet(PAPER_PREACT, timm="resnetv2_101"))
def preact_resnet101(**kwargs) -> ResNet:
    return ResNet(PreActBottleneck, [3, 4, 23, 3], **kwargs)


@register_model(_imagenet(PAPER_PREACT, timm="resnetv2_152"))
def preact_resnet152(**kwargs) -> ResNet:
    return ResNet(PreActBottleneck, [3, 8, 36, 3], **kwargs)


@register_model(_cifar(PAPER_PREACT))
def preact_resnet110(shortcut: str = "A", **kwargs) -> ResNet:
    """Pre-activation ResNet-110 on CIFAR: 3 stages of 18 basic blocks, 16/32/64 channels."""
    n = _cifar_depth(110, 6)
    return ResNet(
        PreActBasicBlock,
        [n] * 3,
        widths=(16, 32, 64),
        stem="cifar",
        stem_width=16,
        shortcut=shortcut,
        **kwargs,
    )


@register_model(_cifar(PAPER_PREACT))
def preact_resnet164(**kwargs) -> ResNet:
    """Pre-activation ResNet-164 on CIFAR: 3 stages of 18 bottlenecks, outputs 64/128/256,
    1x1 projection shortcuts (the authors' resnet-1k-layers code, which strides the first
    1x1 where this strides the 3x3)."""
    n = _cifar_depth(164, 9)
    return ResNet(
        PreActBottleneck, [n] * 3, widths=(16, 32, 64), stem="cifar", stem_width=16, **kwargs
    )
