"""Training: set up a run, loop over epochs of steps, test the best checkpoint.

:func:`train` reads top to bottom: :func:`setup` builds a :class:`Run` (device, data, model,
loss, optimizer, schedule, run directory, callbacks) and restores it when resuming;
:func:`fit` is the loop (forward, loss, backward, step; validate; the callbacks save, log and
guard); :func:`final_test` scores the best checkpoint on the test split (the test never
selects) and writes the reports. Everything besides the loop is a callback
(:mod:`cnnzoo.engine.callbacks`) with its state in the checkpoint, so a run resumes exactly.

Every checkpoint written is good: its weights are finite and so were its losses (see
:class:`~cnnzoo.engine.callbacks.NonFiniteGuard`). Ctrl-C, SIGTERM and SIGHUP (a cluster's
preemption notice) finish the step, save a resumable checkpoint and raise
:class:`~cnnzoo.errors.Interrupted`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from tqdm import tqdm

from cnnzoo import distributed, machine, rundir, schema
from cnnzoo.config import config_data, config_diff, config_hash
from cnnzoo.data import DataBundle, build_data
from cnnzoo.data.datasets import dataset_root
from cnnzoo.engine import cpu_kernels, optim
from cnnzoo.engine.callbacks import (
    BestCheckpoint,
    Callback,
    ConsoleLog,
    EarlyStopping,
    Interruption,
    LookaheadAveraging,
    MetricsCSV,
    ModelEMA,
    NonFiniteGuard,
    SkipStep,
    TensorBoardLog,
    as_callback,
    in_order,
    non_finite_weights,
)
from cnnzoo.engine.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cnnzoo.engine.losses import Loss, build_loss
from cnnzoo.engine.metrics import Meter, scores_line
from cnnzoo.engine.optim import Schedule, build_optimizer, clip_gradients
from cnnzoo.engine.runs import config_stem, new_run_dir, record_config, resume_dir
from cnnzoo.errors import (
    CheckpointError,
    CnnzooError,
    ConfigError,
    DataError,
    Interrupted,
    TrainingError,
)
from cnnzoo.fileio import atomic_write
from cnnzoo.machine import resolve_device
from cnnzoo.models import create_model, load_weights
from cnnzoo.signals import STOP_SIGNALS, handling

MAX_DIFF_LINES = 20  # a resume with a changed config shows this many changed keys


@contextlib.contextmanager
def _signals_stop_at_once():
    """Outside the epoch loop (set-up, the final test, the reports) nothing is half-done, so
    SIGTERM and SIGHUP stop at once as :class:`Interrupted` (one line and 128 + signum from
    the CLI, not a silent death); the loop defers them until its step is over."""

    def stop(signum, frame):
        raise Interrupted(signum)

    with handling([s for s in STOP_SIGNALS if s != signal.SIGINT], stop):
        yield


@_signals_stop_at_once()
def train(
    cfg: Config,
    *,
    resume: str | Path | None = None,
    quiet: bool = False,
    callbacks: Sequence[Callback | Callable[[str, dict], None]] = (),
    data: DataBundle | None = None,
    overrides: Sequence[str] = (),
) -> Path:
    """Train the model of ``cfg``; returns the run directory.

    ``resume``: ``'auto'`` (the latest run of this config under ``work_dir``) or a run
    directory; the run continues in that directory from its ``last.pt``. ``callbacks``:
    :class:`~cnnzoo.engine.callbacks.Callback` objects, or functions ``fn(event, info)``
    called with ``'step'`` after every optimizer step and ``'epoch'`` after every epoch.
    ``data``: the batches to train on (by default those that ``cfg.data`` describes, built by
    :func:`~cnnzoo.data.build_data`). ``overrides``: the ``--cfg-options`` ``cfg`` was loaded
    with, kept in the run's ``origin.json`` (:func:`~cnnzoo.rundir.record_origin`) for the
    runs table.

    Under torchrun every process trains on its shard of each epoch with DistributedDataParallel
    (see :mod:`cnnzoo.distributed`); only rank 0 logs, shows progress and writes files. The run
    directory is locked while it trains (:func:`~cnnzoo.rundir.run_lock`), and torch's
    global settings (threads, deterministic algorithms) are as they were on return.

    Raises :class:`TrainingError` when an epoch ends non-finite (nothing of it is saved) and
    when no step was applied at all (every loss skipped), :class:`Interrupted` on a signal.
    """
    with _torch_settings_kept(), contextlib.ExitStack() as held:
        run = setup(
            cfg,
            resume=resume,
            quiet=quiet,
            data=data,
            held=held,
            callbacks=[as_callback(c) for c in callbacks],
            overrides=tuple(overrides),
        )
        run.record_end(None)  # a resumed run is no longer stopped nor failed
        try:
            with run.interruption.catching():
                fit(run)
        except KeyboardInterrupt as e:
            run.say_stopped(e, "")
            run.record_end("stopped")
            raise
        except Exception as e:  # a non-finite loss, a full disk, ...: `cnnzoo runs` says so
            run.record_end("failed", e)
            raise
        try:
            final_test(run)
        except KeyboardInterrupt as e:
            run.say_stopped(e, "every epoch is saved but the final test did not finish; ")
            run.record_end("stopped")
            raise
        except Exception as e:
            run.record_end("failed", e)
            raise
        return run.run_dir


def _first_line(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


@dataclass(eq=False)
class Progress:
    """How far the loop got: what changes while it runs, and what a checkpoint restores."""

    epoch: int = 0  # epochs done
    global_step: int = 0  # optimizer steps done
    history: list[dict] = field(default_factory=list)  # one row of metrics per epoch
    partial: dict | None = None  # resumed mid-epoch: the steps done in epoch+1, their metrics
    epoch_trained: bool = True  # some step of this epoch was applied
    step_lr: float | None = None  # the rate of this epoch's last optimizer step, as logged
    improved: bool = False  # this epoch is the new best (BestCheckpoint provides it)
    stop_after_epoch: bool = False  # set by a callback (early stopping)
    bar: Any = None  # the epoch's progress bar


@dataclass(eq=False)
class Run:
    """One training run: what :func:`setup` built (the fields) and the loop's progress
    (``progress``, a :class:`Progress`). Every callback hook gets it first."""

    cfg: Config
    ctx: distributed.DistContext
    data: DataBundle
    model: nn.Module  # the bare model: what is saved and evaluated
    forward: nn.Module  # what trains: the model, wrapped by DDP and/or torch.compile
    loss_fn: Loss
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    model_name: str
    model_kwargs: dict
    run_dir: Path
    quiet: bool
    global_batch: int
    lr_scale: float
    amp_dtype: torch.dtype | None = None
    channels_last: bool = True
    clip: dict = field(default_factory=dict)
    accumulate: int = 1
    max_epochs: int = 1
    val_every: int = 1
    resumed: bool = False
    overrides: tuple[str, ...] = ()  # the --cfg-options cfg was loaded with (origin.json)
    callbacks: list[Callback] = field(default_factory=list)
    interruption: Interruption = field(default_factory=lambda: Interruption(1))
    progress: Progress = field(default_factory=Progress)
    log_lines: list[str] = field(default_factory=list)  # console lines not yet in train.log

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def main(self) -> bool:
        return self.ctx.is_main

    @property
    def world_size(self) -> int:
        return self.ctx.world_size

    @property
    def ckpt_dir(self) -> Path:
        return rundir.paths(self.run_dir).checkpoints

    @property
    def show_bars(self) -> bool:
        return self.main and not self.quiet and sys.stderr.isatty()

    def say(self, msg: str) -> None:
        """A line for the console and ``train.log`` (rank 0 only)."""
        if self.main:
            tqdm.write(msg)
            self.log_lines.append(msg)

    def say_stopped(self, e: BaseException, what: str) -> None:
        if not self.main:
            return
        done = self.progress.epoch
        kept = (
            f"saved a checkpoint after step {self.progress.partial['step']} of epoch {done + 1}"
            if self.progress.partial
            else f"the checkpoint of epoch {done} is kept"
            if done
            else "no epoch was completed, nothing was saved"
        )
        stop = e if isinstance(e, Interrupted) else Interrupted()
        self.flush_log()
        print(
            f"\n{stop}: {what or kept + '; '}resume with: cnnzoo train --resume {self.run_dir}",
            file=sys.stderr,
        )

    def record_end(self, status: str | None, error: BaseException | None = None) -> None:
        """Write :data:`cnnzoo.rundir.STATUS` for a run that ended early (``'stopped'`` by a signal,
        ``'failed'`` by an error), or remove it (``None``: training starts). A finished run has
        its ``summary.json`` instead; ``cnnzoo runs`` reads both."""
        if not self.main:
            return
        path = self.run_dir / rundir.STATUS
        if status is None:
            path.unlink(missing_ok=True)
            return
        text = json.dumps(dict(status=status, epoch=self.progress.epoch, error=_first_line(error)))
        with contextlib.suppress(OSError):  # the run's own error (a full disk) is what matters
            atomic_write(path, lambda f: f.write(text), binary=False)

    def flush_log(self) -> None:
        """Append the new console lines to ``train.log`` (the whole file rewritten atomically)."""
        if not self.main or not self.log_lines:
            return
        path = rundir.paths(self.run_dir).log
        before = path.read_text() if path.is_file() else ""
        text = before + "".join(line + "\n" for line in self.log_lines)
        with contextlib.suppress(OSError):  # the log is a convenience: never stop a run for it
            atomic_write(path, lambda f: f.write(text), binary=False)
            self.log_lines.clear()

    def guard_io(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except OSError as e:
            raise TrainingError(
                f"cannot write to run directory {self.run_dir}: {e.strerror or e}; free disk "
                "space or choose another --work-dir"
            ) from None

    def autocast(self):
        return autocast(self.device, self.amp_dtype)

    def data_meta(self) -> dict:
        d = self.data
        meta = dict(
            dataset=str(d.dataset),
            class_names=[str(c) for c in d.class_names],
            num_classes=int(d.num_classes),
            in_chans=int(d.in_chans),
            image_size=[int(s) for s in d.image_size],
            mean=[float(m) for m in d.mean],
            std=[float(s) for s in d.std],
        )
        if getattr(d, "resize", None):  # streamed: predict resizes and crops alike
            meta["resize"] = d.resize
        return meta

    def checkpoint(self) -> dict:
        progress = self.progress
        ckpt = dict(
            format_version=FORMAT_VERSION,
            model_name=self.model_name,
            model_kwargs=self.model_kwargs,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.schedule.state_dict(),
            scaler=self.scaler.state_dict(),
            epoch=progress.epoch,
            global_step=progress.global_step,
            rng=rng_state(),
            history=list(progress.history),
            config=config_data(self.cfg),
            config_hash=config_hash(self.cfg),
            data_meta=self.data_meta(),
            world_size=self.world_size,
            global_batch_size=self.global_batch,
            lr_scale=self.lr_scale,
            partial=progress.partial,
        )
        # each callback's own state under its key (the callback checks it when loading)
        ckpt.update((c.state_key, c.state_dict()) for c in self.callbacks if c.state_key)
        return ckpt

    def save(self, name: str) -> None:
        save_checkpoint(self.checkpoint(), self.ckpt_dir / name)
        self.flush_log()

    def save_partial(self, step: int, meter: Meter) -> None:
        """A resumable mid-epoch ``last.pt``: the steps done and the running metrics of all
        ranks (every rank calls this at the same step)."""
        sums, confusion = meter.sums.clone(), meter.confusion.clone()
        distributed.all_reduce_sum(sums, confusion)
        if self.main and not non_finite_weights(self.model):
            self.progress.partial = dict(
                step=step, meter_sums=sums, meter_confusion=confusion, step_lr=self.progress.step_lr
            )
            self.save(rundir.LAST)

    def evaluate(self, model: nn.Module, split: str, **tta: Any) -> Meter:
        """Score ``model`` on ``split`` ('val' or 'test') as this run does (AMP, memory format)."""
        return evaluate(
            model,
            getattr(self.data, split),
            self.loss_fn,
            num_classes=self.data.num_classes,
            amp_dtype=self.amp_dtype,
            channels_last=self.channels_last,
            desc=split,
            show=self.show_bars,
            **tta,
        )

    def close(self) -> None:
        """Every callback's ``teardown`` (each one, even when another one fails; the first
        failure is raised once all have run)."""
        failure: BaseException | None = None
        for callback in self.callbacks:
            try:
                callback.teardown(self)
            except Exception as e:
                failure = failure or e
        if failure is not None:
            raise failure

    def emit(self, event: str, *args: Any) -> None:
        """Call hook ``event`` of every callback (in their order) with the run first."""
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)


# ---- set-up --------------------------------------------------------------------------------


def setup(
    cfg: Config,
    *,
    resume,
    quiet: bool,
    data: DataBundle | None,
    held: contextlib.ExitStack,
    callbacks: list[Callback],
    overrides: tuple[str, ...] = (),
) -> Run:
    """Build the run of ``cfg`` (resumed from its ``last.pt`` when asked) and its callbacks."""
    ctx = distributed.setup(resolve_device(cfg.device))
    threads = _setup_torch(cfg.deterministic, ctx.device)
    seed_everything(cfg.seed)
    if data is None:
        data = build_data(
            cfg.data, device=ctx.device, seed=cfg.seed, rank=ctx.rank, world_size=ctx.world_size
        )
        if cfg.data.root is None and cfg.data.type != "digits":
            # kept as resolved (from CNNZOO_DATA too): test and export find the data later
            cfg.data.root = str(dataset_root(cfg.data.type, None, cfg.data.folder))
    if data.test is None and data.val is None:
        raise DataError(
            f"the {data.dataset} data has no test split and data.val_split=0: nothing "
            "to score; set data.val_split > 0"
        )
    loss_fn = build_loss(cfg.loss)
    weights = {"pretrained": cfg.model.pretrained or cfg.load_from}  # load_from: mmengine's key
    model, model_name, model_kwargs = build_model(
        {**cfg.model, **weights}, data, regression=loss_fn.regression
    )
    model.to(ctx.device)
    channels_last, nchw_note = cpu_kernels.channels_last_allowed(  # said once the run can say
        model, ctx.device, cfg.channels_last
    )
    if channels_last:
        model.to(memory_format=torch.channels_last)
    global_batch = optim.global_batch_size(cfg, ctx.world_size)  # batch_size is per process
    lr_scale = optim.lr_scale(cfg, ctx.world_size)  # auto_scale_lr; 1 unless enabled
    lr_cfg = optim.scaled_lr_sections(cfg, lr_scale)
    optimizer = build_optimizer(model, lr_cfg["optimizer"])
    accumulate = cfg.train_cfg.accumulate
    schedule = Schedule(
        optimizer,
        lr_cfg["param_scheduler"],
        max_epochs=int(cfg.train_cfg.max_epochs),
        steps_per_epoch=math.ceil(len(data.train) / accumulate),
    )
    amp_dtype = autocast_dtype(cfg.amp, ctx.device)
    if ctx.is_main and (slow := cpu_kernels.bf16_warning(model, ctx.device, amp_dtype)):
        warnings.warn(slow, stacklevel=2)
    scaler = torch.amp.GradScaler(
        ctx.device.type, enabled=amp_dtype == torch.float16 and ctx.device.type == "cuda"
    )
    run_dir = distributed.broadcast_object(
        resume_dir(cfg, resume) if resume and ctx.is_main else None
    )
    ckpt, found = None, run_dir is not None
    if found and distributed.file_on_every_rank(rundir.paths(run_dir).last):
        ckpt = load_checkpoint(rundir.paths(run_dir).last)
    elif not found:
        run_dir = distributed.broadcast_object(new_run_dir(cfg) if ctx.is_main else None)
    if ctx.is_main:
        held.enter_context(rundir.run_lock(run_dir))
    val_every = _val_interval(cfg.workflow) if data.val else 0
    run = Run(
        cfg=cfg,
        ctx=ctx,
        data=data,
        model=model,
        forward=model,
        loss_fn=loss_fn,
        optimizer=optimizer,
        schedule=schedule,
        scaler=scaler,
        model_name=model_name,
        model_kwargs=model_kwargs,
        run_dir=run_dir,
        quiet=quiet,
        global_batch=global_batch,
        lr_scale=lr_scale,
        amp_dtype=amp_dtype,
        channels_last=channels_last,
        clip=dict(cfg.clip_grad or {}),
        accumulate=accumulate,
        max_epochs=int(cfg.train_cfg.max_epochs),
        val_every=val_every,
        resumed=ckpt is not None,
        overrides=overrides,
        interruption=Interruption(every=cfg.sync_every),
    )
    if nchw_note:
        run.say(nchw_note)
    if threads.threads < machine.available_cores() and threads.reason != "OMP_NUM_THREADS":
        run.say(
            f"note: torch computes with {threads.threads} thread(s): {threads.reason}; "
            "OMP_NUM_THREADS=N sets the number"
        )
    if ckpt is not None:
        _restore(run, ckpt, resume)
    else:
        if resume:
            run.say(
                f"resuming {run_dir}: it stopped before its first checkpoint, so it starts over"
                if found
                else "note: no run of this config to resume; starting a new one"
            )
        if ctx.is_main and hasattr(model, "pretrained_report"):  # what the starting weights did
            run.say(str(model.pretrained_report))
            run.guard_io(lambda: model.pretrained_report.save(run_dir / "pretrained.json"))
        if hasattr(model, "init_from_data"):
            data.train.set_epoch(0)
            model.init_from_data(next(iter(data.train))[0])
    # DDP starts every process from rank 0's weights; sync_bn swaps BatchNorm modules in place
    ddp = distributed.wrap_model(model, ctx, sync_bn=cfg.sync_bn)
    run.model = distributed.unwrap(ddp)
    run.forward = torch.compile(ddp) if cfg.compile else ddp
    # the one place the callbacks are put in order: by their `order` (see callbacks.py)
    run.callbacks = in_order(default_callbacks(run) + callbacks + [run.interruption])
    held.callback(run.close)  # every callback's teardown, however the run ends
    if ckpt is not None:
        for callback in run.callbacks:
            if callback.state_key and ckpt.get(callback.state_key) is not None:
                try:
                    callback.load_state_dict(ckpt[callback.state_key])
                except CheckpointError as e:
                    raise CheckpointError(
                        f"the checkpoint to resume in {run_dir} does not fit: {e}"
                    ) from None
    _prepare_run_dir(run)
    if ckpt is not None:
        set_rng_state(ckpt["rng"])
    return run


def default_callbacks(run: Run) -> list[Callback]:
    """The callbacks that every run has, and those its config asks for (:func:`setup` puts
    them in their order with the user's)."""
    cfg = run.cfg
    callbacks: list[Callback] = [NonFiniteGuard(cfg.nan_policy, cfg.sync_every)]
    if cfg.lookahead:
        lookahead = dict(cfg.lookahead)
        total_steps = run.schedule.steps_per_epoch * run.max_epochs
        ramp_steps = total_steps if lookahead.pop("ramp") else 0
        callbacks.append(LookaheadAveraging(run.model, **lookahead, ramp_steps=ramp_steps))
    if cfg.ema:
        callbacks.append(ModelEMA(run.model, **cfg.ema))
    callbacks.append(BestCheckpoint(**cfg.checkpoint))
    if cfg.early_stopping:
        callbacks.append(EarlyStopping(**cfg.early_stopping))
    interval = cfg.log.interval
    if run.main:
        callbacks.append(MetricsCSV())
        if cfg.log.tensorboard:
            callbacks.append(
                TensorBoardLog(run.run_dir, interval, purge_step=run.progress.global_step)
            )
    callbacks.append(ConsoleLog(interval))
    return callbacks


def _restore(run: Run, ckpt: dict, resume) -> None:
    load_weights(run.model, ckpt["model"], source="the checkpoint to resume")
    then = (ckpt["config"].get("optimizer") or {}).get("type")
    now = run.cfg.optimizer.type
    if then != now:  # its moments (momentum, Adam's averages) mean nothing here
        run.say(
            f"note: the run was trained with {then}, this config uses {now}: the {now} state "
            "(momentum, moment estimates) starts fresh"
        )
    else:
        try:
            run.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(
                f"the optimizer state does not fit this config's optimizer: {e}"
            ) from None
    run.schedule.load_state_dict(ckpt["scheduler"])
    if run.scaler.is_enabled() and ckpt["scaler"]:
        run.scaler.load_state_dict(ckpt["scaler"])
    run.progress.epoch, run.progress.global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
    run.progress.history = [dict(r) for r in ckpt["history"]]
    run.progress.partial = ckpt.get("partial")
    if float(ckpt.get("lr_scale", 1.0)) != run.lr_scale:  # auto_scale_lr, another global batch
        run.schedule.scale_lr(run.lr_scale / float(ckpt.get("lr_scale", 1.0)))
    batch_then = int(ckpt.get("global_batch_size") or run.global_batch)
    if run.progress.partial and batch_then != run.global_batch:
        # global batches are consecutive slices of the epoch's order: skip the steps that
        # cover the samples already trained on (at most part of one batch is seen twice)
        done = run.progress.partial["step"] * batch_then // run.global_batch
        run.progress.partial = dict(run.progress.partial, step=done)
    at = (
        f", step {run.progress.partial['step']} of epoch {run.progress.epoch + 1}"
        if run.progress.partial
        else ""
    )
    run.say(f"resuming {run.run_dir} after epoch {run.progress.epoch}{at}")
    if ckpt["config_hash"] != config_hash(run.cfg):
        then = schema.complete(copy.deepcopy(dict(ckpt["config"])))  # older runs: fewer defaults
        changes = config_diff(then, config_data(run.cfg))
        shown = [f"  {line}" for line in changes[:MAX_DIFF_LINES]]
        if len(changes) > MAX_DIFF_LINES:
            shown.append(f"  ... and {len(changes) - MAX_DIFF_LINES} more")
        run.say(
            "note: the config differs from the one this run trained with; continuing with the "
            "new one, kept in the run beside the earlier one(s):\n" + "\n".join(shown)
        )


def _prepare_run_dir(run: Run) -> None:
    if run.world_size > 1 or run.lr_scale != 1.0:
        run.say(
            f"{run.world_size} process(es) x batch {run.cfg.data.train.batch_size} = global "
            f"batch {run.global_batch}; learning rates x {run.lr_scale:g}"
        )
    if run.main:  # only rank 0 writes: another rank's sweep could take rank 0's file mid-write
        for stale in [*run.ckpt_dir.glob(".*.tmp-*"), *run.run_dir.glob(".*.tmp")]:
            stale.unlink(missing_ok=True)  # temporary files of a process killed mid-write
        run.guard_io(lambda: record_config(run.cfg, run.run_dir))
        name = config_stem(run.cfg)
        run.guard_io(
            lambda: rundir.record_origin(run.run_dir, name, run.overrides, resumed=run.resumed)
        )
    if run.val_every == 0:
        run.say(
            "note: no validation (data.val_split=0 or no 'val' in workflow): the test uses "
            "the last epoch"
        )


# ---- the loop ------------------------------------------------------------------------------


def fit(run: Run) -> None:
    """Epochs of steps: forward, loss, backward, step (every ``accumulate`` batches); then
    validate. Saving, logging, guarding and averaging happen in the callbacks."""
    run.emit("on_fit_start")
    for epoch in range(run.progress.epoch + 1, run.max_epochs + 1):
        if run.progress.stop_after_epoch:
            break
        t0 = time.perf_counter()
        meter, done = _start_epoch(run, epoch)
        run.progress.bar = tqdm(
            run.data.train,
            desc=f"epoch {epoch}/{run.max_epochs}",
            leave=False,
            disable=not run.show_bars,
            dynamic_ncols=True,
        )
        for step, (images, targets) in enumerate(run.progress.bar, 1):
            if step <= done:  # resumed mid-epoch: drawn again, not trained on
                continue
            if run.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            last = step % run.accumulate == 0 or step == len(run.data.train)
            if (step - 1) % run.accumulate == 0:
                run.optimizer.zero_grad(set_to_none=True)
            with run.autocast(), _no_sync(run.forward, not last):
                output = run.forward(images)
                loss = run.loss_fn(output, targets)
            info = dict(epoch=epoch, step=step, loss=loss, model=run.model, meter=meter)
            try:
                run.emit("on_before_backward", info)
            except SkipStep:
                continue
            with _no_sync(run.forward, not last):
                run.scaler.scale(loss / run.accumulate if run.accumulate > 1 else loss).backward()
            meter.update(output[0] if isinstance(output, tuple) else output, targets, loss)
            if last:
                _optimizer_step(run)
                run.emit("on_train_batch_end", dict(info, global_step=run.progress.global_step))
        meter.all_reduce()
        run.progress.epoch_trained = meter.sums[0].item() > 0
        run.emit("on_steps_end")
        lr = run.schedule.lr if run.progress.step_lr is None else run.progress.step_lr
        row = {"epoch": epoch, "lr": lr, **meter.compute("train/")}
        if run.val_every and (epoch % run.val_every == 0 or epoch == run.max_epochs):
            row.update(run.evaluate(run.model, "val").compute("val/"))
        run.emit("on_validation_end", row)
        run.schedule.step_epoch(row)
        row["time"] = time.perf_counter() - t0
        run.progress.epoch, run.progress.partial = epoch, None
        run.progress.history.append(row)
        run.emit("on_train_epoch_end", row)
    if run.progress.global_step == 0 and run.progress.epoch > 0:
        raise TrainingError(
            f"no step was applied in {run.progress.epoch} epoch(s): every loss was non-finite and skipped "
            "(nan_policy='skip'), so the model is untrained. Check the data for NaN or Inf "
            "values, or lower optimizer.lr"
        )


def _start_epoch(run: Run, epoch: int) -> tuple[Meter, int]:
    """Train mode, the epoch's batch order, a fresh meter (or a resumed epoch's: its first
    steps are done, their metrics and last rate kept); returns the meter and the steps done."""
    run.model.train()
    run.data.train.set_epoch(epoch)
    meter = Meter(run.data.num_classes, regression=run.loss_fn.regression, device=run.device)
    partial = run.progress.partial
    run.progress.step_lr = partial.get("step_lr") if partial else None
    if not partial:
        return meter, 0
    if run.main:  # once: the meters of all ranks are summed
        meter.sums.copy_(partial["meter_sums"])
        meter.confusion.copy_(partial["meter_confusion"])
    return meter, int(partial["step"])


def _optimizer_step(run: Run) -> None:
    if run.clip:
        run.scaler.unscale_(run.optimizer)
        clip_gradients(run.model, **run.clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.progress.step_lr = (
        run.schedule.lr
    )  # the rate this step trained with, before the schedule moves
    run.schedule.step_batch()
    run.progress.global_step += 1


def _no_sync(forward: nn.Module, accumulating: bool):
    """DDP averages gradients only on the last batch of an accumulation group."""
    sync_off = getattr(forward, "no_sync", None) or getattr(
        getattr(forward, "_orig_mod", None), "no_sync", None
    )
    return sync_off() if accumulating and sync_off else contextlib.nullcontext()


# ---- the final test ------------------------------------------------------------------------


def final_test(run: Run) -> None:
    """Score the best checkpoint (the last without validation) on the test split (else the
    validation split) and write ``summary.json``, the curves and the confusion matrix."""
    best = run.ckpt_dir / rundir.BEST
    best_path = best if best.is_file() and run.val_every else run.ckpt_dir / rundir.LAST
    if run.main and best_path.is_file():
        load_weights(
            run.model, load_checkpoint(best_path)["model"], source=f"checkpoint {best_path}"
        )
    distributed.broadcast_module(run.model)  # every rank scores rank 0's weights on its shard
    split = "test" if run.data.test is not None else "val"
    if split == "val":
        run.say("note: the data has no test split; the final scores are on the validation split")
    test = score(
        run.model,
        getattr(run.data, split),
        run.cfg,
        num_classes=run.data.num_classes,
        device=run.device,
        desc=split,
        show=run.show_bars,
    )
    from cnnzoo.analysis.flops import count_flops  # here: the engine's import loads no analysis

    metrics = test.compute(f"{split}/")
    meta = run.data_meta()
    best_state = next(c for c in run.callbacks if isinstance(c, BestCheckpoint)).best
    summary = dict(
        model=run.model_name,
        dataset=meta["dataset"],
        params=sum(p.numel() for p in run.model.parameters()),
        macs=count_flops(run.model, (meta["in_chans"], *meta["image_size"]))["macs"],
        epochs=run.progress.epoch,
        best_epoch=best_state["epoch"],
        monitor=best_state["monitor"],
        best_value=best_state["value"],
        checkpoint=str(best_path),
        device=str(run.device),
        processes=run.world_size,
        global_batch_size=run.global_batch,
        train_samples=run.data.train.num_samples * run.world_size,
        train_time_s=sum(r.get("time", 0.0) for r in run.progress.history),
        run_dir=str(run.run_dir),
        **metrics,
        per_class_top1=dict(zip(meta["class_names"], test.per_class(), strict=True)),
    )
    run.emit("on_test_end", summary)
    if run.main:
        # the reports (summary, charts) are analysis's: asked here, once training is done, so
        # importing the engine loads neither analysis nor the charts' plotting library
        from cnnzoo.analysis.report import write_reports

        run.guard_io(
            lambda: write_reports(
                run.run_dir,
                run.progress.history,
                confusion=test.confusion.cpu().tolist(),
                class_names=meta["class_names"],
                summary=summary,
                charts=run.cfg.log.charts,
            )
        )
        run.say(scores_line(split, metrics))
        run.flush_log()
        print(f"run dir: {run.run_dir}")


def autocast(device: torch.device, amp_dtype: torch.dtype | None):
    """Autocast to ``amp_dtype`` on ``device`` (off for None)."""
    return torch.autocast(
        device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None
    )


def score(
    model: nn.Module,
    batches: Iterable,
    cfg: Config,
    *,
    num_classes: int,
    device: torch.device | None = None,
    desc: str = "test",
    show: bool = False,
) -> Meter:
    """Score ``model`` on ``batches`` as a run of ``cfg`` tests: the final test of training
    and ``cnnzoo test`` both come here. The device, the memory format, the loss, AMP and
    test-time augmentation are decided from ``cfg`` here and nowhere else; the model is moved
    to the device and memory format the run trained in (``device``: this process's, under
    torchrun; by default ``cfg.device``)."""
    device = device or resolve_device(cfg.device)
    model.to(device)
    channels_last, _ = cpu_kernels.channels_last_allowed(model, device, cfg.channels_last)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    tta = cfg.data.test
    return evaluate(
        model,
        batches,
        build_loss(cfg.loss),
        num_classes=num_classes,
        amp_dtype=autocast_dtype(cfg.amp, device),
        channels_last=channels_last,
        tta_flip=tta.tta_flip,
        tta_translate=tta.tta_translate,
        tta_fraction=tta.tta_fraction,
        desc=desc,
        show=show,
    )


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Iterable,
    loss_fn: Loss,
    *,
    num_classes: int,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    tta_flip: bool = False,
    tta_translate: int = 0,
    tta_fraction: float = 1.0,
    desc: str = "eval",
    show: bool = False,
) -> Meter:
    """Score ``model`` (in eval mode) on ``batches``. Test-time augmentation averages the
    outputs of several views of each image: ``tta_flip`` adds its mirror, ``tta_translate=p``
    its shifts by p pixels up-left and down-right (reflection padding), and the mirrors of those
    with ``tta_flip`` (airbench's TTA); ``tta_fraction`` < 1 gives the views only to that share
    of each batch (:func:`tta_output`). Returns the :class:`Meter` (``.compute()`` for the
    numbers)."""
    model.eval()
    device = next(model.parameters()).device
    meter = Meter(num_classes, regression=loss_fn.regression, device=device)
    fraction = 1.0 if loss_fn.regression else tta_fraction  # no confidence to rank by
    for images, targets in tqdm(
        batches, desc=desc, leave=False, disable=not show, dynamic_ncols=True
    ):
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            output = tta_output(
                model, images, flip=tta_flip, translate=tta_translate, fraction=fraction
            )
            loss = loss_fn(output, targets)
        meter.update(output, targets, loss)
    meter.all_reduce()
    return meter


def tta_output(
    model: nn.Module, images: torch.Tensor, *, flip: bool, translate: int, fraction: float = 1.0
) -> torch.Tensor:
    """The model's output for a batch, averaged over each image's test-time views
    (:func:`tta_views`). With ``fraction`` < 1 only that share of the batch, the images whose
    plain view gives the lowest top probability, is averaged over the views; the others keep
    their plain output (the 2025 CIFAR-10 speedrun record's trick: the confident majority
    rarely changes its answer, and the views cost a forward pass each)."""
    if fraction >= 1.0 or not (flip or translate):
        views = tta_views(images, flip=flip, translate=translate)
        return sum(model(v) for v in views) / len(views)
    output = model(images)
    unsure = math.ceil(fraction * len(images))
    if unsure == 0:
        return output
    confidence = output.float().softmax(dim=1).amax(dim=1)
    picked = confidence.topk(unsure, largest=False).indices
    views = tta_views(images[picked], flip=flip, translate=translate)
    output = output.clone()
    output[picked] = (output[picked] + sum(model(v) for v in views[1:])) / len(views)
    return output


def tta_views(images: torch.Tensor, *, flip: bool, translate: int) -> list[torch.Tensor]:
    """The test-time views of a batch: itself, shifted by ``translate`` pixels both ways, and
    the mirrors of all of these when ``flip``."""
    views = [images]
    if translate:
        p, (h, w) = translate, images.shape[-2:]
        padded = F.pad(images, (p, p, p, p), mode="reflect")
        views += [padded[..., :h, :w], padded[..., 2 * p :, 2 * p :]]
    if flip:
        views += [v.flip(3) for v in views]
    return views


# ---- setup --------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed torch (all devices) and Python's ``random``; the loop uses no numpy randomness."""
    random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _torch_settings_kept():
    """Restore torch's process-wide settings that :func:`_setup_torch` changes."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def _setup_torch(deterministic: bool, device: torch.device) -> machine.ThreadPlan:
    """Threads, deterministic algorithms and cuDNN for a run; returns the thread choice
    (:func:`cnnzoo.machine.thread_plan`: ``OMP_NUM_THREADS``, else the cores other processes
    leave free: oversubscribed OpenMP threads are many times slower than fewer)."""
    plan = machine.thread_plan(
        machine.available_cores(),
        os.environ,
        machine.busy_elsewhere,
        deterministic=deterministic,
    )
    torch.set_num_threads(plan.threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic
    return plan


def autocast_dtype(amp: Mapping, device: torch.device) -> torch.dtype | None:
    """None without AMP; bfloat16 on CPU; the configured dtype on CUDA."""
    if not amp["enabled"]:
        return None
    if device.type != "cuda":
        return torch.bfloat16
    return getattr(torch, amp["dtype"])


def build_model(cfg_model: Mapping, data: Any, *, regression: bool) -> tuple[nn.Module, str, dict]:
    """The model of ``model = dict(type=..., ...)``; ``num_classes`` and ``in_chans`` default
    to the data's (1 output for a regression loss). Returns the model, its name and the
    keyword arguments that rebuild it."""
    kwargs = dict(cfg_model)
    name = kwargs.pop("type")
    pretrained = kwargs.pop("pretrained", None)
    strict = kwargs.pop("pretrained_strict", True)
    wanted = dict(
        num_classes=1 if regression else int(data.num_classes), in_chans=int(data.in_chans)
    )
    for key, want in wanted.items():
        if kwargs.get(key) is None:
            kwargs[key] = want
        elif kwargs[key] != want:
            why = (
                "a regression loss needs one output"
                if key == "num_classes" and regression
                else f"the {data.dataset} data has {want}"
            )
            raise ConfigError(
                f"model.{key}={kwargs[key]} but {why}; set model.{key}={want} or leave it out"
            )
    try:
        model = create_model(name, pretrained=pretrained, pretrained_strict=strict, **kwargs)
        return model, name, kwargs
    except CnnzooError:  # weights that cannot be had or do not fit: already one clear line
        raise
    except (TypeError, ValueError, KeyError) as e:  # an architecture argument the model rejects
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in wanted)
        raise ConfigError(
            f"model {name!r} cannot be built with {args or 'these arguments'}: {e}"
        ) from None


def _val_interval(workflow: Sequence) -> int:
    """Train epochs between validations (0: never), from ``[('train', N), ('val', 1)]``."""
    phases = {str(p[0]): int(p[1]) for p in workflow}
    return phases["train"] if "val" in phases else 0
