import csv
import json
import math
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import cnnzoo.engine.trainer as trainer
from cnnzoo.engine import load_checkpoint, load_trained, train
from cnnzoo.engine.callbacks import Callback, Interruption, improved
from cnnzoo.errors import CheckpointError, ConfigError, Interrupted, TrainingError


def _weights(run_dir, name="last.pt"):
    return load_checkpoint(run_dir / "checkpoints" / name)["model"]


def test_loop_trains_logs_saves_and_tests(fake_data, make_cfg, capsys):
    run_dir = train(make_cfg(), quiet=True)
    out = capsys.readouterr().out
    assert f"run dir: {run_dir}" in out
    assert run_dir.parent.name == "tiny"
    for name in (
        "config.yaml",
        "metrics.csv",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
        "summary.json",
    ):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tb").iterdir())
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"train/loss", "train/top1", "val/loss", "val/top1", "lr", "time"} <= set(rows[0])
    assert float(rows[-1]["lr"]) == pytest.approx(0.025)  # MultiStepLR milestone at epoch 2
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"])
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 3 and ckpt["global_step"] == 9 and len(ckpt["history"]) == 3
    assert ckpt["model_kwargs"] == {"act": "relu", "num_classes": 10, "in_chans": 1}
    assert ckpt["data_meta"]["class_names"] == [f"c{i}" for i in range(10)]
    model, meta = load_trained(run_dir)
    assert meta["num_classes"] == 10 and meta["model_name"] == "lenet5" and not model.training
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_init_from_data_called_once_with_normalised_training_images(
    fake_data, make_cfg, monkeypatch
):
    from cnnzoo.models.lenet import LeNet5

    seen = []
    monkeypatch.setattr(
        LeNet5, "init_from_data", lambda self, images: seen.append(images.shape), raising=False
    )
    train(make_cfg(**{"train_cfg.max_epochs": 1}), quiet=True)
    assert seen == [(16, 1, 28, 28)]


def test_regression_run_scores_rounded_predictions(fake_data, make_cfg):
    cfg = make_cfg(
        **{
            "loss.type": "mse",
            "model.num_classes": 1,
            "optimizer.lr": 0.01,
            "train_cfg.max_epochs": 2,
            "checkpoint.monitor": "val/mae",
            "checkpoint.mode": "min",
        }
    )
    run_dir = train(cfg, quiet=True)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["model_kwargs"]["num_classes"] == 1
    assert {"val/mae", "val/rmse", "val/top1"} <= set(ckpt["history"][-1])
    assert ckpt["best"]["monitor"] == "val/mae"


def test_each_scheduler_runs_in_the_loop(fake_data, make_cfg):
    for sched in ("StepLR", "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau", "None"):
        cfg = make_cfg(**{"train_cfg.max_epochs": 2})
        cfg.param_scheduler = {
            "StepLR": dict(type="StepLR", step_size=1, gamma=0.5),
            "CosineAnnealingLR": dict(type="CosineAnnealingLR", warmup_epochs=1, min_lr=0.0),
            "OneCycleLR": dict(type="OneCycleLR", max_lr=0.1, pct_start=0.3),
            "ReduceLROnPlateau": dict(type="ReduceLROnPlateau", monitor="val/loss", patience=0),
            "None": None,
        }[sched]
        history = load_checkpoint(train(cfg, quiet=True) / "checkpoints" / "last.pt")["history"]
        assert len(history) == 2, sched


def test_config_mismatch_with_data_is_one_clear_error(fake_data, make_cfg):
    with pytest.raises(ConfigError, match="model.num_classes=7 but the fake data has 10"):
        cfg = make_cfg()
        cfg.model.num_classes = (
            7  # (load_config checks built-in datasets; an imagefolder is known only here)
        )
        train(cfg, quiet=True)
    with pytest.raises(ConfigError, match="'val/acc' is not a metric this run logs"):
        train(make_cfg(**{"checkpoint.monitor": "val/acc"}), quiet=True)


def test_early_stopping_stops_and_is_restored(fake_data, make_cfg, capsys):
    cfg = make_cfg(
        **{
            "train_cfg.max_epochs": 6,
            "early_stopping.patience": 1,
            "early_stopping.min_delta": 100.0,
        }
    )
    run_dir = train(cfg, quiet=True)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["early_stopping"]["stopped"]
    assert "early stopping" in capsys.readouterr().out
    train(cfg, resume=run_dir, quiet=True)  # nothing left to do: no further epoch
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 2


# ---- resume ---------------------------------------------------------------------------------


def _assert_same_run(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ha, hb = (load_checkpoint(r / "checkpoints" / "last.pt")["history"] for r in (a, b))
    strip = lambda h: [{k: v for k, v in r.items() if k != "time"} for r in h]  # noqa: E731
    assert strip(ha) == strip(hb)
    assert torch.equal(_weights(a, "best.pt")["fc.weight"], _weights(b, "best.pt")["fc.weight"])
    assert (
        list(csv.DictReader(open(a / "metrics.csv")))[-1]["val/top1"]
        == list(csv.DictReader(open(b / "metrics.csv")))[-1]["val/top1"]
    )


@pytest.mark.parametrize("opt", ["SGD", "AdamW"])
def test_resume_after_epoch_k_is_bit_identical(fake_data, make_cfg, opt):
    opts = {
        "deterministic": True,
        "optimizer.type": opt,
        "optimizer.lr": 0.01 if opt == "AdamW" else 0.05,
        "model.drop_rate": 0.2,
    }
    full = train(make_cfg(**opts, **{"train_cfg.max_epochs": 4}), quiet=True)
    part = train(make_cfg(**opts, **{"train_cfg.max_epochs": 2}), quiet=True)
    assert part != full
    assert train(make_cfg(**opts, **{"train_cfg.max_epochs": 4}), resume=part, quiet=True) == part
    _assert_same_run(full, part)


def test_keyboard_interrupt_mid_epoch_then_resume_is_bit_identical(fake_data, make_cfg, capsys):
    opts = {"deterministic": True, "model.drop_rate": 0.2, "train_cfg.max_epochs": 4}
    full = train(make_cfg(**opts), quiet=True)

    def ctrl_c(event, info):
        if event == "step" and info["epoch"] == 3 and info["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(make_cfg(**opts), quiet=True, callbacks=[ctrl_c])
    err = capsys.readouterr().err
    assert "checkpoint of epoch 2 is kept" in err and "--resume" in err
    resumed = train(make_cfg(**opts), resume="auto", quiet=True)  # the latest run of this config
    assert resumed != full
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["epoch"] == 4
    _assert_same_run(full, resumed)


def test_resume_refuses_corrupt_last_and_other_models(fake_data, make_cfg, monkeypatch, capsys):
    from fakes import FakeBundle

    run_dir = train(make_cfg(**{"train_cfg.max_epochs": 1}), quiet=True)
    monkeypatch.setattr(trainer, "build_data", lambda *a, **k: FakeBundle(classes=5))
    five = make_cfg()
    five.model.num_classes = 5
    with pytest.raises(
        CheckpointError,
        match=r"does not fit model lenet5; 2 shape mismatches: fc.weight: checkpoint \(10, 84\) vs model \(5, 84\)",
    ):
        train(five, resume=run_dir, quiet=True)
    monkeypatch.setattr(trainer, "build_data", lambda *a, **k: FakeBundle())
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train(make_cfg(), resume=run_dir, quiet=True)
    fresh = train(
        make_cfg(**{"train_cfg.max_epochs": 1}), resume="auto", quiet=True
    )  # never the corrupt one
    assert fresh != run_dir and "passing over" in capsys.readouterr().out


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_over(
    fake_data, make_cfg, capsys
):
    def ctrl_c(event, info):
        if event == "step" and info["epoch"] == 1 and info["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(make_cfg(deterministic=True), quiet=True, callbacks=[ctrl_c])
    assert "no epoch was completed" in capsys.readouterr().err
    again = train(make_cfg(deterministic=True), resume="auto", quiet=True)
    assert "starts over" in capsys.readouterr().out
    assert len(list(again.parent.iterdir())) == 1  # in the same run directory
    _assert_same_run(train(make_cfg(deterministic=True), quiet=True), again)


# ---- NaN ------------------------------------------------------------------------------------


def test_nan_stop_names_epoch_and_step_and_keeps_last_good(
    fake_data, make_cfg, monkeypatch, tmp_path
):
    real = trainer.build_data

    def poisoned(*a, **k):
        bundle = real(*a, **k)
        bundle.train.poison = {(2, 2)}
        return bundle

    monkeypatch.setattr(trainer, "build_data", poisoned)
    with pytest.raises(
        TrainingError, match=r"epoch 2, step 2/3.*last good checkpoint .*last.pt \(epoch 1\)"
    ):
        train(make_cfg(), quiet=True)
    runs = list((tmp_path / "runs" / "tiny").iterdir())
    ckpt = load_checkpoint(runs[0] / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_nan_skip_halves_lr_and_continues_then_stops_after_ten(
    fake_data, make_cfg, monkeypatch, capsys
):
    real = trainer.build_data
    poison = {(2, 1), (2, 2)}

    def poisoned(*a, **k):
        bundle = real(*a, **k)
        bundle.train.poison = poison
        return bundle

    monkeypatch.setattr(trainer, "build_data", poisoned)
    cfg = make_cfg(nan_policy="skip", param_scheduler=None)
    run_dir = train(cfg, quiet=True)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 3 and ckpt["global_step"] == 9 - 2
    assert ckpt["history"][-1]["lr"] == pytest.approx(0.05 / 4)
    assert capsys.readouterr().out.count("step skipped") == 2
    poison.update((e, s) for e in (1, 2, 3, 4) for s in (1, 2, 3))
    with pytest.raises(TrainingError, match="10 steps in a row"):
        train(make_cfg(nan_policy="skip", **{"train_cfg.max_epochs": 4}), quiet=True)


def test_nan_skip_reports_an_epoch_that_skipped_every_step_and_never_makes_it_best(
    fake_data, make_cfg, monkeypatch, capsys, tmp_path
):
    real = trainer.build_data

    def poisoned(*a, **k):
        bundle = real(*a, **k)
        bundle.train.poison = {(1, 1), (1, 2), (1, 3)}  # all of epoch 1
        return bundle

    def no_best_yet(event, info):  # the untrained weights of epoch 1 are never best.pt
        if event == "epoch" and info["epoch"] == 1:
            assert not list((tmp_path / "runs").glob("*/*/checkpoints/best.pt"))

    monkeypatch.setattr(trainer, "build_data", poisoned)
    run_dir = train(make_cfg(nan_policy="skip"), quiet=True, callbacks=[no_best_yet])
    assert "warning: epoch 1: every step had a non-finite loss and was skipped" in (
        capsys.readouterr().out
    )
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 3 and ckpt["global_step"] == 6
    epoch1 = ckpt["history"][0]
    assert math.isnan(epoch1["train/loss"]) and math.isnan(epoch1["train/top1"])
    assert math.isfinite(epoch1["val/loss"])
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["best"]["epoch"] > 1


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_metric_never_improves(value):
    for mode in ("min", "max"):
        assert not improved(value, None, mode, 0.0)
        assert improved(50.0, None, mode, 0.0) and improved(50.0, value, mode, 0.0)
        assert not improved(value, 50.0, mode, 0.0)


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_is_deferred_and_a_second_one_stops_at_once(first, capsys):
    interruption = Interruption(every=1)
    with interruption.catching():
        os.kill(os.getpid(), first)
        assert interruption.signum == first  # the loop stops after its step
        os.kill(os.getpid(), signal.SIGTERM)  # a repeated preemption notice changes nothing
        os.kill(os.getpid(), signal.SIGHUP)
        assert interruption.signum == first
        with pytest.raises(Interrupted) as stopped:
            os.kill(os.getpid(), signal.SIGINT)
    assert stopped.value.exit_code == 130 and str(stopped.value) == "interrupted"
    name = "Ctrl-C" if first == signal.SIGINT else first.name
    assert f"{name}: stopping after this step (Ctrl-C to stop at once)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back
    assert Interrupted(signal.SIGTERM).exit_code == 143
    assert str(Interrupted(signal.SIGHUP)) == "interrupted by SIGHUP"


def test_bf16_autocast_channels_last_and_clipping_train(fake_data, make_cfg):
    opts = {
        "amp.enabled": True,
        "channels_last": True,
        "clip_grad.max_norm": 0.5,
        "loss.label_smoothing": 0.1,
        "optimizer.decay_norm_and_bias": False,
        "train_cfg.max_epochs": 2,
    }
    seen = ConvInputs()
    run_dir = train(make_cfg(**opts), quiet=True, callbacks=[seen])
    history = load_checkpoint(run_dir / "checkpoints" / "last.pt")["history"]
    assert history[1]["train/loss"] < history[0]["train/loss"]  # it learns
    assert seen.dtypes == {torch.bfloat16} and seen.channels_last == {True}  # while training
    assert seen.calls == 2 * 3  # batches of both epochs (validation runs in inference mode)


@pytest.mark.parametrize("groups", [1, 2])
def test_bf16_on_the_cpu_warns_about_grouped_convs(fake_data, make_cfg, monkeypatch, groups):
    build = trainer.build_model

    def lenet_grouped(*args, **kwargs):  # LeNet-5 with its second conv (6 -> 16) in groups
        model, name, model_kwargs = build(*args, **kwargs)
        c3 = model.c3
        model.c3 = torch.nn.Conv2d(c3.in_channels, c3.out_channels, c3.kernel_size, groups=groups)
        return model, name, model_kwargs

    monkeypatch.setattr(trainer, "build_model", lenet_grouped)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(make_cfg(**{"amp.enabled": True, "train_cfg.max_epochs": 1}), quiet=True)
    said = [str(w.message) for w in caught if "bf16 autocast on the CPU" in str(w.message)]
    if groups == 1:
        assert said == []
    else:
        assert said == [
            "bf16 autocast on the CPU slows this model's 1 depthwise/grouped convolutions "
            "(MobileNetV2, ShuffleNet, EfficientNet train 1.7-2.2x slower than in fp32; more on "
            "CPUs without bf16 instructions); train in fp32 with --cfg-options amp.enabled=False"
        ]


class ConvInputs(Callback):
    """What the first convolution computes in while training: its output dtype, and whether
    its input is channels-last."""

    def __init__(self) -> None:
        self.dtypes, self.channels_last, self.calls = set(), set(), 0

    def on_fit_start(self, run):
        conv = next(m for m in run.model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(self.record)

    def record(self, module, inputs, output):
        if module.training:
            self.calls += 1
            self.dtypes.add(output.dtype)
            self.channels_last.add(inputs[0].is_contiguous(memory_format=torch.channels_last))


# RepVGG-A0 trains two steps on 96x96 RGB batches with the default runtime (channels_last on):
# without the engine's NCHW fallback, oneDNN's weight gradient of the stem's 1x1 stride-2 branch
# kills the process (a segfault or a heap abort at this size; see cnnzoo.engine.cpu_kernels)
REPVGG_ON_CPU = """
import sys, torch, cnnzoo
from fakes import FakeBatches, FakeBundle

data = FakeBundle(0)
images, labels = torch.randn(4, 3, 96, 96), torch.arange(4) % 10
data.train = FakeBatches(images, labels, 2, True, 0)
data.val = data.test = FakeBatches(images, labels, 4, False, 0)
data.in_chans, data.image_size, data.mean, data.std = 3, (96, 96), (0.0,) * 3, (1.0,) * 3
options = {"model.type": "repvgg_a0", "model.in_chans": 3, "data.in_chans": 3,
           "data.image_size": 96, "train_cfg.max_epochs": 1, "log.tensorboard": False,
           "device": "cpu", "work_dir": sys.argv[2]}  # the rest: the default runtime
cfg = cnnzoo.load_config(sys.argv[1], options)
cnnzoo.train(cfg, data=data, quiet=True)
"""


def test_repvgg_trains_on_the_cpu_with_the_default_channels_last(make_cfg, tmp_path):
    cfg = make_cfg("repvgg")  # written to tmp_path/repvgg.py, which the subprocess loads
    assert cfg.channels_last is True  # the default runtime's
    tests = os.path.dirname(__file__)
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]),
    )
    args = [sys.executable, "-c", REPVGG_ON_CPU, str(tmp_path / "repvgg.py"), cfg.work_dir]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]  # not -11 (SIGSEGV) or -6 (SIGABRT)
    assert "note: training in NCHW, not channels_last" in done.stdout
    assert len(list(Path(cfg.work_dir).glob("repvgg/*/checkpoints/last.pt"))) == 1


def test_without_validation_or_test_split(fake_data, make_cfg, monkeypatch, capsys):
    from fakes import FakeBundle

    def no_val(*a, **k):
        bundle = FakeBundle()
        bundle.val = None
        return bundle

    monkeypatch.setattr(trainer, "build_data", no_val)
    run_dir = train(make_cfg(**{"train_cfg.max_epochs": 2}), quiet=True)
    assert "the test uses the last epoch" in capsys.readouterr().out
    assert not (run_dir / "checkpoints" / "best.pt").exists()
    assert "val/top1" not in load_checkpoint(run_dir / "checkpoints" / "last.pt")["history"][-1]

    def no_test(*a, **k):
        bundle = FakeBundle()
        bundle.test = None
        return bundle

    monkeypatch.setattr(trainer, "build_data", no_test)
    train(make_cfg(**{"train_cfg.max_epochs": 1}), quiet=True)
    assert "no test split" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["set-up", "final test"])
def test_a_signal_outside_the_epoch_loop_stops_at_once_in_one_line(
    fake_data, make_cfg, monkeypatch, capsys, where
):
    """Before the loop (building the data) and after it (the final test) nothing is half-done:
    SIGTERM stops at once as Interrupted (exit 143 from the CLI), never a silent death."""
    if where == "set-up":
        build = trainer.build_data

        def build_then_signal(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            return build(*args, **kwargs)

        monkeypatch.setattr(trainer, "build_data", build_then_signal)
    else:
        evaluate = trainer.evaluate

        def signal_in_test(*args, desc="eval", **kwargs):
            if desc == "test":
                os.kill(os.getpid(), signal.SIGTERM)
            return evaluate(*args, desc=desc, **kwargs)

        monkeypatch.setattr(trainer, "evaluate", signal_in_test)
    with pytest.raises(Interrupted) as stopped:
        train(make_cfg(), quiet=True)
    assert stopped.value.exit_code == 143
    err = capsys.readouterr().err
    if where == "final test":
        assert "every epoch is saved but the final test did not finish; resume with" in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back


def test_the_lr_column_is_the_rate_each_epoch_trained_with(fake_data, make_cfg):
    """MultiStepLR halves the rate after epoch 2: epochs 1-2 trained at 0.05, epoch 3 at 0.025
    (logged after the epoch, the rate had already moved: 0.05, 0.025, 0.025)."""
    run_dir = train(make_cfg(), quiet=True)
    lrs = [
        float(line.split(",")[1]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]
    ]
    assert lrs == pytest.approx([0.05, 0.05, 0.025])


def test_best_is_marked_only_when_validating(fake_data, make_cfg, capsys):
    train(make_cfg(**{"train_cfg.max_epochs": 2}), quiet=False)
    epochs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert "*best" in epochs[0]
    train(make_cfg(workflow=[("train", 1)], **{"train_cfg.max_epochs": 2}), quiet=False)
    epochs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and not any("*best" in line for line in epochs)


def test_a_run_that_ends_early_records_how(fake_data, make_cfg):
    from cnnzoo.analysis.runs import read_run
    from cnnzoo.rundir import STATUS as STATUS_FILE

    class StopAt(Callback):
        def __init__(self, error):
            self.error = error

        def on_train_epoch_end(self, run, row):
            if row["epoch"] >= 2:
                raise self.error

    cfg = make_cfg()
    with pytest.raises(Interrupted):
        train(cfg, quiet=True, callbacks=[StopAt(Interrupted())])
    (run_dir,) = (Path(cfg.work_dir) / "tiny").iterdir()
    assert read_run(run_dir)["status"] == "stopped at epoch 2"
    with pytest.raises(RuntimeError):
        train(cfg, resume=run_dir, quiet=True, callbacks=[StopAt(RuntimeError("boom"))])
    assert json.loads((run_dir / STATUS_FILE).read_text())["error"] == "boom"
    train(cfg, resume=run_dir, quiet=True)
    assert not (run_dir / STATUS_FILE).exists() and read_run(run_dir)["status"] == "finished"


def test_without_a_terminal_progress_comes_as_lines(fake_data, make_cfg, capsys, monkeypatch):
    import cnnzoo.engine.callbacks as callbacks

    monkeypatch.setattr(callbacks, "PROGRESS_EVERY_S", 0.0)  # a line at every step
    train(make_cfg(**{"train_cfg.max_epochs": 1}), quiet=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if " steps/s " in line]
    assert lines and lines[-1].startswith("epoch 1/1  step 3/3  ")
    assert "loss " in lines[-1] and lines[-1].endswith("ETA 0 s to the epoch's end")
    train(make_cfg(**{"train_cfg.max_epochs": 1}), quiet=True)
    assert " steps/s " not in capsys.readouterr().out  # quiet: none
    assert callbacks._duration(185) == "3 min 05 s" and callbacks._duration(3720) == "1 h 02 min"
