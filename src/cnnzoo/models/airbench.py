"""The airbench94 network (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU",
2024, github.com/KellerJordan/cifar10-airbench).

A small, wide VGG-like net built for very fast CIFAR-10 training:

- a frozen 2x2 "whitening" conv (no padding) whose 2 * 3 * 2 * 2 = 24 filters are the
  eigenvectors of the covariance of 2x2 image patches, scaled by 1/sqrt(eigenvalue) and taken
  with both signs (so GELU keeps the information of each direction), then GELU;
- three blocks conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU of widths
  64 / 256 / 256 (bias-free convs initialised as identity maps on their first channels);
- global max pooling and a bias-free linear layer whose output is scaled by 1/9.

BatchNorm follows the script: eps 1e-12, a running-statistics momentum of 0.4 (the script's
0.6 in the other convention), scale fixed at 1 (not trained), shift trained. The whitening
weights come from data: the engine calls ``init_from_data(images)`` once with a batch of
normalised training images before training. The whitening bias stays trainable (the script
trains it for the first epochs only, a schedule left to the training config).
With 10 classes: 1,972,792 parameters, 1,971,352 of them trained (the whitening filters and
the BN scales are fixed).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import DataError
from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Jordan, 94% on CIFAR-10 in 3.29 seconds on a single GPU, arXiv:2404.00498, 2024"
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class FrozenScaleBatchNorm(nn.BatchNorm2d):
    """BatchNorm with a fixed unit scale and a learnt shift, as in airbench (eps 1e-12,
    running statistics updated with momentum 0.4)."""

    def __init__(self, num_features: int, momentum: float = 0.4, eps: float = 1e-12) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)


class ConvGroup(nn.Module):
    """airbench block: conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = FrozenScaleBatchNorm(out_chs)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)
        self.bn2 = FrozenScaleBatchNorm(out_chs)
        self.act = nn.GELU()
        for conv in (self.conv1, self.conv2):
            # start close to an identity map: channel i passes input channel i through
            nn.init.dirac_(conv.weight[: conv.in_channels])

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        return self.act(self.bn2(self.conv2(x)))


class AirBench94(ClassifierModel):
    """airbench94 (Jordan 2024): frozen patch-whitening conv, three conv-pool-BN-GELU groups,
    global max pool and a scaled linear head; built to reach 94% on CIFAR-10 in seconds."""

    def __init__(
        self,
        widths: tuple[int, int, int] = (64, 256, 256),
        num_classes: int = 10,
        in_chans: int = 3,
        whiten_kernel: int = 2,
        logit_scale: float = 1 / 9,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = widths[-1]
        self.logit_scale = logit_scale
        whiten_width = 2 * in_chans * whiten_kernel**2
        self.whiten = nn.Conv2d(in_chans, whiten_width, whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        self.block1 = ConvGroup(whiten_width, widths[0])
        self.block2 = ConvGroup(widths[0], widths[1])
        self.block3 = ConvGroup(widths[1], widths[2])
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = (
            nn.Linear(widths[2], num_classes, bias=False) if num_classes > 0 else nn.Identity()
        )
        self.feature_info = [
            dict(module=f"block{i + 1}", num_chs=w, reduction=2 ** (i + 1))
            for i, w in enumerate(widths)
        ]

    @torch.no_grad()
    def init_from_data(self, images: Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from ``images`` (N, C, H, W), normalised training images:
        the eigenvectors of the (uncentred) covariance of their k x k patches, each scaled by
        1 / sqrt(eigenvalue + eps), with both signs."""
        k = self.whiten.kernel_size[0]
        if images.dim() != 4 or images.shape[1] != self.in_chans or min(images.shape[-2:]) < k:
            raise DataError(
                f"init_from_data needs a batch of {self.in_chans}-channel images shaped "
                f"(N, {self.in_chans}, H, W) with H, W >= {k}; got {tuple(images.shape)}"
            )
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1)  # N, C, H', W', k, k
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, self.in_chans * k * k)
        patches = patches.to(torch.float64)
        cov = patches.T @ patches / patches.shape[0]
        eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
        eigvals, eigvecs = eigvals.flip(0), eigvecs.flip(1)  # largest first
        filters = (eigvecs / torch.sqrt(eigvals.clamp_min(0) + eps)).T
        filters = filters.reshape(-1, self.in_chans, k, k)
        weight = torch.cat((filters, -filters)).to(self.whiten.weight)
        self.whiten.weight.copy_(weight)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.act(self.whiten(x))
        return self.block3(self.block2(self.block1(x)))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.pool(x).flatten(1)
        if pre_logits or self.num_classes == 0:
            return x
        return self.fc(x) * self.logit_scale

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = (
            nn.Linear(self.num_features, num_classes, bias=False)
            if num_classes > 0
            else nn.Identity()
        )


@register_model(
    ModelCfg(
        paper=PAPER,
        input_size=(3, 32, 32),
        min_input_size=(9, 9),
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        num_classes=10,
        first_conv="whiten",
        classifier="fc",
    )
)
def airbench94(**kwargs) -> AirBench94:
    return AirBench94(**kwargs)
