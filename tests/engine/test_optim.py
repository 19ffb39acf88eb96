import io

import pytest
import torch
import torch.nn as nn

from cnnzoo.config import load_config
from cnnzoo.engine.optim import Schedule, build_optimizer
from cnnzoo.errors import ConfigError, UnknownNameError


def _model():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 16, 2))


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "Adadelta"])
def test_each_optimizer_steps(kind):
    model = _model()
    opt = build_optimizer(model, dict(type=kind, lr=0.1, weight_decay=1e-4))
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(2, 1, 6, 6)).sum().backward()
    opt.step()
    assert type(opt).__name__ == kind
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_sgd_nesterov_and_no_decay_on_norm_and_bias():
    model = _model()
    opt = build_optimizer(
        model,
        dict(
            type="SGD",
            lr=0.1,
            momentum=0.9,
            nesterov=True,
            weight_decay=5e-4,
            decay_norm_and_bias=False,
        ),
    )
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["nesterov"] is True
    assert (
        len(build_optimizer(model, dict(type="SGD", lr=0.1, weight_decay=5e-4)).param_groups) == 1
    )


def _ids(params):
    return [id(p) for p in params]


def _norm_scaled(kind="SGD"):
    """airbench94's bias_scaler: the norm layers 64x faster, with 1/64 the decay."""
    model = _model()
    cfg = dict(type=kind, lr=0.1, weight_decay=0.01, norm_lr_mult=64, norm_decay_mult=1 / 64)
    return model, build_optimizer(model, cfg)


def test_norm_lr_and_decay_multipliers():
    model, opt = _norm_scaled()
    conv, norm, _, fc = model
    rest, norms = opt.param_groups
    assert (rest["lr"], rest["weight_decay"]) == (0.1, 0.01) and "lr_mult" not in rest
    assert norms["lr"] == pytest.approx(6.4) and norms["weight_decay"] == pytest.approx(0.01 / 64)
    # the conv's and the head's biases are not a norm layer's: they keep the weights' settings
    assert _ids(rest["params"]) == _ids([conv.weight, conv.bias, fc.weight, fc.bias])
    assert _ids(norms["params"]) == _ids([norm.weight, norm.bias]) and norms["lr_mult"] == 64
    # one SGD step moves a norm shift 64x as far as the same gradient at the weights' rate
    before = norm.bias.detach().clone()
    norm.bias.grad = torch.ones_like(norm.bias)
    opt.step()
    expected = 6.4 * (1 + 0.01 / 64 * before)  # the step of the gradient and of the decay
    assert torch.allclose(before - norm.bias.detach(), expected)


def test_groups_keep_the_models_order_and_put_the_weights_first():
    model = nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    cfg = dict(type="SGD", lr=0.1, weight_decay=0.01, decay_norm_and_bias=False)
    weights, rest = build_optimizer(model, cfg).param_groups
    assert _ids(weights["params"]) == _ids([model[1].weight, model[3].weight])
    assert _ids(rest["params"]) == _ids(
        [model[0].weight, model[0].bias, model[1].bias, model[3].bias]
    )
    assert rest["weight_decay"] == 0.0
    cfg = dict(cfg, norm_lr_mult=2.0)
    weights, norms, biases = build_optimizer(model, cfg).param_groups  # the model's order
    assert _ids(biases["params"]) == _ids([model[1].bias, model[3].bias])
    assert _ids(norms["params"]) == _ids([model[0].weight, model[0].bias])
    assert norms["weight_decay"] == 0.0


@pytest.mark.parametrize(
    "sched",
    [
        dict(type="OneCycleLR", max_lr=1.0),
        dict(type="CosineAnnealingLR", min_lr=0.01),
        dict(type="StepLR", step_size=1),
    ],
)
def test_schedules_keep_the_norm_lr_multiplier(sched):
    _, opt = _norm_scaled()
    schedule = Schedule(opt, sched, steps_per_epoch=2, max_epochs=3)
    for _ in range(5):
        rest, norms = opt.param_groups
        assert norms["lr"] == pytest.approx(64 * rest["lr"])
        opt.step()
        schedule.step_batch()


def test_norm_multipliers_are_checked():
    assert load_config(None, ["optimizer.norm_lr_mult=64"])["optimizer"]["norm_lr_mult"] == 64
    for key, bad in (("norm_lr_mult", 0), ("norm_decay_mult", -1.0)):
        with pytest.raises(ConfigError, match=key):
            load_config(None, [f"optimizer.{key}={bad}"])


def test_bad_optimizer_configs():
    with pytest.raises(UnknownNameError, match="AdamW"):
        build_optimizer(_model(), dict(type="Adamw", lr=0.1))
    with pytest.raises(ConfigError, match="momentum"):
        build_optimizer(_model(), dict(type="Adam", lr=0.1, momentum=0.9))


def _lrs(cfg, epochs=4, spe=2, metrics=None):
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = Schedule(opt, cfg, steps_per_epoch=spe, max_epochs=epochs)
    lrs = []
    for epoch in range(epochs):
        for _ in range(spe):
            lrs.append(sched.lr)
            opt.step()
            sched.step_batch()
        sched.step_epoch((metrics or {}).get(epoch, {}))
    return lrs


def test_step_and_multistep_change_at_epoch_boundaries():
    assert _lrs(dict(type="StepLR", step_size=2, gamma=0.1)) == pytest.approx(
        [1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1]
    )
    assert _lrs(dict(type="MultiStepLR", milestones=[1, 3], gamma=0.5)) == pytest.approx(
        [1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    )


def test_cosine_with_linear_warmup():
    lrs = _lrs(dict(type="CosineAnnealingLR", warmup_epochs=1, min_lr=0.1))
    assert lrs[:2] == pytest.approx([1 / 3, 2 / 3])  # warm-up ramps up
    assert lrs[2] == pytest.approx(1.0)  # then cosine from the peak
    assert all(a > b for a, b in zip(lrs[2:-1], lrs[3:], strict=True))  # decreasing
    assert lrs[-1] > 0.1


def test_onecycle_rises_then_falls():
    lrs = _lrs(dict(type="OneCycleLR", max_lr=1.0, pct_start=0.25))
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1 and lrs[0] < 0.1 and lrs[-1] < 0.01


def test_onecycle_as_airbench_triangle():
    """Straight lines from 0.2 of the peak up to it (2 of 8 steps) and down to 0.07 of it."""
    cfg = dict(type="OneCycleLR", max_lr=1.0, pct_start=0.25, anneal_strategy="linear")
    lrs = _lrs({**cfg, "div_factor": 5, "final_div_factor": 0.2 / 0.07})
    assert lrs == pytest.approx([0.2] + [1 - (1 - 0.07) * i / 6 for i in range(7)])
    shipped = "speedrun/mnist_99"  # a OneCycleLR config
    loaded = load_config(shipped, ["param_scheduler.anneal_strategy=linear"])
    assert loaded["param_scheduler"]["anneal_strategy"] == "linear"
    with pytest.raises(ConfigError, match="anneal_strategy"):
        load_config(shipped, ["param_scheduler.anneal_strategy=cubic"])


def test_plateau_reduces_on_monitored_metric():
    flat = {e: {"val/loss": 1.0} for e in range(4)}
    lrs = _lrs(
        dict(type="ReduceLROnPlateau", monitor="val/loss", mode="min", factor=0.5, patience=0),
        metrics=flat,
    )
    assert lrs == pytest.approx([1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25])
    assert _lrs(dict(type="ReduceLROnPlateau", patience=0)) == pytest.approx(
        [1] * 8
    )  # no metric: no change


def test_none_is_constant():
    assert _lrs(None) == pytest.approx([1.0] * 8)


@pytest.mark.parametrize(
    "cfg",
    [dict(type="StepLR", step_size=1), dict(type="CosineAnnealingLR", warmup_epochs=1), dict(type="OneCycleLR"),
     dict(type="ReduceLROnPlateau", patience=0)],
)  # fmt: skip
def test_schedule_state_round_trips_through_weights_only(cfg):
    def build():
        opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.5)
        return opt, Schedule(opt, cfg, steps_per_epoch=3, max_epochs=4)

    opt, sched = build()
    for _ in range(5):
        opt.step()
        sched.step_batch()
    sched.step_epoch({"val/loss": 1.0})
    sched.scale_lr(0.5)
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    opt2, sched2 = build()
    sched2.load_state_dict(torch.load(buf, weights_only=True))
    opt2.load_state_dict(opt.state_dict())  # as a resumed run does
    for _ in range(3):
        opt.step(), opt2.step()
        sched.step_batch(), sched2.step_batch()
        assert sched.lr == pytest.approx(sched2.lr)


def test_scale_lr_survives_the_schedule():
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
    sched = Schedule(
        opt, dict(type="MultiStepLR", milestones=[1], gamma=0.1), steps_per_epoch=2, max_epochs=3
    )
    sched.scale_lr(0.5)
    for _ in range(2):
        opt.step()
        sched.step_batch()
    assert sched.lr == pytest.approx(0.05)


def test_bad_scheduler_configs():
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
    with pytest.raises(UnknownNameError, match="CosineAnnealingLR"):
        Schedule(opt, dict(type="Cosine"), steps_per_epoch=2, max_epochs=2)
    with pytest.raises(ConfigError, match="unknown config key 'param_scheduler.bogus'"):
        load_config(None, {"param_scheduler.type": "StepLR", "param_scheduler.step_size": 1,
                           "param_scheduler.bogus": 1})  # fmt: skip
    with pytest.raises(ConfigError, match="was trained with"):
        Schedule(opt, None, steps_per_epoch=2, max_epochs=2).load_state_dict(
            {"type": "StepLR", "state": {}}
        )
