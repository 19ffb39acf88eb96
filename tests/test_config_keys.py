"""Every config key both ways: what is documented is accepted, and what is accepted changes
what runs (proved through the real builders, config -> optimizer/schedule/loss/clipping)."""

import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from cnnzoo import schema
from cnnzoo.config import dotted_keys as _dotted_keys
from cnnzoo.config import list_configs, load_config
from cnnzoo.engine.losses import build_loss
from cnnzoo.engine.optim import CLIP_GRAD_KEYS, Schedule, build_optimizer, clip_gradients
from cnnzoo.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

# Each typed section: the base values a proof starts from, and per (type, key) a value that
# must change the result. A key added to a schema without a proof here fails the coverage test.
BASE = dict(
    optimizer=dict(
        SGD=dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01),
        Adam=dict(lr=0.1, betas=(0.9, 0.5), weight_decay=0.01),
        AdamW=dict(lr=0.1, betas=(0.9, 0.5), weight_decay=0.01),
        Adadelta=dict(lr=1.0, weight_decay=0.01),
        RMSprop=dict(lr=0.01, alpha=0.9, eps=0.01, momentum=0.9, weight_decay=0.01),
        Muon=dict(lr=0.1, momentum=0.9, weight_decay=0.01),
    ),
    param_scheduler=dict(
        StepLR=dict(step_size=2),
        MultiStepLR=dict(milestones=[2, 4]),
        CosineAnnealingLR=dict(),
        OneCycleLR=dict(),
        ReduceLROnPlateau=dict(monitor="val/loss", mode="min", factor=0.1, patience=2),
    ),
    loss=dict(cross_entropy={}, mae={}, mse={}, rmse={}, huber={}),
)
CHANGES = {
    **{
        ("optimizer", kind, key): value
        for kind in ("SGD", "Adam", "AdamW", "Adadelta", "RMSprop")
        for key, value in dict(
            lr=0.02,
            weight_decay=0.5,
            decay_norm_and_bias=False,
            norm_lr_mult=8.0,
            norm_decay_mult=4.0,
        ).items()
    },
    ("optimizer", "SGD", "momentum"): 0.5,
    ("optimizer", "SGD", "dampening"): 0.5,
    ("optimizer", "SGD", "nesterov"): True,
    **{
        ("optimizer", kind, key): value
        for kind in ("Adam", "AdamW")
        for key, value in dict(betas=(0.5, 0.9), eps=0.5, amsgrad=True).items()
    },
    **{("optimizer", kind, "fused"): True for kind in ("SGD", "Adam", "AdamW")},
    ("optimizer", "Adadelta", "rho"): 0.5,
    ("optimizer", "Adadelta", "eps"): 0.5,
    ("optimizer", "RMSprop", "alpha"): 0.5,
    ("optimizer", "RMSprop", "eps"): 0.5,
    ("optimizer", "RMSprop", "momentum"): 0.5,
    ("optimizer", "RMSprop", "centered"): True,
    ("optimizer", "Muon", "lr"): 0.02,
    ("optimizer", "Muon", "momentum"): 0.5,
    ("optimizer", "Muon", "nesterov"): False,
    ("optimizer", "Muon", "weight_decay"): 0.5,
    ("optimizer", "Muon", "ns_steps"): 2,
    ("optimizer", "Muon", "adjust_lr"): None,  # the first layer is 8 x 4: 'original' is sqrt 2
    ("optimizer", "Muon", "aux"): dict(type="AdamW", lr=0.01),
    ("param_scheduler", "StepLR", "step_size"): 3,
    ("param_scheduler", "MultiStepLR", "milestones"): [1, 4],
    **{
        ("param_scheduler", kind, "gamma"): 0.5
        for kind in ("StepLR", "MultiStepLR")  # gamma=0.1 by default
    },
    **{
        ("param_scheduler", kind, "warmup_epochs"): 2
        for kind in ("StepLR", "MultiStepLR", "CosineAnnealingLR")
    },
    ("param_scheduler", "CosineAnnealingLR", "min_lr"): 1e-3,
    ("param_scheduler", "OneCycleLR", "max_lr"): 0.05,
    ("param_scheduler", "OneCycleLR", "pct_start"): 0.5,
    ("param_scheduler", "OneCycleLR", "anneal_strategy"): "linear",
    ("param_scheduler", "OneCycleLR", "div_factor"): 5.0,
    ("param_scheduler", "OneCycleLR", "final_div_factor"): 10.0,
    ("param_scheduler", "ReduceLROnPlateau", "monitor"): "val/top1",
    ("param_scheduler", "ReduceLROnPlateau", "mode"): "max",
    ("param_scheduler", "ReduceLROnPlateau", "factor"): 0.5,
    ("param_scheduler", "ReduceLROnPlateau", "patience"): 0,
    ("loss", "cross_entropy", "label_smoothing"): 0.2,
    **{
        ("loss", kind, "aux_weight"): 1.0
        for kind in ("cross_entropy", "mae", "mse", "rmse", "huber")
    },
    ("loss", "huber", "delta"): 0.1,
}
CLIP_CHANGES = dict(max_norm=0.5, norm_type=1.0)


def _cfg(section: str, kind: str, values: dict):
    """The quick start with ``section`` set to ``kind`` and ``values``, through load_config."""
    options = {f"{section}.type": kind, **{f"{section}.{k}": v for k, v in values.items()}}
    if section == "loss" and kind != "cross_entropy":
        options["model.num_classes"] = 1
    return load_config(None, options)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3))


def _optimizer_result(cfg) -> list:
    """The weights after a few steps, and the optimizer's settings."""
    model = _net()
    opt = build_optimizer(model, cfg.optimizer)
    x = torch.linspace(-1, 1, 40).reshape(10, 4)
    for i in range(6):
        opt.zero_grad()
        (model(x * (0.5**i)).square().mean()).backward()  # shrinking gradients: amsgrad differs
        opt.step()
    return [
        *(p.detach().clone() for p in model.parameters()),
        sorted(map(str, opt.defaults.items())),
    ]


def _schedule_result(cfg) -> list:
    """The learning rate at every step of 8 epochs of 3 steps, the plateau metrics fed in."""
    model = _net()
    opt = build_optimizer(model, cfg.optimizer)
    schedule = Schedule(opt, cfg.param_scheduler, steps_per_epoch=3, max_epochs=8)
    lrs = []
    for epoch in range(8):
        for _ in range(3):
            opt.step()
            schedule.step_batch()
            lrs.append(schedule.lr)
        schedule.step_epoch({"val/loss": 1.0 / (1 + min(epoch, 3)), "val/top1": 50.0})
    return lrs


def _loss_result(cfg) -> list:
    loss = build_loss(cfg.loss)
    torch.manual_seed(0)
    width = 1 if loss.regression else 10
    main, aux = torch.randn(16, width) * 3, torch.randn(16, width) * 3
    targets = torch.randint(0, 10, (16,))
    return [loss((main, aux), targets)]


def schemas() -> dict[str, dict[str, tuple[str, ...]]]:
    """Each typed section's types and the keys each takes besides ``type``."""
    return {name: dict(typed.types) for name, typed in schema.TYPED.items()}


OPTIONAL_SECTIONS = {n: s.defaults() for n, s in schema.SECTIONS.items() if s.optional}


RESULT = dict(optimizer=_optimizer_result, param_scheduler=_schedule_result, loss=_loss_result)


def _same(a: list, b: list) -> bool:
    return all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
        for x, y in zip(a, b, strict=True)
    )


def test_every_schema_key_has_a_proof_and_no_proof_is_stale():
    keys = {
        (s, kind, k) for s, table in schemas().items() for kind, ks in table.items() for k in ks
    }
    assert set(CHANGES) == keys
    assert set(CLIP_CHANGES) == set(CLIP_GRAD_KEYS) == set(schema.CLIP_GRAD.keys)
    assert {(s, kind) for s, table in BASE.items() for kind in table} == {
        (s, kind) for s, table in schemas().items() for kind in table
    }


@pytest.mark.parametrize(
    ("section", "kind", "key"), sorted(CHANGES), ids=[".".join(k) for k in sorted(CHANGES)]
)
def test_each_accepted_key_changes_what_is_built(section, kind, key):
    base = BASE[section][kind]
    changed = {**base, key: CHANGES[section, kind, key]}
    before, after = (RESULT[section](_cfg(section, kind, v)) for v in (base, changed))
    assert not _same(before, after), f"{section}.{key} (for {kind}) is accepted but changes nothing"


@pytest.mark.parametrize("key", sorted(CLIP_CHANGES))
def test_each_clip_grad_key_changes_the_gradients(key):
    def clipped(values: dict) -> torch.Tensor:
        cfg = load_config(None, {f"clip_grad.{k}": v for k, v in values.items()})
        model = _net()
        model(torch.ones(2, 4)).sum().backward()
        clip_gradients(model, **cfg.clip_grad)
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    base = dict(max_norm=1.0, norm_type=2.0)
    assert not torch.equal(clipped(base), clipped({**base, key: CLIP_CHANGES[key]}))


def test_keys_that_change_nothing_are_refused():
    for options in (
        {"param_scheduler.type": "OneCycleLR", "param_scheduler.warmup_epochs": 1},
        {"param_scheduler.type": "ReduceLROnPlateau", "param_scheduler.warmup_epochs": 1},
        {"optimizer.type": "Adadelta", "optimizer.fused": True},
        {"clip_grad.foreach": True},
    ):
        with pytest.raises(ConfigError, match="unknown config key"):
            load_config(None, options)


def _leaves(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_documented_default_is_accepted():
    documented = {
        **_leaves(schema.complete({})),
        **_leaves(schema.complete_data({}), "data."),
        **_leaves(OPTIONAL_SECTIONS),
        "clip_grad.norm_type": 2.0,
    }
    quickstart = _leaves(load_config(None).to_dict())
    for key, value in documented.items():
        if key in OPTIONAL_SECTIONS:
            continue  # a section, None by default: its keys are set one by one here
        load_config(None, {key: quickstart.get(key, value)})


@pytest.mark.parametrize("name", list_configs())
def test_every_key_of_every_shipped_config_is_accepted_as_an_override(name):
    cfg = load_config(name)
    plain = cfg.to_dict()
    keys = [k for k in _dotted_keys(plain) if "pipeline" not in k]
    load_config(name, {k: v for k, v in _leaves(plain).items() if k in keys})


def test_every_key_the_readme_and_default_runtime_name_is_accepted():
    text = (ROOT / "README.md").read_text() + (
        ROOT / "configs/_base_/default_runtime.py"
    ).read_text()
    sections = ("optimizer", "param_scheduler", "loss", "clip_grad")
    named = set(re.findall(rf"\b({'|'.join(sections)})\.([a-z_]+)\b", text))
    taken = {(s, k) for s, table in schemas().items() for ks in table.values() for k in ks}
    taken |= {("clip_grad", k) for k in CLIP_GRAD_KEYS} | {(s, "type") for s in sections}
    assert named, "the README names no keys of these sections"
    assert named <= taken, f"documented but refused: {sorted(named - taken)}"


# Each runtime key (default_runtime.py, the optional sections, train_cfg) and the test that
# changes it and sees the run change. The key must appear in that test's source.
E, C, T = "tests/engine/test_trainer.py", "tests/engine/test_callbacks.py", "tests/test_config.py"
D, R = "tests/distributed/test_dist_helpers.py", "tests/distributed/test_dist_training.py"
RUNTIME_PROOFS = {
    "seed": (C, "test_workflow_log_interval_and_seed_change_the_run"),
    "workflow": (C, "test_workflow_log_interval_and_seed_change_the_run"),
    "log.interval": (C, "test_workflow_log_interval_and_seed_change_the_run"),
    "log.tensorboard": (C, "test_compile_trains"),
    "log.charts": ("tests/engine/test_run_overhead.py", "test_log_charts_false_writes_the_summaries_and_no_chart"),
    "deterministic": ("tests/engine/test_runs.py", "test_train_leaves_torchs_global_settings_as_it_found_them"),
    "device": (C, "test_the_device_key_chooses_the_device"),
    "work_dir": ("tests/faults/test_paths.py", "test_work_dir_with_a_tilde_means_the_home_folder"),
    "checkpoint.monitor": (C, "test_early_stopping_and_the_best_epoch_follow_their_monitor_and_mode"),
    "checkpoint.mode": (C, "test_early_stopping_and_the_best_epoch_follow_their_monitor_and_mode"),
    "early_stopping.monitor": (C, "test_early_stopping_and_the_best_epoch_follow_their_monitor_and_mode"),
    "early_stopping.mode": (C, "test_early_stopping_and_the_best_epoch_follow_their_monitor_and_mode"),
    "early_stopping.min_delta": (C, "test_early_stopping_and_the_best_epoch_follow_their_monitor_and_mode"),
    "early_stopping.patience": (E, "test_early_stopping_stops_and_is_restored"),
    "amp.enabled": (E, "test_bf16_autocast_channels_last_and_clipping_train"),
    "amp.dtype": (C, "test_amp_dtype_chooses_the_autocast_type_on_a_gpu"),
    "channels_last": (E, "test_bf16_autocast_channels_last_and_clipping_train"),
    "compile": (C, "test_compile_trains"),
    "nan_policy": (E, "test_nan_skip_halves_lr_and_continues_then_stops_after_ten"),
    "sync_every": (C, "test_sync_every_checks_the_loss_every_n_steps"),
    "sync_bn": (D, "test_sync_bn_needs_cuda_and_keeps_checkpoint_names"),
    "auto_scale_lr.enable": (R, "test_auto_scale_lr_scales_the_run_but_not_its_saved_config"),
    "auto_scale_lr.base_batch_size": (D, "test_batch_size_is_per_process_and_lr_scales_only_when_asked"),
    "lookahead.k": (C, "test_averaging_keeps_its_state_in_a_mid_epoch_checkpoint"),
    "lookahead.alpha": ("tests/engine/test_lookahead.py", "test_lookahead_moves_slow_weights_alpha_of_the_way_every_k_steps"),
    "lookahead.ramp": ("tests/engine/test_lookahead.py", "test_lookahead_ramp_spans_the_whole_run"),
    "ema.decay": (C, "test_ema_is_validated_tested_saved_and_resumed_exactly"),
    "ema.every": (C, "test_ema_is_validated_tested_saved_and_resumed_exactly"),
    "ema.warmup": (C, "test_model_ema_averages_parameters_and_buffers_every_n_steps"),
    "train_cfg.max_epochs": (E, "test_resume_after_epoch_k_is_bit_identical"),
    "train_cfg.accumulate": (C, "test_gradient_accumulation_equals_the_larger_batch"),
    "load_from": ("tests/engine/test_pretrained_keys.py", "test_weights_to_start_from_load_what_fits_when_not_strict"),
}  # fmt: skip


def _runtime_keys() -> set[str]:
    typed = ("loss", "clip_grad", "param_scheduler")  # proved through their builders above
    flat = {k: v for k, v in schema.complete({}).items() if k not in typed}
    keys = {k for k in _dotted_keys(flat) if not k.startswith("workflow.")}
    keys -= {"amp", "auto_scale_lr", "checkpoint", "log"}  # sections: their keys are listed
    for section in ("early_stopping", "lookahead", "ema"):
        keys.discard(section)
        keys |= {f"{section}.{k}" for k in OPTIONAL_SECTIONS[section]}
    return keys | {"train_cfg.max_epochs", "train_cfg.accumulate"}


def test_every_runtime_key_has_a_test_that_changes_it():
    assert _runtime_keys() == set(RUNTIME_PROOFS)  # no key without a proof, no stale proof
    for key, (path, name) in RUNTIME_PROOFS.items():
        source = (ROOT / path).read_text()
        at = source.index(f"def {name}(")
        start = source.rfind("\n\n\n", 0, at)  # its decorators (parameters) too
        body = source[start : source.find("\ndef ", at + 1)]
        leaf = key.split(".")[-1]
        assert key in body or (leaf in body and key.split(".")[0] in body), (key, name)
