"""Training losses: cross-entropy for classification, L1/L2/Huber for regression.

A loss takes the model's output and the batch targets. Targets are class indices (int64
``[B]``) or soft class probabilities (float ``[B, K]``, from Mixup/CutMix). A regression
loss reads the single model output as the label's value (e.g. a digit's value 0..9); soft
targets become their expected value. In training, GoogLeNet returns ``(logits, aux1, aux2)``:
the auxiliary heads add ``aux_weight`` times their loss (Szegedy et al. 2015 used 0.3).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cnnzoo import schema
from cnnzoo.errors import ConfigError, unknown

REGRESSION = schema.REGRESSION_LOSSES
LOSSES = tuple(schema.LOSS.types)  # their keys, defaults and ranges: cnnzoo.schema.LOSS


def _as_values(targets: Tensor) -> Tensor:
    """Targets as float label values: indices as they are, soft targets as their expectation."""
    if targets.dim() == 2:
        classes = torch.arange(targets.shape[1], device=targets.device, dtype=torch.float32)
        return targets.float() @ classes
    return targets.float()


class Loss(nn.Module):
    """One criterion for a whole run; ``regression`` tells whether the model outputs a value."""

    def __init__(
        self,
        kind: str,
        *,
        label_smoothing: float = 0.0,
        aux_weight: float = 0.3,
        delta: float = 1.0,
    ) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise unknown("loss", kind, LOSSES)
        self.kind = kind
        self.regression = kind in REGRESSION
        self.label_smoothing = label_smoothing
        self.aux_weight = aux_weight
        self.delta = delta

    def criterion(self, output: Tensor, targets: Tensor) -> Tensor:
        output = output.float()
        if self.kind == "cross_entropy":
            return F.cross_entropy(output, targets, label_smoothing=self.label_smoothing)
        if output.dim() == 2 and output.shape[1] != 1:
            raise ConfigError(
                f"a {self.kind} (regression) loss needs a model with one output, got {output.shape[1]}; "
                f"set model.num_classes=1"
            )
        pred, value = output.reshape(-1), _as_values(targets)
        if self.kind == "mae":
            return F.l1_loss(pred, value)
        if self.kind == "mse":
            return F.mse_loss(pred, value)
        if self.kind == "rmse":
            return F.mse_loss(pred, value).sqrt()
        return F.huber_loss(pred, value, delta=self.delta)

    def forward(self, output: Tensor | tuple[Tensor, ...], targets: Tensor) -> Tensor:
        if isinstance(output, tuple):
            main, *aux = output
            return self.criterion(main, targets) + self.aux_weight * sum(
                self.criterion(a, targets) for a in aux
            )
        return self.criterion(output, targets)


def build_loss(cfg: Mapping) -> Loss:
    """The :class:`Loss` of a ``loss = dict(type=..., ...)`` config."""
    kind = cfg["type"]
    if kind not in LOSSES:
        raise unknown("loss", kind, LOSSES)
    kwargs = {**schema.LOSS.defaults(kind), **cfg}
    del kwargs["type"]
    return Loss(kind, **kwargs)
