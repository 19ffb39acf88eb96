"""cnnzoo.distributed in one process: torchrun's environment, batch and learning-rate
semantics, the torchrun command, and the model wrapper's guards."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

import pytest
import torch
import torch.nn as nn

import cnnzoo.commands.train as train_command
from cnnzoo import distributed
from cnnzoo.config import load_config
from cnnzoo.engine import optim
from cnnzoo.errors import ConfigError, TrainingError


def test_env_ranks_read_torchrun_variables(monkeypatch):
    assert distributed.env_ranks() == (0, 1, 0)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.env_ranks() == (3, 4, 1)
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(TrainingError, match="RANK=3, WORLD_SIZE=3"):
        distributed.env_ranks()
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(TrainingError, match="WORLD_SIZE='four' is not an integer"):
        distributed.env_ranks()


def test_setup_alone_starts_no_process_group():
    ctx = distributed.setup(torch.device("cpu"))
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main, ctx.distributed) == (
        0,
        1,
        None,
        True,
        False,
    )
    assert not torch.distributed.is_initialized()
    assert distributed.is_main() and distributed.get_world_size() == 1
    assert distributed.any_rank(True) and not distributed.any_rank(False)
    t = torch.tensor([2.0])
    distributed.all_reduce_sum(t)
    assert t.item() == 2.0 and distributed.broadcast_object("x") == "x"
    model = nn.Linear(2, 2)
    assert distributed.wrap_model(model, ctx, sync_bn=True) is model  # one process: nothing to sync


def _cfg(batch_size=16, **auto):
    return dict(
        data=dict(train=dict(batch_size=batch_size)),
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
        param_scheduler=dict(type="OneCycleLR", max_lr=0.4, pct_start=0.3),
        auto_scale_lr=dict(enable=bool(auto), **auto),
    )


def test_batch_size_is_per_process_and_lr_scales_only_when_asked():
    assert optim.global_batch_size(_cfg(16), 8) == 128  # "8xb16"
    assert optim.lr_scale(_cfg(16), 8) == 1.0  # disabled: the lr as written
    assert optim.lr_scale(_cfg(16, base_batch_size=64), 8) == 2.0  # 128 / 64
    assert optim.lr_scale(_cfg(16, base_batch_size=None), 4) == 4.0  # tuned for one process
    cfg = _cfg(16, base_batch_size=64)
    scaled = optim.scaled_lr_sections(cfg, 2.0)
    assert scaled["optimizer"] == dict(type="SGD", lr=0.2, momentum=0.9)
    assert scaled["param_scheduler"] == dict(type="OneCycleLR", max_lr=0.8, pct_start=0.3)
    assert cfg["optimizer"]["lr"] == 0.1  # the config stays as written
    assert (
        optim.scaled_lr_sections(dict(optimizer=dict(lr=1.0), param_scheduler=None), 3.0)[
            "param_scheduler"
        ]
        is None
    )


@pytest.mark.parametrize(
    ("auto", "message"),
    [
        (dict(enable="yes"), "auto_scale_lr.enable must be True or False"),
        (dict(enable=True, base_batch_size=0), "base_batch_size must be None or an integer in"),
        (dict(enable=True, base=128), "unknown config key 'auto_scale_lr.base'"),
    ],
)
def test_bad_auto_scale_lr_is_a_config_error(auto, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, {f"auto_scale_lr.{k}": v for k, v in auto.items()})


def _args(**kw):
    base = dict(
        config="configs/x.py", cfg_options=[], resume=None, work_dir=None, quiet=False, gpus=2
    )
    return argparse.Namespace(**{**base, **kw})


def test_torchrun_command_forwards_the_train_arguments():
    cmd = train_command.torchrun_command(
        _args(cfg_options=["seed=1", "sync_bn=True"], resume="auto", work_dir="w", quiet=True), 4
    )
    assert cmd[:5] == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=4",
    ]
    assert cmd[5:] == ["-m", "cnnzoo", "train", "configs/x.py", "--cfg-options", "seed=1", "sync_bn=True",
                       "--resume", "--work-dir", "w", "--quiet"]  # fmt: skip
    assert "--gpus" not in cmd
    assert train_command.torchrun_command(_args(config=None, resume="runs/a/1"), 2)[-3:] == [
        "train",
        "--resume",
        "runs/a/1",
    ]


def test_launch_without_enough_gpus_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no GPU is visible; for N CPU processes run: torchrun"):
        train_command.launch(_args(gpus=2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(
        ConfigError, match="--gpus 3 asks for 3 GPUs but 1 are visible; use --gpus 1"
    ):
        train_command.launch(_args(gpus=3))


def test_launch_passes_a_preemption_notice_on_to_torchrun(tmp_path, monkeypatch):
    """SIGTERM to `cnnzoo train --gpus N` reaches the launched command, which saves and stops;
    the launcher exits 143 like the training processes."""
    saved = tmp_path / "saved"
    child = (
        "import signal, sys, time, pathlib\n"
        f"def stop(s, f): pathlib.Path({str(saved)!r}).touch(); sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"pathlib.Path({str(tmp_path / 'ready')!r}).touch()\n"
        "time.sleep(60)\n"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(
        train_command, "torchrun_command", lambda a, n: [sys.executable, "-c", child]
    )

    def notify():
        while not (tmp_path / "ready").exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=notify, daemon=True).start()
    assert train_command.launch(_args(gpus=2)) == 143
    assert saved.exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sync_bn_needs_cuda_and_keeps_checkpoint_names():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    cpu_pair = distributed.DistContext(
        rank=0, world_size=2, device=torch.device("cpu"), backend="gloo"
    )
    with pytest.raises(ConfigError, match="sync_bn=True needs CUDA"):
        distributed.wrap_model(model, cpu_pair, sync_bn=True)
    with pytest.raises(ConfigError, match="sync_bn must be True or False"):
        distributed.wrap_model(model, cpu_pair, sync_bn="torch")
    keys = list(model.state_dict())
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(synced[1], nn.SyncBatchNorm) and list(synced.state_dict()) == keys
    assert distributed.unwrap(synced) is synced


@pytest.mark.parametrize(
    "sched",
    [
        dict(type="MultiStepLR", milestones=[2], gamma=0.1, warmup_epochs=1),
        dict(type="CosineAnnealingLR", warmup_epochs=1, min_lr=0.001),
        dict(type="OneCycleLR", max_lr=0.5, pct_start=0.3),
    ],
)
def test_schedule_resumes_at_the_same_epoch_with_another_steps_per_epoch(sched):
    from cnnzoo.engine.optim import Schedule

    def stepped(spe, steps):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
        schedule = Schedule(opt, dict(sched), steps_per_epoch=spe, max_epochs=4)
        for _ in range(steps):
            opt.step()
            schedule.step_batch()
        return schedule

    # 2 processes: 10 steps per epoch, stopped after epoch 3; resumed in 1 process: 20 per epoch
    saved = stepped(10, 30).state_dict()
    resumed = stepped(20, 0)
    resumed.load_state_dict(saved)
    assert resumed.lr == pytest.approx(stepped(20, 60).lr)
    for _ in range(20):
        resumed.optimizer.step()
        resumed.step_batch()
    assert resumed.lr == pytest.approx(stepped(20, 80).lr)


def test_cli_gpus_without_gpus_is_one_line(monkeypatch, capsys):
    from cnnzoo.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--gpus", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gpus 2 asks for 2 GPUs but 0 are visible" in err[0]


def test_runtime_config_has_the_distributed_keys(tmp_path):
    from cnnzoo.config import load_config

    cfg = load_config(
        None, ["sync_bn=True", "auto_scale_lr.enable=True", "auto_scale_lr.base_batch_size=256"]
    )
    assert cfg.sync_bn is True and cfg.auto_scale_lr == dict(enable=True, base_batch_size=256)
    assert load_config(None).auto_scale_lr == dict(enable=False, base_batch_size=None)
    with pytest.raises(ConfigError, match="sync_bn"):
        load_config(None, ["sync_bn=1"])
