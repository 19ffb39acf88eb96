"""SE-Net (Hu, Shen and Sun, "Squeeze-and-Excitation Networks", CVPR 2018).

A Squeeze-and-Excitation unit pools each channel of a residual branch to one number, passes
the vector through a bottleneck MLP (reduction ratio r = 16) and rescales the channels by
its sigmoid, before the branch joins the shortcut (paper Fig. 3, "SE-ResNet module").
These networks are the ResNets of :mod:`cnnzoo.models.resnet` with ``se_ratio=1/16``
(:class:`cnnzoo.layers.SqueezeExcite` in every block, keys ``se.fc1`` / ``se.fc2`` as in
timm), stride on the 3x3 as timm's ``seresnet*`` (the paper's Caffe models strode the first
1x1), initialised as timm's (each block's last BN scale zero, so the branch, SE unit included,
starts at zero). The reduced width is channels / r exactly as in the paper; timm rounds it up to a
multiple of 8, which only changes the 64-channel blocks of SE-ResNet-18/34 (4 vs 8 units),
so those two are not timm's ``seresnet18/34``.
"""

from __future__ import annotations

from cnnzoo.models._registry import ModelCfg, register_model
from cnnzoo.models.resnet import BasicBlock, Bottleneck, ResNet, imagenet_resnet

PAPER = "Hu, Shen and Sun, Squeeze-and-Excitation Networks, CVPR 2018"
SE_RATIO = 1 / 16


def _cfg(timm: str | None = None) -> ModelCfg:
    return ModelCfg(
        paper=PAPER, min_input_size=(32, 32), first_conv="conv1", classifier="fc", timm=timm
    )


@register_model(_cfg())
def se_resnet18(se_ratio: float = SE_RATIO, **kwargs) -> ResNet:
    return imagenet_resnet(BasicBlock, [2, 2, 2, 2], se_ratio=se_ratio, **kwargs)


@register_model(_cfg())
def se_resnet34(se_ratio: float = SE_RATIO, **kwargs) -> ResNet:
    return imagenet_resnet(BasicBlock, [3, 4, 6, 3], se_ratio=se_ratio, **kwargs)


@register_model(_cfg("seresnet50"))
def se_resnet50(se_ratio: float = SE_RATIO, **kwargs) -> ResNet:
    return imagenet_resnet(Bottleneck, [3, 4, 6, 3], se_ratio=se_ratio, **kwargs)


@register_model(_cfg("seresnet101"))
def se_resnet101(se_ratio: float = SE_RATIO, **kwargs) -> ResNet:
    return imagenet_resnet(Bottleneck, [3, 4, 23, 3], se_ratio=se_ratio, **kwargs)


@register_model(_cfg("seresnet152"))
def se_resnet152(se_ratio: float = SE_RATIO, **kwargs) -> ResNet:
    return imagenet_resnet(Bottleneck, [3, 8, 36, 3], se_ratio=se_ratio, **kwargs)


@register_model(_cfg("seresnext50_32x4d"))
def se_resnext50_32x4d(se_ratio: float = SE_RATIO, **kwargs) -> ResNet:
    return imagenet_resnet(
        Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4, se_ratio=se_ratio, **kwargs
    )
