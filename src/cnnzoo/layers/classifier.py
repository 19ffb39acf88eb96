from __future__ import annotations

import torch.nn as nn
from torch import Tensor


class ClassifierHead(nn.Module):
    """Global average pooling, dropout and a linear layer: the head of most modern CNNs.

    ``num_classes=0`` makes the linear layer an identity, so the head returns the pooled
    features (as in timm).
    """

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.in_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(self.flatten(self.pool(x)))
        return x if pre_logits else self.fc(x)
