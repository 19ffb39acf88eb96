"""Multi-scale feature maps from any model that lists its stages in ``feature_info``."""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import ConfigError


class FeatureInfo(list):
    """The stages a :class:`FeatureExtractor` returns, one dict each (``module``, ``num_chs``,
    ``reduction``), with timm's accessors: ``channels()``, ``reduction()``, ``module_name()``
    give a list over the stages, or one value with an index."""

    def get(self, key: str, idx: int | None = None) -> list | int | str:
        return [f[key] for f in self] if idx is None else self[idx][key]

    def channels(self, idx: int | None = None) -> list[int] | int:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | None = None) -> list[int] | int:
        return self.get("reduction", idx)

    def module_name(self, idx: int | None = None) -> list[str] | str:
        return self.get("module", idx)


class FeatureExtractor(nn.Module):
    """Wraps a model so that ``forward`` returns the feature maps of the stages chosen by
    ``out_indices`` (indices into ``model.feature_info``), e.g. for a detection backbone.

    The maps are taken with forward hooks while ``forward_features`` runs; the classifier
    never runs. ``feature_info`` (a :class:`FeatureInfo`) describes them:
    ``feature_info.channels()``, ``feature_info.reduction()`` as in timm.
    """

    def __init__(
        self, model: nn.Module, out_indices: tuple[int, ...] | list[int] | None = None
    ) -> None:
        super().__init__()
        info = list(getattr(model, "feature_info", []) or [])
        if not info:
            raise ConfigError(f"{type(model).__name__} does not support features_only")
        if out_indices is None:
            out_indices = tuple(range(len(info)))
        bad = [i for i in out_indices if not -len(info) <= i < len(info)]
        if bad:
            raise ConfigError(
                f"out_indices {list(out_indices)} out of range: this model has {len(info)} "
                f"feature stages (0..{len(info) - 1})"
            )
        self.out_indices = tuple(i % len(info) for i in out_indices)
        self.feature_info = FeatureInfo(info[i] for i in self.out_indices)
        self.model = model
        self._outputs: dict[str, Tensor] = {}
        modules = dict(model.named_modules())
        for f in self.feature_info:
            modules[f["module"]].register_forward_hook(self._make_hook(f["module"]))

    def _make_hook(self, name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: Tensor) -> None:
            self._outputs[name] = output

        return hook

    def forward(self, x: Tensor) -> list[Tensor]:
        self._outputs = {}
        self.model.forward_features(x)
        out = [self._outputs[f["module"]] for f in self.feature_info]
        self._outputs = {}
        return out
