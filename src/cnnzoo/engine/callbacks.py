"""Everything around the training loop, one plain class per job (Lightning's ``Callback``
without the framework): the loop in :mod:`cnnzoo.engine.trainer` calls each callback at fixed
points, always with the :class:`~cnnzoo.engine.trainer.Run` first (``on_x(run, ...)``), and
calls ``teardown(run)`` of every callback when the run ends, however it ends. A callback with
a ``state_key`` keeps its state in every checkpoint under that key and checks what it loads
(``check_state``), so a resumed run continues exactly (mid-epoch too).

The callbacks run in the order of their ``order`` (ties: as listed), see :func:`in_order`;
a callback that reads what another one sets names it in ``needs`` (the other one in
``provides``), and :func:`in_order` refuses a list where the provider does not come first.
The built-in callbacks, in that order:

* :class:`NonFiniteGuard` - NaN/Inf losses (``nan_policy``, checked every ``sync_every`` steps)
  and non-finite epochs, which are never saved;
* :class:`LookaheadAveraging` and :class:`ModelEMA` - weight averaging;
* :class:`BestCheckpoint` - the best epoch by ``checkpoint.monitor``, ``best.pt`` and ``last.pt``;
* :class:`EarlyStopping`;
* :class:`MetricsCSV`, :class:`TensorBoardLog`, :class:`ConsoleLog` - ``metrics.csv``, ``tb/``,
  the console and ``train.log``;
* the user's callbacks;
* :class:`Interruption` - Ctrl-C, SIGTERM and SIGHUP finish the step, save and stop.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from cnnzoo import distributed, rundir
from cnnzoo.engine.checkpoint import brief, non_finite_weights
from cnnzoo.engine.lookahead import Lookahead
from cnnzoo.errors import CheckpointError, ConfigError, Interrupted, TrainingError
from cnnzoo.fileio import atomic_write
from cnnzoo.signals import STOP_SIGNALS, handling, signal_name

if TYPE_CHECKING:
    from cnnzoo.engine.trainer import Run

MAX_NAN_SKIPS = 10

# the ``order`` of the built-in callbacks (lower runs first at every hook)
GUARD = 0  # NonFiniteGuard: drops a bad batch before anyone sees it, refuses a bad epoch
AVERAGING = 10  # Lookahead, then EMA: the weights are final before they are validated
BEST = 20  # BestCheckpoint: provides progress.improved (the console's "*best")
EARLY_STOPPING = 30  # provides progress.stop_after_epoch
LOGGING = 40  # metrics.csv, TensorBoard, the console (needs "improved")
USER = 50  # the default of a callback that does not say
INTERRUPTION = 100  # last: a stop saves after every other callback has seen the step


class SkipStep(Exception):
    """Raised by ``on_before_backward`` to drop this batch: no backward, no optimizer step."""


class Callback:
    """Plug into the loop: override what you need. Every hook gets the run first (the
    :class:`~cnnzoo.engine.trainer.Run`: ``run.model``, ``run.data``, ``run.cfg``, ...; its
    ``run.progress`` holds the epoch, the step, the history). ``info`` of a batch holds
    ``epoch``, ``step`` (the batch in the epoch), ``global_step`` (optimizer steps so far),
    ``loss`` (a tensor; reading it syncs with the device) and ``model`` (its ``.grad`` are those
    the optimizer just used). ``row`` is the epoch's row of metrics (as in ``metrics.csv``).

    ``order`` places the callback among the others (see the module's constants; ties run in
    the order given); ``needs``/``provides`` name what it reads of / sets on ``run.progress``
    for another callback. Set ``state_key`` (a name of your own) and implement
    ``state_dict``/``load_state_dict`` (and ``check_state``) to keep state in the checkpoints."""

    state_key: str | None = None
    order: int = USER
    needs: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()

    def on_fit_start(self, run: Run) -> None:
        """The run is built (and restored when resuming); no step was taken yet."""

    def on_before_backward(self, run: Run, info: dict[str, Any]) -> None:
        """The loss of a batch is known; raise :class:`SkipStep` to drop the batch."""

    def on_train_batch_end(self, run: Run, info: dict[str, Any]) -> None:
        """An optimizer step was taken."""

    def on_steps_end(self, run: Run) -> None:
        """The epoch's batches are done; nothing is validated yet."""

    def on_validation_end(self, run: Run, row: dict[str, Any]) -> None:
        """The epoch's metrics are in ``row`` (validated when due); nothing is saved yet."""

    def on_train_epoch_end(self, run: Run, row: dict[str, Any]) -> None:
        """The epoch is over and saved."""

    def on_test_end(self, run: Run, summary: dict[str, Any]) -> None:
        """The final test is scored; ``summary`` becomes ``summary.json``."""

    def teardown(self, run: Run) -> None:
        """The run is over (finished, failed or stopped): release what the callback holds."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    @classmethod
    def check_state(cls, state: Any) -> None:
        """Raise :class:`CheckpointError` (``'<state_key> should be ..., got ...'``) unless
        ``state`` is what :meth:`state_dict` writes."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def _require(ok: bool, key: str, expected: str, state: Any) -> None:
    if not ok:
        raise CheckpointError(f"{key} should be {expected}, got {brief(state)}")


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_str_dict(x: Any) -> bool:
    return isinstance(x, Mapping) and all(isinstance(k, str) for k in x)


def in_order(callbacks: list[Callback]) -> list[Callback]:
    """``callbacks`` sorted by their ``order`` (stable: ties keep their places). Raises
    :class:`ConfigError` when a callback ``needs`` what no earlier callback ``provides``."""
    ordered = sorted(callbacks, key=lambda c: c.order)
    provided: set[str] = set()
    for callback in ordered:
        missing = [need for need in callback.needs if need not in provided]
        if missing:
            raise ConfigError(
                f"callback {type(callback).__name__} (order {callback.order}) needs "
                f"{', '.join(missing)}, which no callback before it provides"
            )
        provided.update(callback.provides)
    return ordered


class FunctionCallback(Callback):
    """A plain function ``fn(event, info)`` as a callback: ``'step'`` after every optimizer
    step (``info`` as in :meth:`Callback.on_train_batch_end`), ``'epoch'`` after every epoch
    (the row of metrics)."""

    def __init__(self, fn: Callable[[str, dict], None]) -> None:
        self.fn = fn

    def on_train_batch_end(self, run, info):
        self.fn("step", dict(info, run=run))

    def on_train_epoch_end(self, run, row):
        self.fn("epoch", row)


def as_callback(obj: Callback | Callable[[str, dict], None]) -> Callback:
    if isinstance(obj, Callback):
        return obj
    if callable(obj):
        return FunctionCallback(obj)
    raise ConfigError(f"a callback must be a cnnzoo.Callback or a function, got {obj!r}")


# ---- guards --------------------------------------------------------------------------------


class NonFiniteGuard(Callback):
    """NaN and Inf never reach a checkpoint. Every ``every`` batches it reads the loss (one
    host-device sync): non-finite on any rank -> ``nan_policy='stop'`` ends the run naming
    the epoch and step; ``'skip'`` drops the batch and halves the learning rate, and stops after
    :data:`MAX_NAN_SKIPS` in a row. An epoch whose weights or losses end non-finite is not
    saved (the last good checkpoint stays)."""

    state_key = "nan_guard"
    order = GUARD

    def __init__(self, policy: str, every: int) -> None:
        self.policy, self.every, self.streak, self.seen = policy, every, 0, 0

    def on_before_backward(self, run, info):
        self.seen += 1
        if self.seen % self.every:
            return
        loss = info["loss"]
        if not distributed.any_rank(not torch.isfinite(loss).item(), run.device):
            self.streak = 0
            return
        self.streak += 1
        where = f"epoch {info['epoch']}, step {info['step']}/{len(run.data.train)}"
        if self.policy == "stop" or self.streak >= MAX_NAN_SKIPS:
            what = f"loss is {loss.item()} at {where}"
            if self.streak >= MAX_NAN_SKIPS:
                what = f"{self.streak} steps in a row had a non-finite loss (last: {where})"
            raise TrainingError(
                f"{what}; training stopped and {_last_good(run)}. Lower optimizer.lr, set "
                "clip_grad.max_norm, or use nan_policy='skip'"
            )
        run.schedule.scale_lr(0.5)
        run.say(
            f"warning: loss is {loss.item()} at {where}; step skipped, learning rate halved "
            f"to {run.schedule.lr:.3g}"
        )
        raise SkipStep

    def on_validation_end(self, run, row):
        trained = run.progress.epoch_trained
        if not trained:  # nan_policy='skip' skipped every step: no training metrics
            row.update((k, math.nan) for k in list(row) if k.startswith("train/"))
            run.say(
                f"warning: epoch {row['epoch']}: every step had a non-finite loss and was "
                "skipped; the weights did not change"
            )
        bad = non_finite_weights(run.model)
        for key, value in row.items():
            counted = trained or not key.startswith("train/")
            if key.endswith("loss") and not math.isfinite(value) and counted:
                bad.append(f"{key} {value}")
        if distributed.any_rank(bool(bad), run.device):
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise TrainingError(
                f"epoch {row['epoch']} ended with non-finite values ({shown}), so it was not "
                f"saved; training stopped and {_last_good(run)}. Lower optimizer.lr or set "
                "clip_grad.max_norm, then resume"
            )

    def state_dict(self):
        return dict(streak=self.streak, seen=self.seen)

    @classmethod
    def check_state(cls, state):
        ok = _is_str_dict(state) and all(_is_count(state.get(k)) for k in ("streak", "seen"))
        _require(ok, cls.state_key, "dict(streak, seen) of integers >= 0", state)

    def load_state_dict(self, state):
        self.check_state(state)
        self.streak, self.seen = int(state["streak"]), int(state["seen"])


def _last_good(run: Run) -> str:
    epoch = run.progress.epoch
    if not epoch:
        return "no epoch was completed"
    return f"the last good checkpoint is {run.ckpt_dir / rundir.LAST} (epoch {epoch})"


class Interruption(Callback):
    """Ctrl-C, SIGTERM and SIGHUP (what SLURM and Kubernetes send before preemption) finish
    the current step, save a resumable mid-epoch checkpoint, print the command that resumes
    and stop (exit 130/143/129 from the CLI). A second Ctrl-C stops at once; a repeated
    SIGTERM or SIGHUP changes nothing (schedulers and torchrun may deliver one notice twice).
    Under DDP the ranks agree every ``every`` steps (an all-reduce), so all stop together."""

    order = INTERRUPTION

    def __init__(self, every: int) -> None:
        self.every, self.signum = every, 0

    @contextlib.contextmanager
    def catching(self) -> Iterator[None]:
        """Defer the stop signals to the end of the step while the loop runs."""

        def handler(signum, frame):
            if self.signum:
                if signum == signal.SIGINT:
                    raise Interrupted(signum)
                return
            self.signum = signum
            print(
                f"\n{signal_name(signum)}: stopping after this step (Ctrl-C to stop at once)",
                file=sys.stderr,
            )

        with handling(STOP_SIGNALS, handler):
            yield

    def _stop_now(self, run: Run, global_step: int) -> bool:
        if run.world_size == 1:  # a Python flag: free to read every step
            return bool(self.signum)
        return global_step % self.every == 0 and distributed.any_rank(bool(self.signum), run.device)

    def on_train_batch_end(self, run, info):
        if self._stop_now(run, info["global_step"]):
            run.save_partial(info["step"], info["meter"])
            raise Interrupted(self.signum or signal.SIGINT)

    def on_train_epoch_end(self, run, row):
        if distributed.any_rank(bool(self.signum), run.device):  # every rank stops here
            raise Interrupted(self.signum or signal.SIGINT)


# ---- weight averaging ----------------------------------------------------------------------


class LookaheadAveraging(Callback):
    """Lookahead (Zhang et al. 2019), as airbench uses it: every ``k`` steps the slow weights
    move ``alpha`` of the way to the fast ones. At each epoch end the weights are synced, so
    validation and checkpoints see the slow weights; mid-epoch the slow copy is saved too."""

    state_key = "lookahead"
    order = AVERAGING

    def __init__(
        self, model: nn.Module, k: int = 5, alpha: float = 0.5, ramp_steps: int = 0
    ) -> None:
        self.lookahead = Lookahead(model, k=k, alpha=alpha, ramp_steps=ramp_steps)

    def on_train_batch_end(self, run, info):
        self.lookahead.step(info["global_step"])

    def on_steps_end(self, run):
        self.lookahead.sync(run.progress.global_step)

    def state_dict(self):
        return dict(steps=self.lookahead.steps, slow=[t.clone() for t in self.lookahead.slow])

    @classmethod
    def check_state(cls, state):
        ok = (
            _is_str_dict(state)
            and _is_count(state.get("steps"))
            and isinstance(state.get("slow"), list | tuple)
            and all(isinstance(t, torch.Tensor) for t in state["slow"])
        )
        _require(ok, cls.state_key, "dict(steps, slow=[tensors])", state)

    def load_state_dict(self, state):
        self.check_state(state)
        if len(state["slow"]) != len(self.lookahead.slow):
            raise CheckpointError(
                f"lookahead holds {len(state['slow'])} slow weights but the model has "
                f"{len(self.lookahead.slow)}"
            )
        self.lookahead.steps = int(state["steps"])
        for slow, saved in zip(self.lookahead.slow, state["slow"], strict=True):
            slow.copy_(saved)


class ModelEMA(Callback):
    """An exponential moving average of the weights (Polyak averaging; torchvision's
    references and timm's ``ModelEmaV2``): every ``every`` optimizer steps
    ``ema = decay * ema + (1 - decay) * weights`` over every floating-point parameter and
    buffer (BatchNorm statistics included). ``warmup`` ramps the decay as
    ``min(decay, (1 + n) / (10 + n))`` over the first updates. The averaged weights are
    validated (``val_ema/...``) and tested (``test_ema/...``) beside the trained ones."""

    state_key = "ema"
    order = AVERAGING

    def __init__(self, model: nn.Module, decay: float, every: int = 1, warmup: bool = False):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.source = model
        self.decay, self.every, self.warmup, self.updates = float(decay), every, warmup, 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = self.decay
        if self.warmup:
            decay = min(decay, (1 + self.updates) / (10 + self.updates))
        for ema, now in zip(
            self.model.state_dict().values(), self.source.state_dict().values(), strict=True
        ):
            if ema.is_floating_point():
                ema.lerp_(now, 1.0 - decay)
            else:
                ema.copy_(now)

    def on_train_batch_end(self, run, info):
        if info["global_step"] % self.every == 0:
            self.update()

    def on_validation_end(self, run, row):
        if any(k.startswith("val/") for k in row):
            row.update(run.evaluate(self.model, "val").compute("val_ema/"))

    def on_test_end(self, run, summary):
        split = "test" if run.data.test is not None else "val"
        summary.update(run.evaluate(self.model, split).compute(f"{split}_ema/"))

    def state_dict(self):
        return dict(updates=self.updates, weights=self.model.state_dict())

    @classmethod
    def check_state(cls, state):
        ok = (
            _is_str_dict(state)
            and _is_count(state.get("updates"))
            and _is_str_dict(state.get("weights"))
            and all(isinstance(t, torch.Tensor) for t in state["weights"].values())
        )
        _require(ok, cls.state_key, "dict(updates, weights=state_dict)", state)

    def load_state_dict(self, state):
        self.check_state(state)
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["weights"])


# ---- the best epoch, early stopping --------------------------------------------------------


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if best is None or not math.isfinite(best):
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class BestCheckpoint(Callback):
    """Tracks the best epoch by ``checkpoint.monitor`` and saves it as ``best.pt`` (first, so
    a crash between the two files redoes this epoch) and every epoch as ``last.pt``."""

    state_key = "best"
    order = BEST
    provides = ("improved",)

    def __init__(self, monitor: str = "val/top1", mode: str = "max") -> None:
        self.best = dict(monitor=monitor, mode=mode, value=None, epoch=0)

    def on_validation_end(self, run, row):
        value = row.get(self.best["monitor"])  # the config checked it is one of the run's
        run.progress.improved = bool(
            run.progress.epoch_trained
            and value is not None
            and improved(value, self.best["value"], self.best["mode"], 0.0)
        )
        if run.progress.improved:
            self.best.update(value=float(value), epoch=int(row["epoch"]))

    def on_train_epoch_end(self, run, row):
        if run.main:
            if run.progress.improved:
                run.save(rundir.BEST)
            run.save(rundir.LAST)

    def state_dict(self):
        return dict(self.best)

    @classmethod
    def check_state(cls, state):
        ok = (
            _is_str_dict(state)
            and isinstance(state.get("monitor"), str)
            and state.get("mode") in ("min", "max")
            and (state.get("value") is None or _is_number(state.get("value")))
            and _is_count(state.get("epoch"))
        )
        _require(ok, cls.state_key, "dict(monitor, mode, value, epoch)", state)

    def load_state_dict(self, state):
        self.check_state(state)
        self.best = dict(state)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` validations."""

    state_key = "early_stopping"
    order = EARLY_STOPPING
    provides = ("stop_after_epoch",)

    def __init__(
        self,
        monitor: str = "val/loss",
        mode: str = "min",
        patience: int = 5,
        min_delta: float = 0.0,
    ) -> None:
        self.monitor, self.mode, self.patience = monitor, mode, int(patience)
        self.min_delta = float(min_delta)
        self.state = dict(value=None, bad_epochs=0, stopped=False)

    def on_fit_start(self, run):
        run.progress.stop_after_epoch = self.state["stopped"]

    def on_validation_end(self, run, row):
        if self.monitor not in row:
            return
        if improved(row[self.monitor], self.state["value"], self.mode, self.min_delta):
            self.state.update(value=float(row[self.monitor]), bad_epochs=0)
        else:
            self.state["bad_epochs"] += 1
            self.state["stopped"] = self.state["bad_epochs"] >= self.patience
        run.progress.stop_after_epoch = run.progress.stop_after_epoch or self.state["stopped"]

    def on_train_epoch_end(self, run, row):
        if self.state["stopped"]:
            run.say(
                f"early stopping: {self.monitor} has not improved for {self.patience} validations"
            )

    def state_dict(self):
        return dict(self.state)

    @classmethod
    def check_state(cls, state):
        ok = (
            _is_str_dict(state)
            and (state.get("value") is None or _is_number(state.get("value")))
            and _is_count(state.get("bad_epochs"))
            and isinstance(state.get("stopped"), bool)
        )
        _require(ok, cls.state_key, "dict(value, bad_epochs, stopped)", state)

    def load_state_dict(self, state):
        self.check_state(state)
        self.state = dict(state)


# ---- logging -------------------------------------------------------------------------------


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    """One row per epoch; rewritten whole each epoch, so a resumed run's file stays consistent."""
    fields: list[str] = []
    for row in history:
        fields += [k for k in row if k not in fields]

    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(history)

    atomic_write(path, write, binary=False, newline="")


class MetricsCSV(Callback):
    """``metrics.csv``: the history, one row per epoch (rewritten whole, atomically)."""

    order = LOGGING

    def on_fit_start(self, run):
        if run.resumed:  # a kill may have come between last.pt and metrics.csv
            self._write(run)

    def on_train_epoch_end(self, run, row):
        self._write(run)

    def _write(self, run: Run) -> None:
        history = run.progress.history
        run.guard_io(lambda: write_metrics_csv(rundir.paths(run.run_dir).metrics, history))


class TensorBoardLog(Callback):
    """``tb/``: the loss every ``log.interval`` steps, every epoch's metrics, the test's."""

    order = LOGGING

    def __init__(self, run_dir: Path, interval: int, purge_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(rundir.paths(run_dir).tensorboard, purge_step=purge_step)
        self.interval = interval

    def on_train_batch_end(self, run, info):
        if info["global_step"] % self.interval == 0:
            self.writer.add_scalar("train/loss_step", info["loss"].item(), info["global_step"])

    def on_train_epoch_end(self, run, row):
        for key, value in row.items():
            if key != "epoch":
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def on_test_end(self, run, summary):
        for key, value in summary.items():
            if key.startswith(("test", "val")) and "/" in key and isinstance(value, float):
                self.writer.add_scalar(key, value, run.progress.epoch)
        self.writer.flush()

    def teardown(self, run):
        self.writer.close()


PROGRESS_EVERY_S = 30.0  # without a terminal, a progress line at most this often


class ConsoleLog(Callback):
    """One line per epoch on the console (and in ``train.log``); the progress bar shows the
    loss and learning rate every ``log.interval`` steps. Without a terminal (a log file, a
    cluster job, CI) there is no bar: a line with the step, the rate and the epoch's ETA
    comes every PROGRESS_EVERY_S seconds instead (not with ``quiet``). An epoch that is the
    new best (``run.progress.improved``, set by :class:`BestCheckpoint`) is marked ``*best``."""

    order = LOGGING
    needs = ("improved",)

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.epoch_start: tuple[int, int, float] | None = None  # epoch, first step, time
        self.last_line = 0.0

    def on_train_batch_end(self, run, info):
        if info["step"] % self.interval == 0 and run.show_bars:
            lr = f"{run.schedule.lr:.3g}"
            run.progress.bar.set_postfix(loss=f"{info['loss'].item():.4f}", lr=lr)
        if run.main and not run.quiet and not run.show_bars:
            self._progress_line(run, info["epoch"], info["step"], info["loss"])

    def _progress_line(self, run: Run, epoch: int, step: int, loss) -> None:
        now = time.monotonic()
        if self.epoch_start is None or self.epoch_start[0] != epoch:
            self.epoch_start, self.last_line = (epoch, step, now), now
            return
        _, first, start = self.epoch_start
        if now - self.last_line < PROGRESS_EVERY_S or now <= start:
            return
        self.last_line = now
        total = len(run.data.train)
        rate = (step - first) / (now - start)
        eta = (total - step) / rate if rate > 0 else math.inf
        print(
            f"epoch {epoch}/{run.max_epochs}  step {step}/{total}  {rate:.2f} steps/s  "
            f"loss {loss.item():.4f}  ETA {_duration(eta)} to the epoch's end",
            flush=True,
        )

    def on_train_epoch_end(self, run, row):
        parts = [f"epoch {row['epoch']}/{run.max_epochs}", f"lr {row['lr']:.3g}"]
        for key, value in row.items():
            if "/" in key:
                parts.append(f"{key} {value:.4f}" if key.endswith("loss") else f"{key} {value:.2f}")
        best = "  *best" if run.progress.improved else ""
        run.say("  ".join(parts) + f"  {row['time']:.1f}s" + best)


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if not math.isfinite(seconds):
        return "unknown"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


# the built-in callbacks that keep state: a checkpoint's state of each is checked on load
STATEFUL: tuple[type[Callback], ...] = (
    NonFiniteGuard,
    LookaheadAveraging,
    ModelEMA,
    BestCheckpoint,
    EarlyStopping,
)
