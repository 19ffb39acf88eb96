"""Lookahead weight averaging and flip/translate test-time augmentation."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from cnnzoo.config import load_config
from cnnzoo.engine.lookahead import Lookahead
from cnnzoo.engine.trainer import tta_output, tta_views
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


def test_lookahead_ramp_falls_from_one_to_alpha_cubically():
    model = nn.Linear(1, 1, bias=False)
    la = Lookahead(model, k=1, alpha=0.2, ramp_steps=10)
    assert [la.alpha_at(s) for s in (0, 5, 10, 20)] == pytest.approx([1.0, 0.9, 0.2, 0.2])
    assert Lookahead(model, alpha=0.2).alpha_at(0) == 0.2  # no ramp: alpha throughout
    with torch.no_grad():
        model.weight.fill_(0.0)
    la = Lookahead(model, k=1, alpha=0.2, ramp_steps=10)
    with torch.no_grad():
        model.weight.fill_(1.0)
    la.step(global_step=5)  # slow moves 0.9 of the way
    assert model.weight.item() == pytest.approx(0.9)


def test_lookahead_ramp_spans_the_whole_run(make_cfg, monkeypatch):
    """The trainer ramps over the run's steps: every update asks for the step size at the
    run's step count, and the last one of the run is at alpha."""
    from cnnzoo.engine.callbacks import Callback
    from cnnzoo.engine.trainer import train

    asked, alphas, spe = [], [], []
    alpha_at = Lookahead.alpha_at

    def spy(la, step):
        asked.append(step)
        alphas.append(alpha_at(la, step))
        return alphas[-1]

    monkeypatch.setattr(Lookahead, "alpha_at", spy)

    class StepsPerEpoch(Callback):
        def on_steps_end(self, run):
            spe.append(run.schedule.steps_per_epoch)

    opts = {"lookahead.k": 2, "lookahead.alpha": 0.25, "lookahead.ramp": True}
    train(make_cfg(**opts, **{"train_cfg.max_epochs": 2}), quiet=True, callbacks=[StepsPerEpoch()])
    n = spe[0]
    every_k = [s for s in range(1, n + 1) if s % 2 == 0]
    # within an epoch every 2nd step, then the epoch's end (the count restarts each epoch)
    assert asked == [*every_k, n, *(n + s for s in every_k), 2 * n]
    assert alphas[0] == pytest.approx(1 - 0.75 * (2 / (2 * n)) ** 3)
    assert alphas[-1] == 0.25 and alphas == sorted(alphas, reverse=True)


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


def _tta_case():
    """Four 1x4x4 images and a model whose logits grow with the pixel sum: the images
    scaled by 0.1 and 0.2 are the least confident, and every view changes the output."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    scale = torch.tensor([1.0, 0.1, 3.0, 0.2]).view(4, 1, 1, 1)
    return model.eval(), torch.rand(4, 1, 4, 4) * scale


@torch.no_grad()
def test_tta_fraction_gives_the_views_to_the_least_confident_images():
    model, x = _tta_case()
    plain = model(x)
    full = sum(model(v) for v in tta_views(x, flip=True, translate=1)) / 6
    assert not torch.allclose(plain, full)
    everyone = tta_output(model, x, flip=True, translate=1)
    assert torch.allclose(everyone, full)
    half = tta_output(model, x, flip=True, translate=1, fraction=0.5)
    confident = plain.softmax(1).amax(1).argsort(descending=True)[:2]
    unsure = plain.softmax(1).amax(1).argsort()[:2]
    assert torch.allclose(half[unsure], full[unsure], atol=1e-6)
    assert torch.equal(half[confident], plain[confident])
    assert torch.equal(tta_output(model, x, flip=True, translate=1, fraction=0.0), plain)


def test_evaluate_passes_the_fraction_on_but_not_for_regression():
    import torch.nn.functional as F

    from cnnzoo.engine.losses import build_loss
    from cnnzoo.engine.trainer import evaluate

    model, x = _tta_case()
    y = torch.tensor([0, 1, 2, 1])
    tta = dict(tta_flip=True, tta_translate=1)

    def loss(kind, fraction, targets):
        loss_fn = build_loss(dict(type=kind))
        meter = evaluate(
            model, [(x, targets)], loss_fn, num_classes=3, **tta, tta_fraction=fraction
        )
        return meter.compute()["loss"]

    with torch.no_grad():
        half = tta_output(model, x, flip=True, translate=1, fraction=0.5)
    assert loss("cross_entropy", 0.5, y) == pytest.approx(F.cross_entropy(half, y).item(), rel=1e-5)
    assert loss("cross_entropy", 0.5, y) != pytest.approx(loss("cross_entropy", 1.0, y), rel=1e-5)
    # a regression output has no confidence to rank by: every image gets the views
    model[1] = nn.Linear(16, 1)
    assert loss("mse", 0.5, y) == pytest.approx(loss("mse", 1.0, y))


def test_config_accepts_and_checks_lookahead_and_tta_translate():
    cfg = load_config(None, ["lookahead.k=3", "data.test.tta_translate=2"])
    assert cfg.lookahead == dict(k=3, alpha=0.5, ramp=False)
    assert cfg.data.test.tta_translate == 2
    for bad in ("lookahead.alpha=0", "lookahead.alpha=1.5", "lookahead.k=0"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config(None, [bad])
    with pytest.raises(ConfigError, match="tta_translate"):
        load_config(None, ["data.test.tta_translate=-1"])
    assert load_config(None, ["data.test.tta_fraction=0.3"]).data.test.tta_fraction == 0.3
    with pytest.raises(ConfigError, match="tta_fraction"):
        load_config(None, ["data.test.tta_fraction=1.5"])
