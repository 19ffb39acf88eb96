"""Every registered model keeps the zoo's promises.

For each variant, built with ``in_chans=1`` and ``num_classes=7``: it runs at its
``ModelCfg.min_input_size`` (batch 2, eval mode) and gives (2, 7) logits; one pixel less is
refused with an InputShapeError; ``forward_head(pre_logits=True)`` gives ``num_features``;
``reset_classifier(3)`` changes the head's output width; the feature maps taken at
``feature_info`` (what ``features_only=True`` returns) have the channels it announces. Models above 50M parameters only do the forward pass, to
keep CI fast.
"""

from __future__ import annotations

import pytest
import torch

import cnnzoo
from cnnzoo.errors import InputShapeError
from cnnzoo.models import FeatureExtractor

BIG = 50_000_000


@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_model_contract(name: str):
    cfg = cnnzoo.get_model_entry(name).cfg
    h, w = cfg.min_input_size
    model = cnnzoo.create_model(name, in_chans=1, num_classes=7).eval()
    x = torch.randn(2, 1, h, w)
    with torch.inference_mode():
        assert model(x).shape == (2, 7)
    if sum(p.numel() for p in model.parameters()) > BIG:
        return

    if (h, w) != (1, 1):
        with pytest.raises(InputShapeError):
            model(torch.randn(1, 1, max(h - 1, 1), max(w - 1, 1)))

    with torch.inference_mode():
        feats = model.forward_features(x)
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
        model.reset_classifier(3)
        assert model.num_classes == 3
        assert model.forward_head(feats).shape == (2, 3)
        if cfg.features_only:
            maps = FeatureExtractor(model)(x)
            assert [m.shape[1] for m in maps] == [f["num_chs"] for f in model.feature_info]
            assert all(m.dim() == 4 and m.shape[0] == 2 for m in maps)


def test_registry_is_not_empty():
    assert len(cnnzoo.list_models()) >= 1 and "lenet5" in cnnzoo.list_models()


@pytest.mark.parametrize("family", cnnzoo.list_families())
def test_reset_classifier_updates_the_default_cfg(family):
    name = cnnzoo.list_models(family=family)[0]
    model = cnnzoo.create_model(name, num_classes=7)
    model.reset_classifier(5)
    assert model.num_classes == 5 and model.default_cfg.num_classes == 5
    assert model.default_cfg["num_classes"] == 5  # read as a mapping too
