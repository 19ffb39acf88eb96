"""One registry of model variants.

A variant is a thin function whose name is the model's name, decorated with
:func:`register_model` and the variant's :class:`ModelCfg`::

    @register_model(ModelCfg(paper=PAPER, torchvision="resnet18"))
    def resnet18(**kwargs):
        return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)

The family is the name of the module that defines the variant. Importing
:mod:`cnnzoo` imports every family, so every variant is registered.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch.nn as nn

from cnnzoo.errors import natural_key, unknown

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelCfg(Mapping):
    """What a variant is and how it is fed; reads like timm's ``default_cfg`` dict too
    (``cfg["input_size"]``, ``cfg.get("mean")``, ``keys()``, ``dict(cfg)``).

    input_size: the paper's (C, H, W) input; min_input_size: the smallest (H, W) it takes;
    first_conv / classifier: state_dict prefixes of the stem conv(s) and the classifier(s) (one
    or a tuple), used to adapt pretrained weights to another ``in_chans`` or ``num_classes``;
    torchvision / timm: the names of the same network there (for pretrained weights and the
    equivalence tests); features_only: whether ``features_only=True`` is supported.
    """

    paper: str
    input_size: tuple[int, int, int] = (3, 224, 224)
    min_input_size: tuple[int, int] = (32, 32)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    num_classes: int = 1000
    first_conv: str | tuple[str, ...] | None = None
    classifier: str | tuple[str, ...] | None = None
    torchvision: str | None = None
    timm: str | None = None
    features_only: bool = True
    extra: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    fn: Callable[..., nn.Module]
    cfg: ModelCfg


_MODELS: dict[str, ModelEntry] = {}


# the names people reach for most, offered first by "did you mean" among equally close ones
COMMON_MODELS = (
    "resnet18",
    "resnet50",
    "resnet34",
    "resnet101",
    "resnet20",
    "resnet56",
    "vgg16",
    "mobilenet_v2",
    "efficientnet_b0",
    "densenet121",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "googlenet",
    "alexnet",
    "lenet5",
)


def register_model(cfg: ModelCfg) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the decorated variant function under its own name."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _MODELS:
            raise RuntimeError(f"model {name!r} registered twice")
        family = fn.__module__.rsplit(".", 1)[-1]
        _MODELS[name] = ModelEntry(name=name, family=family, fn=fn, cfg=cfg)
        return fn

    return wrap


def list_models(
    pattern: str = "*", family: str | None = None, features_only: bool | None = None
) -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted naturally (resnet14,
    resnet18, ..., resnet101)."""
    names = [
        n
        for n, e in _MODELS.items()
        if fnmatch.fnmatch(n, pattern)
        and (family is None or e.family == family)
        and (features_only is None or e.cfg.features_only == features_only)
    ]
    return sorted(names, key=natural_key)


def list_families() -> list[str]:
    return sorted({e.family for e in _MODELS.values()})


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an unknown name lists the closest ones."""
    try:
        return _MODELS[name]
    except KeyError:
        raise unknown("model", name, _MODELS, common=COMMON_MODELS) from None


def is_model(name: str) -> bool:
    return name in _MODELS
