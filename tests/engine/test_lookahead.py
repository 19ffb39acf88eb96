"""Lookahead weight averaging and flip/translate test-time augmentation."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from cnnzoo.config import load_config
from cnnzoo.engine.lookahead import Lookahead
from cnnzoo.engine.trainer import tta_views
from cnnzoo.errors import ConfigError


def test_lookahead_moves_slow_weights_alpha_of_the_way_every_k_steps():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    la = Lookahead(model, k=2, alpha=0.25)
    with torch.no_grad():
        model[0].weight.add_(4.0)
        model[1].running_mean.add_(8.0)
    la.step()  # step 1 of 2: nothing yet
    assert torch.equal(model[0].weight, start["0.weight"] + 4.0)
    la.step()  # step 2: slow = start + 0.25 * 4, and the fast weights restart there
    assert torch.allclose(model[0].weight, start["0.weight"] + 1.0)
    assert torch.allclose(model[1].running_mean, start["1.running_mean"] + 2.0)
    assert model[1].num_batches_tracked.dtype == torch.int64  # integer state is left alone


def test_lookahead_sync_updates_at_once_and_restarts_the_count():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    la = Lookahead(model, k=5, alpha=0.5)
    with torch.no_grad():
        model.weight.fill_(2.0)
    la.step()
    la.sync()
    assert model.weight.item() == pytest.approx(1.0)
    assert la.steps == 0


def test_tta_views_flip_and_translate():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    assert len(tta_views(x, flip=False, translate=0)) == 1
    assert len(tta_views(x, flip=True, translate=0)) == 2
    views = tta_views(x, flip=True, translate=1)
    assert len(views) == 6 and all(v.shape == x.shape for v in views)
    # shifted down-right by one pixel: the old top-left pixel moves to (1, 1)
    assert views[1][0, 0, 1, 1] == x[0, 0, 0, 0]
    assert views[2][0, 0, 0, 0] == x[0, 0, 1, 1]
    assert torch.equal(views[3], x.flip(3))


def test_config_accepts_and_checks_lookahead_and_tta_translate():
    cfg = load_config(None, ["lookahead.k=3", "data.test.tta_translate=2"])
    assert cfg.lookahead == dict(k=3, alpha=0.5)
    assert cfg.data.test.tta_translate == 2
    for bad in ("lookahead.alpha=0", "lookahead.alpha=1.5", "lookahead.k=0"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config(None, [bad])
    with pytest.raises(ConfigError, match="tta_translate"):
        load_config(None, ["data.test.tta_translate=-1"])
