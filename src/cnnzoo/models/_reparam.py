"""Structural re-parameterisation: one walker for every model whose blocks opt in."""

from __future__ import annotations

import torch.nn as nn


def reparameterize_model(model: nn.Module) -> nn.Module:
    """Fuse, in place, every submodule that defines ``reparameterize()`` (RepVGG blocks fold
    their 3x3, 1x1 and identity branches into one 3x3 conv). Returns ``model``; call it in
    eval mode, since the fusion folds BatchNorm's running statistics."""
    for module in list(model.modules()):
        if module is not model and callable(getattr(module, "reparameterize", None)):
            module.reparameterize()
    return model
