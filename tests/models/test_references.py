"""Every variant that names a torchvision or timm twin (``ModelCfg.torchvision`` / ``.timm``,
the "same outputs as" column of MODELS.md) gives that twin's outputs once it holds the twin's
weights, every tensor randomised first (:func:`zoo_helpers.assert_loads_reference`).

The family tests compare a few variants each, with their own details; this file makes the
claim for all of them. Marked ``slow`` (run in CI all the same): it builds two copies of
every large network.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

import cnnzoo
from zoo_helpers import assert_loads_reference

PAIRS = [
    (name, lib, ref)
    for name in cnnzoo.list_models()
    for lib, ref in (
        ("torchvision", cnnzoo.get_model_entry(name).cfg.torchvision),
        ("timm", cnnzoo.get_model_entry(name).cfg.timm),
    )
    if ref
]
# what a variant needs to be its twin exactly: timm's MobileNetV1 uses ReLU6
OURS = {("mobilenetv1_100", "timm"): {"act": "relu6"}}


@pytest.mark.slow
@pytest.mark.parametrize("name, lib, ref", PAIRS, ids=[f"{n}-{lib}" for n, lib, _ in PAIRS])
def test_same_outputs_as_the_named_reference(name: str, lib: str, ref: str):
    kwargs = {"num_classes": 10}
    if name.startswith("mixer"):
        kwargs["img_size"] = 64
    if lib == "torchvision":
        reference = torchvision.models.get_model(ref, **kwargs)
    else:
        reference = timm.create_model(ref, **kwargs)
    size = max(cnnzoo.get_model_entry(name).cfg.min_input_size[0], 32)
    size = kwargs.get("img_size", size)
    x = torch.randn(2, 3, size, size)
    assert_loads_reference(name, reference, x, **kwargs, **OURS.get((name, lib), {}))
