"""AlexNet (Krizhevsky, Sutskever and Hinton, "ImageNet classification with deep convolutional
neural networks", NeurIPS 2012).

Five convolutional layers (11x11/4, 5x5, 3x3, 3x3, 3x3) with overlapping 3x3/2 max-pooling
after the first, second and fifth, then three fully connected layers (4096, 4096, classes)
with dropout 0.5.

- ``alexnet``: torchvision's single-GPU variant (64/192/384/256/256 kernels, no LRN; the
  channel counts of Krizhevsky's "One weird trick" 2014 paper; dropout on the inputs of fc6
  and fc7). Same parameter names as torchvision, so its state_dict loads as is.
  61,100,840 parameters.
- ``alexnet_paper``: the network as published: 96/256/384/384/256 kernels, local response
  normalisation after conv1 and conv2, the two-GPU split written as ``groups=2`` on conv2,
  conv4 and conv5 (conv3 and the FC layers see both halves), dropout on the outputs of fc6
  and fc7 (section 4.2 and the authors' cuda-convnet / Caffe layer files), and the paper's
  initialisation (weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden FC
  layers, 0 elsewhere). 60,965,224 parameters (the paper's "60 million").

LRN (section 3.3): b = a / (k + alpha * sum of a^2 over n = 5 adjacent channels)^beta with
k = 2, alpha = 1e-4, beta = 0.75. PyTorch's ``LocalResponseNorm`` divides its alpha by n
(Caffe's convention), so the paper's formula is ``alpha=5e-4`` there: ``lrn_alpha=5e-4``,
the default. ``lrn_alpha=1e-4`` gives the value most ports copy into the Caffe convention
(a 5x weaker normalisation).

Both end in an adaptive 6x6 average pool (a no-op at 224x224, as in torchvision), so inputs
from 63x63 up work; 63x63 is the smallest that survives the three max-pools.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from cnnzoo.models._base import MLPHeadModel
from cnnzoo.models._registry import ModelCfg, register_model

PAPER = "Krizhevsky et al., ImageNet classification with deep convolutional neural networks, NeurIPS 2012"


class AlexNet(MLPHeadModel):
    """AlexNet (Krizhevsky et al. 2012): five convolutions and three fully connected layers, the
    net that started the deep CNN era on ImageNet.

    ``widths`` are the five conv layers' kernel counts, ``groups`` their group counts (the
    paper's two GPUs), ``lrn`` adds local response normalisation after conv1 and conv2
    (``lrn_alpha`` in PyTorch's convention, see the module docstring). ``dropout_after_fc``
    puts the dropout on the outputs of fc6 and fc7 (the paper) rather than on their inputs
    (torchvision). ``features`` and ``classifier`` are laid out as in torchvision
    (``features.0`` ... ``classifier.6``; fc6, fc7, fc8 at ``classifier.1/4/6``, or
    ``classifier.0/3/6`` with ``dropout_after_fc``), so torchvision weights load when the
    architecture matches.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        widths: tuple[int, int, int, int, int] = (64, 192, 384, 256, 256),
        groups: tuple[int, int, int, int, int] = (1, 1, 1, 1, 1),
        lrn: bool = False,
        lrn_alpha: float = 5e-4,
        paper_init: bool = False,
        dropout_after_fc: bool = False,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 4096
        c1, c2, c3, c4, c5 = widths
        g1, g2, g3, g4, g5 = groups

        def norm() -> list[nn.Module]:
            return [nn.LocalResponseNorm(size=5, alpha=lrn_alpha, beta=0.75, k=2.0)] if lrn else []

        layers: list[nn.Module] = [
            nn.Conv2d(in_chans, c1, 11, stride=4, padding=2, groups=g1),
            nn.ReLU(inplace=True),
        ]
        layers += [*norm(), nn.MaxPool2d(3, stride=2)]
        pool1 = len(layers) - 1
        layers += [nn.Conv2d(c1, c2, 5, padding=2, groups=g2), nn.ReLU(inplace=True)]
        layers += [*norm(), nn.MaxPool2d(3, stride=2)]
        pool2 = len(layers) - 1
        layers += [nn.Conv2d(c2, c3, 3, padding=1, groups=g3), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(c3, c4, 3, padding=1, groups=g4), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(c4, c5, 3, padding=1, groups=g5), nn.ReLU(inplace=True)]
        layers += [nn.MaxPool2d(3, stride=2)]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        hidden: list[nn.Module] = []
        for fc in (nn.Linear(c5 * 6 * 6, 4096), nn.Linear(4096, 4096)):  # fc6, fc7
            layer, drop = [fc, nn.ReLU(inplace=True)], nn.Dropout(drop_rate)
            hidden += [*layer, drop] if dropout_after_fc else [drop, *layer]
        self.classifier = nn.Sequential(*hidden, self._make_fc(num_classes))
        self.feature_info = [
            dict(module=f"features.{pool1}", num_chs=c1, reduction=8),
            dict(module=f"features.{pool2}", num_chs=c2, reduction=16),
            dict(module=f"features.{len(layers) - 1}", num_chs=c5, reduction=32),
        ]
        if paper_init:
            self._init_as_paper()

    def _init_as_paper(self) -> None:
        """Section 5: weights from N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden
        FC layers (to give the ReLUs positive inputs early on), 0 in the rest."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        linears = [m for m in self.classifier if isinstance(m, nn.Linear)]
        ones = {convs[1], convs[3], convs[4], linears[0], linears[1]}
        for m in convs + linears:
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.constant_(m.bias, 1.0 if m in ones else 0.0)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)


@register_model(
    ModelCfg(
        paper="Krizhevsky, One weird trick for parallelizing convolutional neural networks, arXiv 2014 "
        "(torchvision's AlexNet)",
        min_input_size=(63, 63),
        first_conv="features.0",
        classifier="classifier.6",
        torchvision="alexnet",
    )
)
def alexnet(**kwargs) -> AlexNet:
    return AlexNet(**kwargs)


@register_model(
    ModelCfg(
        paper=PAPER, min_input_size=(63, 63), first_conv="features.0", classifier="classifier.6"
    )
)
def alexnet_paper(**kwargs) -> AlexNet:
    return AlexNet(
        widths=(96, 256, 384, 384, 256),
        groups=(1, 2, 1, 2, 2),
        lrn=True,
        paper_init=True,
        dropout_after_fc=True,
        **kwargs,
    )
