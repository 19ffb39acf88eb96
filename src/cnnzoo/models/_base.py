"""The face every cnnzoo model shows (as in timm)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch.nn as nn
from torch import Tensor

from cnnzoo.layers import ClassifierHead


class ClassifierModel(nn.Module, ABC):
    """Base of every model in the zoo.

    A family implements ``forward_features`` (image -> last feature map), ``forward_head``
    (feature map -> logits, or pooled features with ``pre_logits=True``), ``get_classifier``
    and ``reset_classifier``, and sets ``num_classes``, ``in_chans``, ``num_features`` and
    ``feature_info`` (one dict per stage: ``module``, the submodule's dotted name;
    ``num_chs``; ``reduction``, its stride relative to the input). ``forward`` is the two
    in a row.
    """

    num_classes: int
    in_chans: int
    num_features: int
    feature_info: list[dict]

    @abstractmethod
    def forward_features(self, x: Tensor) -> Tensor: ...

    @abstractmethod
    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor: ...

    @abstractmethod
    def get_classifier(self) -> nn.Module: ...

    @abstractmethod
    def reset_classifier(self, num_classes: int) -> None: ...

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


class PooledHeadModel(ClassifierModel):
    """A model whose head is a :class:`~cnnzoo.layers.ClassifierHead` named ``head``
    (global pooling, dropout, linear): the head methods come with it."""

    head: ClassifierHead

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x, pre_logits=pre_logits)

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes)
