"""The callbacks around the loop: weight averaging, gradient accumulation, the guard's sync
interval, compile, and what a run leaves (train.log, test metrics in TensorBoard, units)."""

import json
import os
import signal

import pytest
import torch
import torch.nn as nn
import yaml
from fakes import FakeBundle
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnzoo.config import load_config
from cnnzoo.engine import load_checkpoint, train
from cnnzoo.engine.callbacks import ModelEMA
from cnnzoo.errors import ConfigError, TrainingError


def _weights(run_dir, name="last.pt"):
    return load_checkpoint(run_dir / "checkpoints" / name)["model"]


def _same_weights(a, b, name="last.pt"):
    wa, wb = _weights(a, name), _weights(b, name)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_model_ema_averages_parameters_and_buffers_every_n_steps():
    model = nn.BatchNorm1d(2)
    ema = ModelEMA(model, decay=0.75, every=2)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(4.0)
        model.running_mean.fill_(8.0)
    ema.on_train_batch_end(None, dict(global_step=1))  # not due
    assert torch.equal(ema.model.weight, start)
    ema.on_train_batch_end(None, dict(global_step=2))
    assert torch.allclose(ema.model.weight, start + 0.25 * 4.0)
    assert torch.allclose(ema.model.running_mean, torch.full((2,), 0.25 * 8.0))
    assert ema.model.num_batches_tracked == model.num_batches_tracked  # integers are copied
    fresh = nn.BatchNorm1d(2)
    warm = ModelEMA(fresh, decay=0.9999, warmup=True)
    fresh.running_mean.fill_(11.0)
    warm.update()  # decay (1 + 1) / (10 + 1): the first updates follow the weights closely
    assert torch.allclose(warm.model.running_mean, torch.full((2,), 9.0))


def test_ema_is_validated_tested_saved_and_resumed_exactly(fake_data, make_cfg):
    opts = {"deterministic": True, "ema.decay": 0.5, "ema.every": 2, "train_cfg.max_epochs": 3}
    full = train(make_cfg(**opts), quiet=True)
    ckpt = load_checkpoint(full / "checkpoints" / "last.pt")
    assert ckpt["ema"]["updates"] == 4  # 9 steps, every 2nd
    assert all("val_ema/top1" in row for row in ckpt["history"])
    assert not torch.equal(ckpt["ema"]["weights"]["fc.weight"], ckpt["model"]["fc.weight"])
    summary = json.loads((full / "summary.json").read_text())
    assert {"test/top1", "test_ema/top1"} <= set(summary)
    part = train(make_cfg(**{**opts, "train_cfg.max_epochs": 1}), quiet=True)
    train(make_cfg(**opts), resume=part, quiet=True)
    resumed = load_checkpoint(part / "checkpoints" / "last.pt")["ema"]
    assert resumed["updates"] == 4
    for key, value in ckpt["ema"]["weights"].items():
        assert torch.equal(value, resumed["weights"][key]), key


def _sigint_at(epoch: int, step: int):
    def hook(event, info):
        if event == "step" and (info["epoch"], info["step"]) == (epoch, step):
            os.kill(os.getpid(), signal.SIGINT)

    return hook


@pytest.mark.parametrize(
    "averaging",
    [
        {"lookahead.k": 2},
        {"lookahead.k": 2, "lookahead.ramp": True},
        {"ema.decay": 0.9, "ema.every": 1},
    ],
    ids=["lookahead", "lookahead-ramp", "ema"],
)
def test_averaging_keeps_its_state_in_a_mid_epoch_checkpoint(fake_data, make_cfg, averaging):
    """Lookahead no longer turns the mid-epoch checkpoint off: its slow weights are saved."""
    opts = {"deterministic": True, "model.drop_rate": 0.2, "train_cfg.max_epochs": 3, **averaging}
    full = train(make_cfg(**opts), quiet=True)
    with pytest.raises(KeyboardInterrupt):
        train(make_cfg(**opts), quiet=True, callbacks=[_sigint_at(2, 2)])
    (stopped,) = [p for p in full.parent.iterdir() if p != full]
    ckpt = load_checkpoint(stopped / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["partial"]["step"] == 2
    train(make_cfg(**opts), resume=stopped, quiet=True)
    assert _same_weights(full, stopped) and _same_weights(full, stopped, "best.pt")
    histories = [load_checkpoint(r / "checkpoints" / "last.pt")["history"] for r in (full, stopped)]
    for a, b in zip(*histories, strict=True):
        assert {k: v for k, v in a.items() if k != "time"} == {
            k: v for k, v in b.items() if k != "time"
        }


class Steps:
    def __init__(self) -> None:
        self.steps = []

    def __call__(self, event, info):
        if event == "step":
            self.steps.append((info["step"], info["global_step"]))


def test_gradient_accumulation_equals_the_larger_batch(make_cfg):
    """Two batches of 8 with accumulate=2 take the same steps as batches of 16 (LeNet-5 has no
    BatchNorm and no dropout here, so the two are the same computation)."""

    def run(batch_size, accumulate):
        data = FakeBundle(0)
        data.train.batch_size = batch_size
        steps = Steps()
        cfg = make_cfg(**{"train_cfg.max_epochs": 2, "train_cfg.accumulate": accumulate})
        run_dir = train(cfg, quiet=True, callbacks=[steps], data=data)
        return run_dir, steps.steps

    big, big_steps = run(16, 1)
    small, small_steps = run(8, 2)
    assert big_steps == [(1, 1), (2, 2), (3, 3), (1, 4), (2, 5), (3, 6)]
    assert small_steps == [(2, 1), (4, 2), (6, 3), (2, 4), (4, 5), (6, 6)]
    wa, wb = _weights(big), _weights(small)
    for key in wa:
        assert torch.allclose(wa[key], wb[key], atol=1e-6), key
    plain, _ = run(8, 1)  # the sabotage: without accumulation the run differs
    assert not torch.allclose(_weights(plain)["fc.weight"], wa["fc.weight"], atol=1e-6)


def test_an_accumulation_group_cut_by_the_epoch_end_still_steps(make_cfg):
    data = FakeBundle(0)
    data.train.batch_size = 16  # 3 batches: groups of 2 leave one batch over
    steps = Steps()
    cfg = make_cfg(**{"train_cfg.max_epochs": 1, "train_cfg.accumulate": 2})
    train(cfg, quiet=True, callbacks=[steps], data=data)
    assert steps.steps == [(2, 1), (3, 2)]


def test_sync_every_checks_the_loss_every_n_steps(fake_data, make_cfg, capsys):
    def poison(bundle):
        bundle.train.poison = {(1, 2), (1, 3)}
        return bundle

    import cnnzoo.engine.trainer as trainer

    real = trainer.build_data
    trainer.build_data = lambda *a, **k: poison(real(*a, **k))
    try:
        with pytest.raises(TrainingError) as every_step:
            train(make_cfg(), quiet=True)
        with pytest.raises(TrainingError) as every_third:
            train(make_cfg(sync_every=3), quiet=True)
    finally:
        trainer.build_data = real
    assert "epoch 1, step 2/3" in str(every_step.value)
    assert "epoch 1, step 3/3" in str(every_third.value)  # seen at the next check
    with pytest.raises(ConfigError, match="needs the loss checked before every step"):
        make_cfg(nan_policy="skip", sync_every=4)


def test_compile_trains(make_cfg):
    cfg = make_cfg(**{"compile": True, "train_cfg.max_epochs": 1, "log.tensorboard": False})
    run_dir = train(cfg, quiet=True, data=FakeBundle(0))
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["global_step"] == 3 and not any("_orig_mod" in k for k in ckpt["model"])
    fresh = train(
        make_cfg(**{"train_cfg.max_epochs": 1, "log.tensorboard": False}),
        quiet=True,
        data=FakeBundle(0),
    )
    for key, value in _weights(fresh).items():  # compiled, the same training up to rounding
        assert torch.allclose(value, ckpt["model"][key], atol=1e-4), key


def test_a_run_leaves_its_log_test_scalars_one_unit_and_its_data_root(
    fake_data, make_cfg, tmp_path, monkeypatch
):
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "data"))
    cfg = make_cfg(**{"data.type": "mnist", "data.image_size": 28})
    assert cfg.data.root is None
    run_dir = train(cfg, quiet=True)
    log = (run_dir / "train.log").read_text().splitlines()
    assert [line.split()[1] for line in log if line.startswith("epoch ")] == ["1/3", "2/3", "3/3"]
    assert log[-1].startswith("test ")
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert {"test/top1", "test/loss", "val/top1", "train/loss_step"} <= set(
        events.Tags()["scalars"]
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    per_class = [v for v in summary["per_class_top1"].values() if v is not None]
    assert max(per_class) > 1.0 and all(0 <= v <= 100 for v in per_class)  # % like test/top1
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["data"]["root"] == str(tmp_path / "data")  # resolved from CNNZOO_DATA
    assert load_config(run_dir / "config.yaml").data.root == str(tmp_path / "data")


def test_workflow_log_interval_and_seed_change_the_run(fake_data, make_cfg):
    def run(**options):
        run_dir = train(make_cfg(**{"train_cfg.max_epochs": 3, **options}), quiet=True)
        events = EventAccumulator(str(run_dir / "tb"))
        events.Reload()
        history = load_checkpoint(run_dir / "checkpoints" / "last.pt")["history"]
        return run_dir, history, len(events.Scalars("train/loss_step"))

    plain, history, logged = run(**{"log.interval": 1})
    assert all("val/top1" in row for row in history) and logged == 9
    _, history, logged = run(**{"log.interval": 3, "workflow": [("train", 2), ("val", 1)]})
    assert ["val/top1" in row for row in history] == [False, True, True]  # epoch 2, and the last
    assert logged == 3
    other_seed, _, _ = run(**{"log.interval": 1, "seed": 1})
    assert not _same_weights(plain, other_seed)


def test_early_stopping_and_the_best_epoch_follow_their_monitor_and_mode():
    from types import SimpleNamespace

    from cnnzoo.engine.callbacks import BestCheckpoint, EarlyStopping
    from cnnzoo.engine.trainer import Progress

    rows = [
        {"epoch": 1, "val/loss": 1.0, "val/top1": 50.0},
        {"epoch": 2, "val/loss": 0.9, "val/top1": 40.0},
        {"epoch": 3, "val/loss": 1.2, "val/top1": 60.0},
    ]

    def stopped_after(**options):  # the early_stopping section as the config resolves it
        cfg = load_config(None, {"early_stopping.patience": 1, **options})
        es, run = EarlyStopping(**cfg.early_stopping), SimpleNamespace(progress=Progress())
        for row in rows:
            es.on_validation_end(run, row)
            if run.progress.stop_after_epoch:
                return row["epoch"]

    assert stopped_after() == 3  # val/loss, min: epoch 3 is worse than epoch 2
    assert (
        stopped_after(**{"early_stopping.monitor": "val/top1", "early_stopping.mode": "max"}) == 2
    )
    assert (
        stopped_after(**{"early_stopping.monitor": "val/top1", "early_stopping.mode": "min"}) == 3
    )
    assert stopped_after(**{"early_stopping.min_delta": 0.2}) == 2  # 0.9 is not 0.2 below 1.0

    def best_epoch(**options):  # the checkpoint section as the config resolves it
        cfg = load_config(None, options)
        best, run = BestCheckpoint(**cfg.checkpoint), SimpleNamespace(progress=Progress())
        for row in rows:
            best.on_validation_end(run, row)
        return best.best["epoch"]

    assert best_epoch() == 3 and best_epoch(**{"checkpoint.mode": "min"}) == 2
    assert best_epoch(**{"checkpoint.monitor": "val/loss", "checkpoint.mode": "min"}) == 2


def test_the_device_key_chooses_the_device(monkeypatch):
    from cnnzoo.machine import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_amp_dtype_chooses_the_autocast_type_on_a_gpu():
    from cnnzoo.engine.trainer import autocast_dtype

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    amp = load_config(None, {"amp.enabled": True, "amp.dtype": "float16"}).amp
    assert autocast_dtype(amp, cuda) == torch.float16
    assert autocast_dtype(dict(amp, dtype="bfloat16"), cuda) == torch.bfloat16
    assert autocast_dtype(amp, cpu) == torch.bfloat16  # the CPU autocasts to bfloat16 only
    assert autocast_dtype(dict(amp, enabled=False), cuda) is None
