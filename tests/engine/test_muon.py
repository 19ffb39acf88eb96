"""optimizer.type='Muon': which parameters Muon takes, its Newton-Schulz step, the auxiliary
optimizer, the config checks, training and bit-exact resume."""

import pytest
import torch
import torch.nn as nn

from cnnzoo import create_model
from cnnzoo.config import load_config
from cnnzoo.engine import load_checkpoint, optim, train
from cnnzoo.engine.muon import MuonWithAux, lr_factor, orthogonalize, split_parameters
from cnnzoo.engine.optim import Schedule, build_optimizer
from cnnzoo.errors import CnnzooError, ConfigError


class SmallNet(nn.Module):
    """Conv, norm, conv, an embedding and a head the model names with get_classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.embed = nn.Embedding(5, 6)
        self.frozen = nn.Linear(6, 6)
        self.frozen.requires_grad_(False)
        self.fc = nn.Linear(6, 3)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x):
        x = self.conv2(self.bn(self.conv1(x)).relu()).mean((2, 3))
        return self.fc(self.frozen(x) + self.embed.weight.sum(0))


def _ids(params):
    return {id(p) for p in params}


def test_weight_matrices_go_to_muon_the_rest_to_aux():
    net = SmallNet()
    muon, aux = split_parameters(net)
    assert _ids(muon) == _ids([net.conv1.weight, net.conv2.weight])
    expected_aux = [net.bn.weight, net.bn.bias, net.conv2.bias, net.embed.weight]
    assert _ids(aux) == _ids([*expected_aux, net.fc.weight, net.fc.bias])  # not the frozen one


def test_a_cnnzoo_models_head_is_found_by_get_classifier():
    model = create_model("lenet5", num_classes=10, in_chans=1)
    muon, aux = split_parameters(model)
    head = model.get_classifier()
    assert _ids(head.parameters()) <= _ids(aux)
    assert all(p.ndim >= 2 for p in muon) and len(muon) >= 3  # two convs and a hidden layer
    assert _ids(muon) | _ids(aux) == _ids(model.parameters())


def test_a_model_without_get_classifier_keeps_its_last_linear_out_of_muon():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(16, 8), nn.Linear(8, 2))
    muon, _ = split_parameters(net)
    assert _ids(muon) == _ids([net[0].weight, net[2].weight])


@pytest.mark.parametrize("shape", [(32, 64), (64, 32), (48, 48)])
def test_newton_schulz_is_close_to_the_orthogonal_polar_factor(shape):
    torch.manual_seed(0)
    g = torch.randn(*shape)
    o = orthogonalize(g)
    assert o.shape == g.shape
    singular = torch.linalg.svdvals(o)
    assert singular.min() > 0.6 and singular.max() < 1.25  # the quintic's band, not exactly 1
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    polar = u @ vh
    cosine = (o * polar).sum() / (o.norm() * polar.norm())
    assert cosine > 0.95
    with pytest.raises(ValueError, match="2-D"):
        orthogonalize(torch.randn(2, 3, 4))


def test_lr_factor_by_shape():
    assert lr_factor(torch.Size([8, 4, 3, 3]), "original") == 1.0  # 8 rows, 36 columns
    assert lr_factor(torch.Size([64, 16]), "original") == 2.0
    assert lr_factor(torch.Size([64, 16]), "match_rms_adamw") == pytest.approx(0.2 * 8)
    assert lr_factor(torch.Size([64, 16]), None) == 1.0


def test_muon_step_is_the_orthogonalised_momentum_of_the_reshaped_filter():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, bias=False)
    opt = MuonWithAux([conv.weight], [], lr=0.1, momentum=0.0, nesterov=False)
    before = conv.weight.detach().clone()
    conv.weight.grad = torch.randn_like(conv.weight)
    opt.step()
    expected = before - 0.1 * orthogonalize(conv.weight.grad.reshape(8, -1)).view(8, 3, 3, 3)
    assert torch.allclose(conv.weight, expected, atol=1e-6)


@pytest.mark.parametrize("aux_type", ["SGD", "AdamW"])
def test_aux_update_matches_torchs_own_optimizer(aux_type):
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    if aux_type == "SGD":
        settings = dict(lr=0.05, momentum=0.85, nesterov=True, weight_decay=1e-3)
        reference = torch.optim.SGD(b.parameters(), **settings)
    else:
        settings = dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
        reference = torch.optim.AdamW(b.parameters(), **settings)
    ours = MuonWithAux([], a.parameters(), lr=1.0, aux_cfg=dict(type=aux_type, **settings))
    x = torch.randn(6, 4)
    for opt, net in ((ours, a), (reference, b)):
        for _ in range(4):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


def test_config_builds_one_optimizer_with_a_muon_and_an_aux_group():
    cfg = load_config(
        None,
        {
            "optimizer.type": "Muon",
            "optimizer.lr": 0.24,
            "optimizer.momentum": 0.6,
            "optimizer.aux.lr": 0.05,
            "optimizer.aux.momentum": 0.85,
            "optimizer.aux.weight_decay": 5e-4,
        },
    )
    net = SmallNet()
    opt = build_optimizer(net, cfg.optimizer)
    assert isinstance(opt, MuonWithAux) and isinstance(opt, torch.optim.Optimizer)
    muon, aux = opt.param_groups
    assert (muon["kind"], muon["lr"], muon["momentum"], muon["nesterov"]) == (
        "muon",
        0.24,
        0.6,
        True,
    )
    assert (aux["kind"], aux["lr"], aux["momentum"], aux["weight_decay"]) == (
        "sgd",
        0.05,
        0.85,
        5e-4,
    )
    default = build_optimizer(net, dict(type="Muon", lr=0.02))
    assert default.param_groups[1]["lr"] == 0.02  # aux.lr=None: the Muon rate
    schedule = Schedule(opt, dict(type="StepLR", step_size=1), steps_per_epoch=1, max_epochs=3)
    opt.step()
    schedule.step_batch()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.024, 0.005])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"optimizer.aux": dict(type="Adam")},
            "unknown optimizer.aux type 'Adam'; did you mean: AdamW",
        ),
        ({"optimizer.lr": -0.1}, "optimizer.lr must be a number > 0"),
        ({"optimizer.aux.lr": -1.0}, "optimizer.aux.lr must be None or a number > 0"),
        (
            {"optimizer.aux": dict(type="SGD", betas=(0.9, 0.9))},
            "unknown config key 'optimizer.aux.betas'",
        ),
        ({"optimizer.aux": "SGD"}, "optimizer.aux must be a dict"),
        ({"optimizer.adjust_lr": "rms"}, "optimizer.adjust_lr must be None or one of"),
        ({"optimizer.ns_steps": 0}, "optimizer.ns_steps must be an integer"),
        ({"optimizer.fused": True}, "unknown config key 'optimizer.fused'"),
    ],
)
def test_bad_muon_settings_are_one_line_config_errors(options, message):
    pattern = message.replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(CnnzooError, match=pattern) as e:  # ConfigError, UnknownNameError
        load_config(None, {"optimizer.type": "Muon", **options})
    assert "\n" not in str(e.value)


def test_bad_values_given_to_the_builder_directly_are_config_errors():
    with pytest.raises(CnnzooError, match="aux type"):
        build_optimizer(SmallNet(), dict(type="Muon", lr=0.1, aux=dict(type="RMSprop")))
    with pytest.raises(ConfigError, match="optimizer Muon: aux SGD takes no key 'betas'"):
        build_optimizer(SmallNet(), dict(type="Muon", lr=0.1, aux=dict(type="SGD", betas=(0, 0))))


MUON = {
    "optimizer.type": "Muon",
    "optimizer.lr": 0.05,
    "optimizer.momentum": 0.6,
    "optimizer.aux": dict(type="SGD", lr=0.05, momentum=0.85, nesterov=True, weight_decay=5e-4),
}


def test_training_with_muon_lowers_the_loss(fake_data, make_cfg):
    run_dir = train(make_cfg(**MUON, **{"train_cfg.max_epochs": 3}), quiet=True)
    history = load_checkpoint(run_dir / "checkpoints" / "last.pt")["history"]
    losses = [row["train/loss"] for row in history]
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0] - 0.1, losses
    assert history[-1]["val/top1"] >= 80.0  # chance is 10


@pytest.mark.parametrize("aux_type", ["SGD", "AdamW"])
def test_resume_with_muon_is_bit_identical(fake_data, make_cfg, aux_type):
    opts = {**MUON, "deterministic": True, "optimizer.aux": dict(type=aux_type, lr=0.01)}
    full = train(make_cfg(**opts, **{"train_cfg.max_epochs": 4}), quiet=True)
    part = train(make_cfg(**opts, **{"train_cfg.max_epochs": 2}), quiet=True)
    assert part != full
    assert train(make_cfg(**opts, **{"train_cfg.max_epochs": 4}), resume=part, quiet=True) == part
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (full, part))
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys() and len(state_a) == len(list(a["model"]))
    for index in state_a:
        for name, value in state_a[index].items():
            assert torch.equal(value, state_b[index][name]), (index, name)


def test_auto_scale_lr_scales_the_aux_rate_too():
    cfg = load_config(None, {**MUON, "auto_scale_lr.enable": True})
    scaled = optim.scaled_lr_sections(cfg, 4.0)["optimizer"]
    assert scaled["lr"] == pytest.approx(0.2) and scaled["aux"]["lr"] == pytest.approx(0.2)
    assert cfg.optimizer.aux.lr == 0.05  # the config itself stays as written


@pytest.mark.parametrize("aux_type", ["SGD", "AdamW"])
def test_one_cycle_drives_both_rates_and_keeps_each_groups_momentum(aux_type):
    """OneCycleLR over Muon: each group's rate follows the cycle from its own peak; there is no
    one momentum to cycle, so Muon's 0.6 and the aux group's own settings stay (torch's
    OneCycleLR refused the optimizer: 'must support momentum or beta1')."""
    aux = dict(type=aux_type, lr=0.5)
    opt = MuonWithAux(
        [nn.Parameter(torch.randn(4, 3))],
        [nn.Parameter(torch.zeros(4))],
        lr=0.2,
        momentum=0.6,
        aux_cfg=aux,
    )
    sched = Schedule(opt, dict(type="OneCycleLR", max_lr=None), steps_per_epoch=10, max_epochs=2)
    start = [g["lr"] for g in opt.param_groups]
    assert start == pytest.approx([0.2 / 25, 0.5 / 25])  # OneCycleLR's div_factor
    for _ in range(6):
        opt.step()
        sched.step_batch()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2, rel=0.05)  # the peak, at 30%
    assert opt.param_groups[1]["lr"] == pytest.approx(0.5, rel=0.05)
    assert opt.param_groups[0]["momentum"] == 0.6
    if aux_type == "SGD":
        assert opt.param_groups[1]["momentum"] == 0.9
    else:
        assert opt.param_groups[1]["betas"] == (0.9, 0.999)
