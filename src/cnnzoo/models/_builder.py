"""One builder for every model: variant lookup, input checks, weights, feature extraction."""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import ConfigError, InputShapeError
from cnnzoo.models._features import FeatureExtractor
from cnnzoo.models._pretrained import load_pretrained
from cnnzoo.models._registry import get_model_entry


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    pretrained: str | bool | None = None,
    pretrained_strict: bool = True,
    features_only: bool = False,
    out_indices: tuple[int, ...] | list[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build the registered model ``name``.

    ``num_classes`` and ``in_chans`` default to the variant's paper setting (1000 classes and
    3 channels for ImageNet models, 10 and 1 for LeNet-5).

    ``pretrained`` is a local checkpoint (cnnzoo, torchvision or timm state_dict, ``.pt`` or
    ``.safetensors``), ``"torchvision"`` / ``"timm"`` (``True`` means ``"torchvision"``) to
    fetch the published weights through that library, or ``"hf-hub:OWNER/NAME[@REV]"`` for a
    Hugging Face Hub repository (both need a network). Weights trained for another
    ``num_classes`` load all but the classifier; for another ``in_chans`` the stem conv is
    adapted. Anything else that does not fit is an error unless ``pretrained_strict=False``,
    which loads what fits by name and shape (e.g. ImageNet weights into a CIFAR-stem variant).
    ``model.pretrained_report`` (:class:`~cnnzoo.models.LoadReport`) says what was loaded,
    adapted and skipped. ``features_only=True`` returns a :class:`FeatureExtractor` giving the feature
    maps of the stages in ``out_indices``. Other keyword arguments go to the architecture
    (``drop_rate``, ``width_mult``, ...).
    """
    entry = get_model_entry(name)
    num_classes = entry.cfg.num_classes if num_classes is None else num_classes
    in_chans = entry.cfg.input_size[0] if in_chans is None else in_chans
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(f"num_classes must be a non-negative integer, got {num_classes!r}")
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ConfigError(f"in_chans must be a positive integer, got {in_chans!r}")
    if features_only and not entry.cfg.features_only:
        raise ConfigError(f"model {name!r} does not support features_only")
    try:
        model = entry.fn(num_classes=num_classes, in_chans=in_chans, **kwargs)
    except TypeError as e:
        arg = str(e).split("argument")[-1].strip()
        if "unexpected keyword argument" in str(e):
            raise ConfigError(
                f"model {name!r} does not take {arg}; it takes: {', '.join(model_arguments(name))}"
            ) from None
        if "multiple values for" in str(e):
            raise ConfigError(
                f"model {name!r} fixes {arg} itself (it is what makes this variant); "
                f"pick another variant instead of overriding it"
            ) from None
        raise
    model.model_name = name
    # a model whose input size is fixed by an argument (MLP-Mixer's img_size) says so itself
    fixed = getattr(model, "fixed_input_size", None)
    spatial = tuple(fixed) if fixed else entry.cfg.input_size[1:]
    min_hw = tuple(fixed) if fixed else entry.cfg.min_input_size
    model.default_cfg = dataclasses.replace(
        entry.cfg, num_classes=num_classes, input_size=(in_chans, *spatial), min_input_size=min_hw
    )
    if pretrained:
        source = "torchvision" if pretrained is True else str(pretrained)
        model.pretrained_report = load_pretrained(model, source, entry, strict=pretrained_strict)
        if model.pretrained_report.skipped:
            warnings.warn(
                f"pretrained weights {source!r}: {model.pretrained_report.left_out()}",
                stacklevel=2,
            )
    if features_only:
        model = FeatureExtractor(model, out_indices)
        model.model_name = name
        model.default_cfg = model.model.default_cfg
        if pretrained:
            model.pretrained_report = model.model.pretrained_report
    model.register_forward_pre_hook(_input_check(name, in_chans, min_hw))
    return model


def model_arguments(name: str) -> list[str]:
    """The architecture keyword arguments that ``name`` accepts (those of its class)."""
    with torch.device("meta"):
        model = get_model_entry(name).fn()
    params = inspect.signature(type(model).__init__).parameters.values()
    return sorted(
        p.name
        for p in params
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


def _input_check(name: str, in_chans: int, min_hw: tuple[int, int]):
    def check(_module: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        if not isinstance(x, Tensor):
            return
        if x.dim() != 4:
            raise InputShapeError(
                f"{name} takes a batch of images shaped (N, C, H, W); got shape {tuple(x.shape)}"
            )
        if x.shape[1] != in_chans:
            raise InputShapeError(
                f"{name} was built for {in_chans} input channel(s) but got {x.shape[1]}; "
                f"build it with in_chans={x.shape[1]} or convert the images"
            )
        if x.shape[2] < min_hw[0] or x.shape[3] < min_hw[1]:
            raise InputShapeError(
                f"{name} needs inputs of at least {min_hw[0]}x{min_hw[1]} pixels; got "
                f"{x.shape[2]}x{x.shape[3]}. Resize the images (data.image_size) or pick a model "
                f"made for small images"
            )

    return check
