"""The face every cnnzoo model shows (as in timm)."""

from __future__ import annotations

import dataclasses
import functools
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

    def __init_subclass__(cls, **kwargs) -> None:
        """Each family's ``reset_classifier`` also updates ``default_cfg.num_classes``, so
        the model's config keeps telling its class count after a new head."""
        super().__init_subclass__(**kwargs)
        reset = cls.__dict__.get("reset_classifier")
        if reset is None or getattr(reset, "__isabstractmethod__", False):
            return

        @functools.wraps(reset)
        def reset_classifier(self, num_classes: int) -> None:
            reset(self, num_classes)
            cfg = getattr(self, "default_cfg", None)
            if cfg is not None:
                self.default_cfg = dataclasses.replace(cfg, num_classes=num_classes)

        cls.reset_classifier = reset_classifier

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


class MLPHeadModel(ClassifierModel):
    """A model laid out as torchvision's AlexNet and VGG: ``features``, an ``avgpool`` to a
    fixed grid, and a ``classifier`` MLP whose last layer is the class layer (4096 -> classes;
    both papers' heads end in 4096 units)."""

    avgpool: nn.Module
    classifier: nn.Sequential

    @staticmethod
    def _make_fc(num_classes: int) -> nn.Module:
        return nn.Linear(4096, num_classes) if num_classes > 0 else nn.Identity()

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.classifier[:-1](self.avgpool(x).flatten(1))
        return x if pre_logits else self.classifier[-1](x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[-1] = self._make_fc(num_classes)
