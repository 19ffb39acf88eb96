"""RepVGG (Ding, Zhang, Ma, Han, Ding and Sun, "RepVGG: Making VGG-style ConvNets Great Again",
CVPR 2021).

A plain VGG-like stack of 3x3 convolutions and ReLUs at inference, trained as a multi-branch
network: every block sums a 3x3 conv+BN, a 1x1 conv+BN and (when the shapes allow) an
identity BN before its ReLU. All three branches are linear, so after training they fold
into one 3x3 convolution with bias (``model.reparameterize()``), giving the same outputs at
a fraction of the memory traffic.

Five stages of 3x3 layers; the first layer of each stage has stride 2. RepVGG-A has
[1, 2, 4, 14, 1] layers, RepVGG-B [1, 4, 6, 16, 1]; widths are
[min(64, 64a), 64a, 128a, 256a, 512b]. The ``gN`` variants use N-group convolutions in the
3rd, 5th, 7th, ... layers (1-based, counting the stem) up to the 21st (A) / 27th (B).
Parameter counts published in the paper (Table 3) are those of the fused (deployed) network.
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import ConfigError
from cnnzoo.layers import ClassifierHead, ConvNormAct
from cnnzoo.models._base import PooledHeadModel
from cnnzoo.models._registry import ModelCfg, register_model
from cnnzoo.models._reparam import reparameterize_model

PAPER = "Ding et al., RepVGG: Making VGG-style ConvNets Great Again, CVPR 2021"

DEPTHS_A = (1, 2, 4, 14, 1)
DEPTHS_B = (1, 4, 6, 16, 1)


def _fold_bn(weight: Tensor, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The kernel and bias of ``bn(conv(x))`` for a bias-free conv of ``weight``, with BN in
    its inference form ``gamma * (y - mean) / sqrt(var + eps) + beta``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return weight * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


class RepVGGBlock(nn.Module):
    """RepVGG block (Ding et al., CVPR 2021): ``relu(bn(conv3x3(x)) + bn(conv1x1(x)) + bn(x))``
    while training; ``reparameterize()`` folds the three linear branches into one 3x3 conv.
    ``deploy=True`` builds the fused form directly (to load weights saved after fusion)."""

    def __init__(
        self, in_chs: int, out_chs: int, stride: int = 1, groups: int = 1, deploy: bool = False
    ) -> None:
        super().__init__()
        self.in_chs, self.out_chs, self.stride, self.groups = in_chs, out_chs, stride, groups
        self.act = nn.ReLU(inplace=True)
        self.identity: nn.BatchNorm2d | None = None
        self.fused: nn.Conv2d | None = None
        if deploy:
            self.fused = nn.Conv2d(in_chs, out_chs, 3, stride, 1, groups=groups, bias=True)
            return
        self.conv3x3 = ConvNormAct(in_chs, out_chs, 3, stride, groups=groups, act_layer=None)
        self.conv1x1 = ConvNormAct(in_chs, out_chs, 1, stride, groups=groups, act_layer=None)
        if in_chs == out_chs and stride == 1:
            self.identity = nn.BatchNorm2d(out_chs)

    def forward(self, x: Tensor) -> Tensor:
        if self.fused is not None:
            return self.act(self.fused(x))
        y = self.conv3x3(x) + self.conv1x1(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return self.act(y)

    @torch.no_grad()
    def fused_kernel(self) -> tuple[Tensor, Tensor]:
        """The 3x3 kernel and bias equal to the sum of the branches (BN in inference form)."""
        kernel, bias = _fold_bn(self.conv3x3.conv.weight, self.conv3x3.bn)
        k1, b1 = _fold_bn(self.conv1x1.conv.weight, self.conv1x1.bn)
        kernel = kernel + nn.functional.pad(k1, (1, 1, 1, 1))
        bias = bias + b1
        if self.identity is not None:
            # identity as a 3x3 conv: a 1 at the centre, from channel i to channel i
            # (within its group, the input channel i has index i mod in_chs/groups)
            per_group = self.in_chs // self.groups
            eye = torch.zeros_like(kernel)
            idx = torch.arange(self.out_chs)
            eye[idx, idx % per_group, 1, 1] = 1.0
            ki, bi = _fold_bn(eye, self.identity)
            kernel, bias = kernel + ki, bias + bi
        return kernel, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the three branches by one 3x3 conv with bias, in place."""
        if self.fused is not None:
            return
        kernel, bias = self.fused_kernel()
        fused = nn.Conv2d(
            self.in_chs,
            self.out_chs,
            3,
            self.stride,
            1,
            groups=self.groups,
            bias=True,
            device=kernel.device,
            dtype=kernel.dtype,
        )
        fused.weight.copy_(kernel)
        fused.bias.copy_(bias)
        self.fused = fused
        del self.conv3x3, self.conv1x1
        self.identity = None


class RepVGG(PooledHeadModel):
    """RepVGG (Ding et al., CVPR 2021): a VGG-style stack of RepVGG blocks in five stages,
    trained with 1x1 and identity branches that fold away into plain 3x3 convs for inference.

    ``depths`` are the layers per stage (stem included), ``widths`` the five stage widths,
    ``groups`` the group count of the grouped layers (1: none); ``deploy=True`` builds the
    fused network (what ``reparameterize()`` leaves), e.g. to load weights saved after fusion.
    """

    def __init__(
        self,
        depths: tuple[int, ...] = DEPTHS_A,
        widths: tuple[int, ...] = (48, 48, 96, 192, 1280),
        groups: int = 1,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        deploy: bool = False,
    ) -> None:
        super().__init__()
        if len(depths) != 5 or len(widths) != 5:
            raise ConfigError(
                f"RepVGG has five stages: depths and widths need 5 entries, got {depths} and {widths}"
            )
        if any(w % groups for w in widths[1:4]):
            raise ConfigError(
                f"groups={groups} must divide the widths of the grouped stages, {widths[1:4]}"
            )
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = widths[-1]
        self.stem = RepVGGBlock(in_chans, widths[0], stride=2, deploy=deploy)
        layer_idx = 1  # the stem is layer 0; the grouped layers are 2, 4, 6, ... (0-based)
        stages, in_chs = [], widths[0]
        self.feature_info = [dict(module="stem", num_chs=widths[0], reduction=2)]
        for i, (depth, out_chs) in enumerate(zip(depths[1:], widths[1:], strict=True)):
            blocks = []
            for j in range(depth):
                grouped = layer_idx % 2 == 0
                blocks.append(
                    RepVGGBlock(
                        in_chs,
                        out_chs,
                        stride=2 if j == 0 else 1,
                        groups=groups if grouped else 1,
                        deploy=deploy,
                    )
                )
                in_chs = out_chs
                layer_idx += 1
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(
                dict(module=f"stages.{i}", num_chs=out_chs, reduction=2 ** (i + 2))
            )
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))

    def reparameterize(self) -> RepVGG:
        """Fuse every block into a single 3x3 conv (call in eval mode); returns ``self``."""
        return reparameterize_model(self)


_TIMM_KEYS = (
    (".conv_kxk.", ".conv3x3."),
    (".conv_1x1.", ".conv1x1."),
    (".reparam_conv.", ".fused."),
)
_OFFICIAL_KEYS = (
    (".rbr_dense.", ".conv3x3."),
    (".rbr_1x1.", ".conv1x1."),
    (".rbr_identity.", ".identity."),
    (".rbr_reparam.", ".fused."),
)


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Map timm's (``conv_kxk``/``conv_1x1``, ``reparam_conv`` when deployed) or the official repository's (``stage0``..``stage4``,
    ``rbr_dense``/``rbr_1x1``/``rbr_identity``, ``rbr_reparam`` when deployed, ``linear``) keys
    to ours."""
    out = {}
    for key, value in state_dict.items():
        key = "." + key
        for old, new in _TIMM_KEYS + _OFFICIAL_KEYS:
            key = key.replace(old, new)
        key = key[1:]
        key = re.sub(r"^stage0\.", "stem.", key)
        key = re.sub(r"^stage([1-4])\.", lambda m: f"stages.{int(m.group(1)) - 1}.", key)
        key = re.sub(r"^linear\.", "head.fc.", key)
        out[key] = value
    return out


def _widths(a: float, b: float) -> tuple[int, ...]:
    return (min(64, int(64 * a)), int(64 * a), int(128 * a), int(256 * a), int(512 * b))


def _cfg(timm: str | None = None) -> ModelCfg:
    # the stem's every branch sees the input: the 3x3 and 1x1 convs, or the fused conv
    stem = ("stem.conv3x3.conv", "stem.conv1x1.conv", "stem.fused")
    return ModelCfg(paper=PAPER, first_conv=stem, classifier="head.fc", timm=timm)


@register_model(_cfg("repvgg_a0"))
def repvgg_a0(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_A, widths=_widths(0.75, 2.5)) | kwargs))


@register_model(_cfg("repvgg_a1"))
def repvgg_a1(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_A, widths=_widths(1, 2.5)) | kwargs))


@register_model(_cfg("repvgg_a2"))
def repvgg_a2(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_A, widths=_widths(1.5, 2.75)) | kwargs))


@register_model(_cfg("repvgg_b0"))
def repvgg_b0(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(1, 2.5)) | kwargs))


@register_model(_cfg("repvgg_b1"))
def repvgg_b1(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(2, 4)) | kwargs))


@register_model(_cfg())
def repvgg_b1g2(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(2, 4), groups=2) | kwargs))


@register_model(_cfg("repvgg_b1g4"))
def repvgg_b1g4(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(2, 4), groups=4) | kwargs))


@register_model(_cfg("repvgg_b2"))
def repvgg_b2(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(2.5, 5)) | kwargs))


@register_model(_cfg("repvgg_b2g4"))
def repvgg_b2g4(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(2.5, 5), groups=4) | kwargs))


@register_model(_cfg("repvgg_b3"))
def repvgg_b3(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(3, 5)) | kwargs))


@register_model(_cfg())
def repvgg_b3g2(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(3, 5), groups=2) | kwargs))


@register_model(_cfg("repvgg_b3g4"))
def repvgg_b3g4(**kwargs) -> RepVGG:
    return RepVGG(**(dict(depths=DEPTHS_B, widths=_widths(3, 5), groups=4) | kwargs))
