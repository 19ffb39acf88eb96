"""The callback contract: every hook gets the run first, the order is declared (``order``,
``needs``/``provides``), ``teardown`` ends every callback however the run ends, each callback
checks its own checkpoint state, and the README's example callback runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes import FakeBundle

import cnnzoo
from cnnzoo.engine import load_checkpoint, train
from cnnzoo.engine.callbacks import (
    BestCheckpoint,
    Callback,
    ConsoleLog,
    EarlyStopping,
    LookaheadAveraging,
    ModelEMA,
    NonFiniteGuard,
    in_order,
)
from cnnzoo.errors import CheckpointError, ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_callbacks_run_by_their_order_and_ties_keep_their_places():
    class Early(Callback):
        order = -5

    console, best, guard, early, user = (
        ConsoleLog(1),
        BestCheckpoint(),
        Early(),
        Early(),
        Callback(),
    )
    nan = NonFiniteGuard("stop", 1)
    ordered = in_order([user, console, best, guard, nan, early])
    assert ordered == [guard, early, nan, best, console, user]


def test_a_callback_that_needs_what_a_later_one_provides_is_refused():
    class LateBest(BestCheckpoint):
        order = 90  # after the console, which reads run.progress.improved

    with pytest.raises(ConfigError, match=r"ConsoleLog \(order 40\) needs improved"):
        in_order([LateBest(), ConsoleLog(1)])


class Recorder(Callback):
    """Every hook it sees, with the run that came with it."""

    def __init__(self, fail_at_epoch: int = 0) -> None:
        self.calls: list[str] = []
        self.runs: set[int] = set()
        self.fail_at_epoch = fail_at_epoch

    def _seen(self, name: str, run) -> None:
        if not self.calls or self.calls[-1] != name:
            self.calls.append(name)
        self.runs.add(id(run))

    def on_fit_start(self, run):
        self._seen("fit_start", run)

    def on_before_backward(self, run, info):
        self._seen("before_backward", run)

    def on_train_batch_end(self, run, info):
        self._seen("batch_end", run)

    def on_steps_end(self, run):
        self._seen("steps_end", run)

    def on_validation_end(self, run, row):
        self._seen("validation_end", run)

    def on_train_epoch_end(self, run, row):
        self._seen("epoch_end", run)
        if row["epoch"] == self.fail_at_epoch:
            raise RuntimeError("boom")

    def on_test_end(self, run, summary):
        self._seen("test_end", run)

    def teardown(self, run):
        self._seen("teardown", run)


def test_every_hook_gets_the_run_first_and_teardown_ends_the_run(make_cfg):
    seen = Recorder()
    train(make_cfg(**{"train_cfg.max_epochs": 1}), quiet=True, callbacks=[seen], data=FakeBundle(0))
    assert seen.calls == [
        "fit_start",
        "before_backward",
        "batch_end",
        "before_backward",
        "batch_end",
        "before_backward",
        "batch_end",
        "steps_end",
        "validation_end",
        "epoch_end",
        "test_end",
        "teardown",
    ]
    assert len(seen.runs) == 1


def test_teardown_is_called_when_the_run_fails(make_cfg, monkeypatch):
    import cnnzoo.engine.callbacks as callbacks

    closed = []
    monkeypatch.setattr(callbacks.TensorBoardLog, "teardown", lambda self, run: closed.append(1))
    seen = Recorder(fail_at_epoch=1)
    with pytest.raises(RuntimeError, match="boom"):
        train(make_cfg(), quiet=True, callbacks=[seen], data=FakeBundle(0))
    assert seen.calls[-2:] == ["epoch_end", "teardown"] and closed == [1]


@pytest.mark.parametrize(
    ("callback", "state", "expected"),
    [
        (NonFiniteGuard("stop", 1), {"streak": -1, "seen": 0}, "nan_guard should be"),
        (BestCheckpoint(), {"monitor": "val/top1", "mode": "up"}, "best should be"),
        (EarlyStopping(), {"value": None, "bad_epochs": "2", "stopped": False}, "early_stopping"),
        (ModelEMA(cnnzoo.create_model("lenet5"), 0.9), {"updates": 1}, "ema should be"),
        (LookaheadAveraging(cnnzoo.create_model("lenet5")), {"steps": 1}, "lookahead should be"),
    ],
    ids=["nan_guard", "best", "early_stopping", "ema", "lookahead"],
)
def test_each_callback_checks_its_own_state_in_one_line(callback, state, expected):
    with pytest.raises(CheckpointError, match=expected) as caught:
        callback.load_state_dict(state)
    assert "\n" not in str(caught.value)


def test_a_damaged_callback_state_is_refused_when_the_checkpoint_loads(make_cfg):
    import torch

    cfg = make_cfg(**{"train_cfg.max_epochs": 1, "early_stopping.patience": 3})
    run_dir = train(cfg, quiet=True, data=FakeBundle(0))
    path = run_dir / "checkpoints" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["early_stopping"]["bad_epochs"] == 0
    ckpt["early_stopping"]["bad_epochs"] = -2
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"is damaged .*: early_stopping should be dict"):
        load_checkpoint(path)


def _readme_callback() -> type:
    """The custom callback of the README's "Training from Python", defined as written."""
    text = (ROOT / "README.md").read_text()
    block = next(
        b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "(cnnzoo.Callback)" in b
    )
    definition = block[block.index("class ") : block.index("cfg = cnnzoo.load_config")]
    namespace: dict = {"cnnzoo": cnnzoo}
    exec(definition, namespace)
    (name,) = re.findall(r"^class (\w+)\(cnnzoo\.Callback\)", definition, re.M)
    return namespace[name]


def test_the_readme_callback_runs_and_its_state_survives_a_resume(make_cfg, capsys):
    callback_class = _readme_callback()
    run_dir = train(
        make_cfg(**{"train_cfg.max_epochs": 2}),
        quiet=True,
        callbacks=[callback_class()],
        data=FakeBundle(0),
    )
    out = capsys.readouterr().out
    assert re.search(r"epoch 1: loss [\d.]+, 3 steps", out)
    assert re.search(r"epoch 2: loss [\d.]+, 6 steps", out)
    assert "stopped counting after epoch 2" in out
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["step_counter"] == {"steps": 6}
    train(
        make_cfg(**{"train_cfg.max_epochs": 3}),
        resume=run_dir,
        quiet=True,
        callbacks=[callback_class()],
        data=FakeBundle(0),
    )
    assert re.search(r"epoch 3: loss [\d.]+, 9 steps", capsys.readouterr().out)
