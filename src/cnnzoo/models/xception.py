"""Xception (Chollet, "Xception: Deep learning with depthwise separable convolutions", CVPR 2017).

Figure 5 of the paper: an entry flow (two 3x3 convs, then three residual blocks of two
separable convs and a 3x3/2 max-pool, widening 128 -> 256 -> 728), a middle flow of eight
residual blocks of three separable convs at 728 channels (each with its own weights), and an
exit flow (a residual block 728 -> 1024 with a max-pool, separable convs to 1536 and 2048,
global average pooling, dropout 0.5 and a linear classifier). Every conv is followed by batch
normalisation; the separable convs have no activation between the depthwise and pointwise
steps; residual shortcuts that change shape are strided 1x1 convs with BN.

22,855,952 parameters (the paper's 22.8M). The layout matches timm's ``legacy_xception``
(the Keras network) and :func:`checkpoint_filter_fn` maps its weights onto the names used
here, so outputs are identical. Inputs from 7x7 up run (the paper's input is 299x299).
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.layers import ConvNormAct
from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Chollet, Xception: Deep learning with depthwise separable convolutions, CVPR 2017"


class SeparableConvBN(nn.Module):
    """Depthwise separable convolution as in Xception: a 3x3 depthwise conv, a 1x1 pointwise conv
    with no non-linearity in between, then BN (and ReLU when ``act``)."""

    def __init__(self, in_chs: int, out_chs: int, act: bool = False) -> None:
        super().__init__()
        self.dw = nn.Conv2d(in_chs, in_chs, 3, padding=1, groups=in_chs, bias=False)
        self.pw = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.pw(self.dw(x))))


class XceptionBlock(nn.Module):
    """Residual block of Xception: ``reps`` x (ReLU, separable conv, BN), a 3x3/2 max-pool when
    strided, plus the input (through a strided 1x1 conv + BN where the shape changes).

    ``grow_first`` widens in the first separable conv (else in the last); the first block of
    the entry flow skips the leading ReLU (its input has just been through one).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        reps: int,
        stride: int = 1,
        start_with_relu: bool = True,
        grow_first: bool = True,
    ) -> None:
        super().__init__()
        self.start_with_relu = start_with_relu
        widths = [in_chs] + [out_chs] * reps if grow_first else [in_chs] * reps + [out_chs]
        self.seps = nn.ModuleList(
            SeparableConvBN(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.pool = nn.MaxPool2d(3, stride=stride, padding=1) if stride > 1 else nn.Identity()
        if in_chs != out_chs or stride > 1:
            self.skip = ConvNormAct(in_chs, out_chs, 1, stride=stride, padding=0, act_layer=None)
        else:
            self.skip = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for i, sep in enumerate(self.seps):
            if i > 0 or self.start_with_relu:
                y = torch.relu(y)
            y = sep(y)
        return self.pool(y) + self.skip(x)


class Xception(ClassifierModel):
    """Xception (Chollet 2017): Inception taken to the extreme, with every cross-channel and
    spatial correlation mapped apart by depthwise separable convs, in a residual stack."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 2048
        self.stem = nn.Sequential(
            ConvNormAct(in_chans, 32, 3, stride=2, padding=0), ConvNormAct(32, 64, 3, padding=0)
        )
        self.entry_flow = nn.Sequential(
            XceptionBlock(64, 128, 2, stride=2, start_with_relu=False),
            XceptionBlock(128, 256, 2, stride=2),
            XceptionBlock(256, 728, 2, stride=2),
        )
        self.middle_flow = nn.Sequential(*(XceptionBlock(728, 728, 3) for _ in range(8)))
        self.exit_flow = nn.Sequential(
            XceptionBlock(728, 1024, 2, stride=2, grow_first=False),
            SeparableConvBN(1024, 1536, act=True),
            SeparableConvBN(1536, 2048, act=True),
        )
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = self._make_fc(num_classes)
        self.feature_info = [
            dict(module="stem", num_chs=64, reduction=2),
            dict(module="entry_flow.0", num_chs=128, reduction=4),
            dict(module="entry_flow.1", num_chs=256, reduction=8),
            dict(module="middle_flow", num_chs=728, reduction=16),
            dict(module="exit_flow", num_chs=2048, reduction=32),
        ]
        self._init_weights()

    def _make_fc(self, num_classes: int) -> nn.Module:
        return nn.Linear(2048, num_classes) if num_classes > 0 else nn.Identity()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.entry_flow(self.stem(x))
        return self.exit_flow(self.middle_flow(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(self.global_pool(x).flatten(1))
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = self._make_fc(num_classes)


def _block_prefix(n: int) -> str:
    """timm's ``block{n}`` (1..12) -> its place here."""
    if n <= 3:
        return f"entry_flow.{n - 1}"
    if n <= 11:
        return f"middle_flow.{n - 4}"
    return "exit_flow.0"


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: Xception) -> dict[str, Tensor]:
    """Map timm ``legacy_xception`` keys onto these names.

    timm: ``conv1/bn1/conv2/bn2`` (stem), ``block{n}.skip/skipbn``, ``block{n}.rep.{j}`` (ReLUs,
    separable convs ``conv1`` (depthwise) + ``pointwise``, and BNs, interleaved), ``conv3/bn3``,
    ``conv4/bn4``, ``fc``. The k-th separable conv of a block, and the BN right after it,
    become ``seps.{k}``.
    """
    # rep index of each separable conv -> its rank k within the block
    sep_pos: dict[str, list[int]] = {}
    for key in state_dict:
        if m := re.fullmatch(r"block(\d+)\.rep\.(\d+)\.conv1\.weight", key):
            sep_pos.setdefault(m[1], []).append(int(m[2]))
    rank = {(b, j): k for b, pos in sep_pos.items() for k, j in enumerate(sorted(pos))}
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if m := re.fullmatch(r"block(\d+)\.skip\.(.+)", key):
            out[f"{_block_prefix(int(m[1]))}.skip.conv.{m[2]}"] = value
        elif m := re.fullmatch(r"block(\d+)\.skipbn\.(.+)", key):
            out[f"{_block_prefix(int(m[1]))}.skip.bn.{m[2]}"] = value
        elif m := re.fullmatch(r"block(\d+)\.rep\.(\d+)\.(conv1|pointwise)\.(.+)", key):
            part = "dw" if m[3] == "conv1" else "pw"
            out[f"{_block_prefix(int(m[1]))}.seps.{rank[(m[1], int(m[2]))]}.{part}.{m[4]}"] = value
        elif m := re.fullmatch(r"block(\d+)\.rep\.(\d+)\.(.+)", key):
            out[f"{_block_prefix(int(m[1]))}.seps.{rank[(m[1], int(m[2]) - 1)]}.bn.{m[3]}"] = value
        else:
            module, param = key.rsplit(".", 1)
            out[f"{_TIMM_NAMES.get(module, module)}.{param}"] = value
    return out


_TIMM_NAMES = {
    "conv1": "stem.0.conv",
    "bn1": "stem.0.bn",
    "conv2": "stem.1.conv",
    "bn2": "stem.1.bn",
    "conv3.conv1": "exit_flow.1.dw",
    "conv3.pointwise": "exit_flow.1.pw",
    "bn3": "exit_flow.1.bn",
    "conv4.conv1": "exit_flow.2.dw",
    "conv4.pointwise": "exit_flow.2.pw",
    "bn4": "exit_flow.2.bn",
}


@register_model(
    ModelCfg(
        paper=PAPER,
        input_size=(3, 299, 299),
        min_input_size=(7, 7),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        first_conv="stem.0.conv",
        classifier="fc",
        timm="legacy_xception",
    )
)
def xception(**kwargs) -> Xception:
    return Xception(**kwargs)
