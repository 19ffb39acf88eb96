"""The training loop: data on the device, forward, loss, backward, step, log, checkpoint.

:func:`train` reads top to bottom: set up (seed, device, data, model, loss, optimizer,
schedule), resume if asked, then per epoch train, validate, save ``last.pt`` (and
``best.pt`` when ``checkpoint.monitor`` improves), stop early if asked, and finally test the
best checkpoint on the test split (the test never selects) and write the reports.

Every checkpoint written is good: its weights are finite and so were its losses. A step whose
loss is not finite stops the run (``nan_policy='stop'``) or is skipped (``'skip'``), but a
finite loss can still blow the weights up, so each epoch is checked before it is saved: one
that ends with a non-finite weight or loss stops the run before ``last.pt`` or ``best.pt``
is touched, and the error names ``last.pt``, the last good epoch, to resume from.
Ctrl-C, SIGTERM and SIGHUP (a cluster's preemption notice) finish the step, save a
resumable checkpoint and raise :class:`~cnnzoo.errors.Interrupted`.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from cnnzoo import distributed
from cnnzoo.analysis.flops import count_flops
from cnnzoo.config import config_data, config_hash
from cnnzoo.data import DataBundle, build_data
from cnnzoo.engine import optim
from cnnzoo.engine.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cnnzoo.engine.lookahead import Lookahead
from cnnzoo.engine.losses import Loss, build_loss
from cnnzoo.engine.metrics import Meter
from cnnzoo.engine.optim import Schedule, build_optimizer, clip_gradients
from cnnzoo.engine.report import write_reports
from cnnzoo.engine.runs import new_run_dir, record_config, resume_dir, run_lock
from cnnzoo.errors import CheckpointError, ConfigError, DataError, Interrupted, TrainingError
from cnnzoo.fileio import atomic_write
from cnnzoo.models import create_model, load_weights

Hook = Callable[[str, dict], None]
MAX_NAN_SKIPS = 10


@contextlib.contextmanager
def _signals_stop_at_once():
    """Outside the epoch loop (set-up, the final test, the reports) nothing is half-done, so
    SIGTERM and SIGHUP stop at once as :class:`Interrupted` (one line and 128 + signum from
    the CLI, not a silent death); the loop defers them until its step is over."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Interrupted(signum)

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS if s != signal.SIGINT}
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before)


@_signals_stop_at_once()
def train(
    cfg: Config,
    *,
    resume: str | Path | None = None,
    quiet: bool = False,
    hooks: Sequence[Hook] = (),
    data: DataBundle | None = None,
) -> Path:
    """Train the model of ``cfg``; returns the run directory.

    ``resume``: ``'auto'`` (the latest run of this config under ``work_dir``) or a run
    directory; the run continues in that directory from its ``last.pt``. ``hooks`` are
    called as ``hook(event, info)`` with event ``'step'`` after every optimizer step (info:
    epoch, step, global_step, loss, model; the gradients are those the step used) and
    ``'epoch'`` after every epoch (info: the epoch's row of metrics). ``data``: the batches to train on (by default those that
    ``cfg.data`` describes, built by :func:`~cnnzoo.data.build_data`).

    Under torchrun every process trains on its shard of each epoch with DistributedDataParallel
    (see :mod:`cnnzoo.distributed`); only rank 0 logs, shows progress and writes files.

    The run directory is locked while it trains (:func:`~cnnzoo.engine.runs.run_lock`), and
    torch's global settings (threads, deterministic algorithms) are as they were on return.

    Raises :class:`TrainingError` when an epoch ends non-finite (nothing of it is saved) and
    when no step was applied at all (every loss skipped), :class:`Interrupted` on a signal.
    """
    with _torch_settings_kept(), contextlib.ExitStack() as held:
        return _train(cfg, resume=resume, quiet=quiet, hooks=hooks, held=held, data=data)


def _train(cfg: Config, *, resume, quiet: bool, hooks: Sequence[Hook], held, data) -> Path:
    ctx = distributed.setup(resolve_device(cfg.get("device", "auto")))
    device, rank, world_size, main = ctx.device, ctx.rank, ctx.world_size, ctx.is_main
    show_bars = main and not quiet and sys.stderr.isatty()
    say = (lambda msg: tqdm.write(msg)) if main else (lambda msg: None)

    _setup_torch(bool(cfg.get("deterministic", False)), device)
    seed_everything(int(cfg.get("seed", 0)))
    if data is None:
        data = build_data(
            cfg.data, device=device, seed=int(cfg.get("seed", 0)), rank=rank, world_size=world_size
        )
    if data.test is None and data.val is None:
        raise DataError(
            f"the {data.dataset} data has no test split and data.val_split=0: nothing to score; set data.val_split > 0"
        )
    loss_fn = build_loss(cfg.get("loss") or {})
    weights = {"pretrained": cfg.model.get("pretrained") or cfg.get("load_from")}  # mmengine's key
    model, model_name, model_kwargs = build_model(
        {**cfg.model, **weights}, data, regression=loss_fn.regression
    )
    model.to(device)
    channels_last = bool(cfg.get("channels_last", True))
    if channels_last:
        model.to(memory_format=torch.channels_last)
    global_batch = optim.global_batch_size(cfg, world_size)  # batch_size is per process
    lr_scale = optim.lr_scale(cfg, world_size)  # auto_scale_lr; 1 unless enabled
    lr_cfg = optim.scaled_lr_sections(cfg, lr_scale)
    optimizer = build_optimizer(model, lr_cfg["optimizer"])
    max_epochs = int(cfg.train_cfg.max_epochs)
    schedule = Schedule(
        optimizer,
        lr_cfg["param_scheduler"],
        steps_per_epoch=len(data.train),
        max_epochs=max_epochs,
    )
    amp_dtype = autocast_dtype(cfg.get("amp") or {}, device)
    scaler = torch.amp.GradScaler(
        device.type, enabled=amp_dtype == torch.float16 and device.type == "cuda"
    )
    clip = dict(cfg.get("clip_grad") or {})
    nan_policy = cfg.get("nan_policy", "stop")
    if nan_policy not in ("stop", "skip"):
        raise ConfigError(f"nan_policy must be 'stop' or 'skip', got {nan_policy!r}")
    val_every = (
        _val_interval(cfg.get("workflow", [("train", 1), ("val", 1)]))
        if data.val is not None
        else 0
    )
    monitor = dict(cfg.get("checkpoint") or {"monitor": "val/top1", "mode": "max"})
    early_cfg = dict(cfg.early_stopping) if cfg.get("early_stopping") else None
    log_every = max(1, int((cfg.get("log") or {}).get("interval", 50)))

    state: dict[str, Any] = dict(
        epoch=0,
        global_step=0,
        best=dict(
            monitor=monitor.get("monitor", "val/top1"),
            mode=monitor.get("mode", "max"),
            value=None,
            epoch=0,
        ),
        early_stopping=dict(value=None, bad_epochs=0, stopped=False),
        history=[],
        partial=None,  # Ctrl-C mid-epoch: the steps done in epoch+1 and its running metrics
    )
    run_dir = distributed.broadcast_object(resume_dir(cfg, resume) if resume and main else None)
    if main and run_dir is not None:
        held.enter_context(run_lock(run_dir))
    ckpt = None
    if run_dir is not None and (run_dir / "checkpoints" / "last.pt").is_file():
        ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
        _restore(ckpt, model, optimizer, schedule, scaler, state,
                 optimizer_type=cfg.optimizer.type, say=say)  # fmt: skip
        if float(ckpt.get("lr_scale", 1.0)) != lr_scale:  # auto_scale_lr, another global batch
            schedule.scale_lr(lr_scale / float(ckpt.get("lr_scale", 1.0)))
        batch_then = int(ckpt.get("global_batch_size") or global_batch)
        if state["partial"] and batch_then != global_batch:
            # global batches are consecutive slices of the epoch's order: skip the steps that
            # cover the samples already trained on (at most part of one batch is seen twice)
            done = state["partial"]["step"] * batch_then // global_batch
            state["partial"] = dict(state["partial"], step=done)
        at = (
            f", step {state['partial']['step']} of epoch {state['epoch'] + 1}"
            if state["partial"]
            else ""
        )
        say(f"resuming {run_dir} after epoch {state['epoch']}{at}")
        if ckpt["config_hash"] != config_hash(cfg):
            say("note: the config differs from the one this run trained with; continuing with the "
                "given config, kept beside the earlier one(s) as config.resume-N.yaml")  # fmt: skip
    else:
        if run_dir is not None:
            say(f"resuming {run_dir}: it stopped before its first checkpoint, so it starts over")
        elif resume:
            say("note: no run of this config to resume; starting a new one")
        if run_dir is None:
            run_dir = distributed.broadcast_object(new_run_dir(cfg) if main else None)
            if main:
                held.enter_context(run_lock(run_dir))
        if main and hasattr(model, "pretrained_report"):  # what the weights to start from did
            say(str(model.pretrained_report))
            _guard_io(run_dir, lambda: model.pretrained_report.save(run_dir / "pretrained.json"))
        if hasattr(model, "init_from_data"):
            data.train.set_epoch(0)
            model.init_from_data(next(iter(data.train))[0])
    # DDP starts every process from rank 0's weights; sync_bn swaps BatchNorm modules in place
    ddp = distributed.wrap_model(model, ctx, sync_bn=cfg.get("sync_bn", False))
    model = distributed.unwrap(ddp)
    forward = torch.compile(ddp) if cfg.get("compile", False) else ddp
    lookahead = Lookahead(model, **cfg.lookahead) if cfg.get("lookahead") else None
    if world_size > 1 or lr_scale != 1.0:
        say(f"{world_size} process(es) x batch {cfg.data.train.batch_size} = global batch "
            f"{global_batch}; learning rates x {lr_scale:g}")  # fmt: skip
    ckpt_dir = run_dir / "checkpoints"
    if main:  # only rank 0 writes: another rank's sweep could take rank 0's file mid-write
        for stale in [*ckpt_dir.glob(".*.tmp-*"), *run_dir.glob(".*.tmp")]:
            stale.unlink(missing_ok=True)  # temporary files of a process killed mid-write
        _guard_io(run_dir, lambda: record_config(cfg, run_dir))
        if ckpt is not None:  # a kill may have come between last.pt and metrics.csv
            _guard_io(run_dir, lambda: write_metrics_csv(run_dir / "metrics.csv", state["history"]))
    if val_every == 0 and main:
        say(
            "note: no validation (data.val_split=0 or no 'val' in workflow): the test uses the last epoch"
        )
    writer = (
        SummaryWriter(run_dir / "tb", purge_step=state["global_step"])
        if main and (cfg.get("log") or {}).get("tensorboard", True)
        else None
    )
    data_meta = dict(
        dataset=str(data.dataset), class_names=[str(c) for c in data.class_names], num_classes=int(data.num_classes),
        in_chans=int(data.in_chans), image_size=[int(s) for s in data.image_size],
        mean=[float(m) for m in data.mean], std=[float(s) for s in data.std],
    )  # fmt: skip

    def checkpoint() -> dict:
        return dict(
            format_version=FORMAT_VERSION, model_name=model_name, model_kwargs=model_kwargs, model=model.state_dict(),
            optimizer=optimizer.state_dict(), scheduler=schedule.state_dict(), scaler=scaler.state_dict(),
            epoch=state["epoch"], global_step=state["global_step"], rng=rng_state(), best=dict(state["best"]),
            early_stopping=dict(state["early_stopping"]), history=list(state["history"]),
            config=config_data(cfg), config_hash=config_hash(cfg), data_meta=data_meta, world_size=world_size,
            global_batch_size=global_batch, lr_scale=lr_scale,
            partial=state["partial"],
        )  # fmt: skip

    if ckpt is not None:
        set_rng_state(ckpt["rng"])
    nan_streak = 0
    with _deferred_signals() as interrupt:
        try:
            for epoch in range(state["epoch"] + 1, max_epochs + 1):
                if state["early_stopping"]["stopped"]:
                    break
                t0 = time.perf_counter()
                # ---- train one epoch
                model.train()
                data.train.set_epoch(epoch)
                meter = Meter(data.num_classes, regression=loss_fn.regression, device=device)
                partial, state["partial"] = state["partial"], None
                if partial:  # resumed mid-epoch: its first steps are done, their metrics kept
                    if main:  # once: the meters of all ranks are summed
                        meter.sums.copy_(partial["meter_sums"])
                        meter.confusion.copy_(partial["meter_confusion"])
                    nan_streak = int(partial["nan_streak"])
                bar = tqdm(
                    data.train,
                    desc=f"epoch {epoch}/{max_epochs}",
                    leave=False,
                    disable=not show_bars,
                    dynamic_ncols=True,
                )
                for step, (images, targets) in enumerate(bar, 1):
                    if partial and step <= partial["step"]:  # drawn again, not trained on
                        continue
                    if channels_last:
                        images = images.contiguous(memory_format=torch.channels_last)
                    with torch.autocast(
                        device.type,
                        dtype=amp_dtype or torch.bfloat16,
                        enabled=amp_dtype is not None,
                    ):
                        output = forward(images)
                        loss = loss_fn(output, targets)
                    # a non-finite loss on any rank: every rank skips (or stops) together
                    if distributed.any_rank(not torch.isfinite(loss).item(), device):
                        nan_streak += 1
                        where = f"epoch {epoch}, step {step}/{len(data.train)}"
                        if nan_policy == "stop" or nan_streak >= MAX_NAN_SKIPS:
                            raise TrainingError(
                                _nan_message(loss, where, nan_streak, ckpt_dir, state["epoch"])
                            )
                        schedule.scale_lr(0.5)
                        say(
                            f"warning: loss is {loss.item()} at {where}; step skipped, learning rate halved to {schedule.lr:.3g}"
                        )
                        continue
                    nan_streak = 0
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if clip:
                        scaler.unscale_(optimizer)
                        clip_gradients(model, **clip)
                    scaler.step(optimizer)
                    scaler.update()
                    schedule.step_batch()
                    if lookahead:
                        lookahead.step()
                    state["global_step"] += 1
                    meter.update(output[0] if isinstance(output, tuple) else output, targets, loss)
                    if step % log_every == 0:
                        bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{schedule.lr:.3g}")
                        if writer:
                            writer.add_scalar("train/loss_step", loss.item(), state["global_step"])
                    for hook in hooks:
                        hook(
                            "step",
                            dict(
                                epoch=epoch,
                                step=step,
                                global_step=state["global_step"],
                                loss=loss,
                                model=model,
                            ),
                        )
                    if distributed.any_rank(bool(interrupt["signum"]), device):  # all stop here
                        resumable = main and world_size == 1 and lookahead is None
                        if resumable and not _non_finite_weights(model):
                            state["partial"] = dict(
                                step=step, meter_sums=meter.sums, meter_confusion=meter.confusion,
                                nan_streak=nan_streak,
                            )  # fmt: skip
                            save_checkpoint(checkpoint(), ckpt_dir / "last.pt")
                        raise Interrupted(interrupt["signum"] or signal.SIGINT)
                meter.all_reduce()
                if lookahead:  # validate and save the slow weights
                    lookahead.sync()
                row = {"epoch": epoch, "lr": schedule.lr, **meter.compute("train/")}
                trained = meter.sums[0].item() > 0  # some step of this epoch was applied
                if not trained:  # nan_policy='skip' skipped them all: no training metrics
                    row.update((k, math.nan) for k in list(row) if k.startswith("train/"))
                    say(f"warning: epoch {epoch}: every step had a non-finite loss and was skipped; the weights did not change")  # fmt: skip
                # ---- validate
                if val_every and (epoch % val_every == 0 or epoch == max_epochs):
                    row.update(evaluate(model, data.val, loss_fn, num_classes=data.num_classes, amp_dtype=amp_dtype,
                                        channels_last=channels_last, desc="val", show=show_bars).compute("val/"))  # fmt: skip
                    _check_monitor(row, state["best"]["monitor"], "checkpoint.monitor")
                bad = _non_finite_weights(model) + _non_finite_losses(row, trained)
                if distributed.any_rank(bool(bad), device):  # nothing of this epoch is saved
                    raise TrainingError(_bad_epoch_message(epoch, bad, ckpt_dir, state["epoch"]))
                schedule.step_epoch(row)
                row["time"] = time.perf_counter() - t0
                state["epoch"] = epoch
                state["history"].append(row)
                improved = trained and _track(state["best"], row, epoch, min_delta=0.0)
                if early_cfg:
                    _early_stop(state["early_stopping"], early_cfg, row, epoch)
                # ---- log and save
                if main:
                    if improved:  # best first: a crash between the two redoes this epoch
                        save_checkpoint(checkpoint(), ckpt_dir / "best.pt")
                    save_checkpoint(checkpoint(), ckpt_dir / "last.pt")
                    _guard_io(
                        run_dir,
                        lambda: write_metrics_csv(run_dir / "metrics.csv", state["history"]),
                    )
                    if writer:
                        for key, value in row.items():
                            if key != "epoch":
                                writer.add_scalar(key, value, epoch)
                        writer.flush()
                    say(_epoch_line(row, max_epochs, improved))
                for hook in hooks:
                    hook("epoch", dict(row))
                if state["early_stopping"]["stopped"]:
                    say(
                        f"early stopping: {early_cfg['monitor']} has not improved for {early_cfg.get('patience', 5)} validations"
                    )
                if distributed.any_rank(bool(interrupt["signum"]), device):
                    raise Interrupted(interrupt["signum"] or signal.SIGINT)
        except KeyboardInterrupt as e:
            if main:
                done = state["epoch"]
                kept = (
                    f"saved a checkpoint after step {state['partial']['step']} of epoch {done + 1}"
                    if state["partial"]
                    else f"the checkpoint of epoch {done} is kept"
                    if done
                    else "no epoch was completed, nothing was saved"
                )
                stop = e if isinstance(e, Interrupted) else Interrupted()
                print(f"\n{stop}: {kept}; resume with: cnnzoo train --resume {run_dir}",
                      file=sys.stderr)  # fmt: skip
            raise
        finally:
            if writer:
                writer.close()
    if state["global_step"] == 0 and state["epoch"] > 0:
        raise TrainingError(
            f"no step was applied in {state['epoch']} epoch(s): every loss was non-finite and skipped (nan_policy='skip'), "
            "so the model is untrained. Check the data for NaN or Inf values, or lower optimizer.lr"
        )

    # ---- test the best checkpoint
    try:
        best_path = (
            ckpt_dir / "best.pt"
            if (ckpt_dir / "best.pt").is_file() and val_every
            else ckpt_dir / "last.pt"
        )
        if main and best_path.is_file():
            load_weights(
                model, load_checkpoint(best_path)["model"], source=f"checkpoint {best_path}"
            )
        distributed.broadcast_module(model)  # every rank scores rank 0's weights on its shard
        split = "test" if data.test is not None else "val"
        if split == "val":
            say("note: the data has no test split; the final scores are on the validation split")
        tta = dict(cfg.data.get("test") or {})
        test = evaluate(model, getattr(data, split), loss_fn, num_classes=data.num_classes, amp_dtype=amp_dtype,
                        channels_last=channels_last, tta_flip=bool(tta.get("tta_flip", False)),
                        tta_translate=int(tta.get("tta_translate", 0)), desc=split, show=show_bars)  # fmt: skip
        if main:
            metrics = test.compute(f"{split}/")
            summary = dict(
                model=model_name, dataset=data_meta["dataset"], params=sum(p.numel() for p in model.parameters()),
                macs=count_flops(model, (data_meta["in_chans"], *data_meta["image_size"]))["macs"],
                epochs=state["epoch"], best_epoch=state["best"]["epoch"], monitor=state["best"]["monitor"],
                best_value=state["best"]["value"], checkpoint=str(best_path), device=str(device), processes=world_size,
                global_batch_size=global_batch,
                train_time_s=sum(r.get("time", 0.0) for r in state["history"]), run_dir=str(run_dir),
                **metrics, per_class_top1=dict(zip(data_meta["class_names"], test.per_class(), strict=True)),
            )  # fmt: skip
            _guard_io(run_dir, lambda: write_reports(run_dir, state["history"], confusion=test.confusion.cpu().tolist(),
                                                      class_names=data_meta["class_names"], summary=summary))  # fmt: skip
            say(f"{split}  " + "  ".join(f"{k.split('/')[1]} {v:.4g}" for k, v in metrics.items()))
            print(f"run dir: {run_dir}")
    except KeyboardInterrupt as e:
        if main:
            stop = e if isinstance(e, Interrupted) else Interrupted()
            print(f"\n{stop}: every epoch is saved but the final test did not finish; resume "
                  f"with: cnnzoo train --resume {run_dir}", file=sys.stderr)  # fmt: skip
        raise
    return run_dir


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
    desc: str = "eval",
    show: bool = False,
) -> Meter:
    """Score ``model`` (in eval mode) on ``batches``. Test-time augmentation averages the
    outputs of several views of each image: ``tta_flip`` adds its mirror, ``tta_translate=p``
    its shifts by p pixels up-left and down-right (reflection padding), and the mirrors of those
    with ``tta_flip`` (airbench's TTA). Returns the :class:`Meter` (``.compute()`` for the numbers)."""
    model.eval()
    device = next(model.parameters()).device
    meter = Meter(num_classes, regression=loss_fn.regression, device=device)
    for images, targets in tqdm(
        batches, desc=desc, leave=False, disable=not show, dynamic_ncols=True
    ):
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None
        ):
            views = tta_views(images, flip=tta_flip, translate=tta_translate)
            output = sum(model(v) for v in views) / len(views)
            loss = loss_fn(output, targets)
        meter.update(output, targets, loss)
    meter.all_reduce()
    return meter


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


def resolve_device(name: str) -> torch.device:
    """``'auto'`` -> CUDA when a GPU is visible, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return device


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


def _setup_torch(deterministic: bool, device: torch.device) -> None:
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    torch.set_num_threads(
        int(os.environ.get("OMP_NUM_THREADS") or cores)
    )  # all cores unless the user says
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic


def autocast_dtype(amp: Mapping, device: torch.device) -> torch.dtype | None:
    """None without AMP; bfloat16 on CPU; the configured dtype on CUDA."""
    if not amp.get("enabled", False):
        return None
    if device.type != "cuda":
        return torch.bfloat16
    dtype = str(amp.get("dtype", "bfloat16"))
    if dtype not in ("bfloat16", "float16"):
        raise ConfigError(f"amp.dtype must be 'bfloat16' or 'float16', got {dtype!r}")
    return getattr(torch, dtype)


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
    except (TypeError, ValueError, KeyError) as e:  # an architecture argument the model rejects
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in wanted)
        raise ConfigError(
            f"model {name!r} cannot be built with {args or 'these arguments'}: {e}"
        ) from None


def _val_interval(workflow: Sequence) -> int:
    """Train epochs between validations (0: never), from ``[('train', N), ('val', 1)]``."""
    phases = {str(p[0]): int(p[1]) for p in workflow}
    if "train" not in phases:
        raise ConfigError(f"workflow must contain ('train', N), got {list(workflow)!r}")
    return phases["train"] if "val" in phases else 0


# ---- run directories and checkpoints ------------------------------------------------------


def _restore(
    ckpt: dict, model: nn.Module, optimizer, schedule: Schedule, scaler, state: dict, *,
    optimizer_type: str, say: Callable[[str], None],
) -> None:  # fmt: skip
    load_weights(model, ckpt["model"], source="the checkpoint to resume")
    then = (ckpt["config"].get("optimizer") or {}).get("type")
    if then != optimizer_type:  # its moments (momentum, Adam's averages) mean nothing here
        say(f"note: the run was trained with {then}, this config uses {optimizer_type}: the "
            f"{optimizer_type} state (momentum, moment estimates) starts fresh")  # fmt: skip
    else:
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(
                f"the optimizer state does not fit this config's optimizer: {e}"
            ) from None
    schedule.load_state_dict(ckpt["scheduler"])
    if scaler.is_enabled() and ckpt["scaler"]:
        scaler.load_state_dict(ckpt["scaler"])
    state.update(
        epoch=int(ckpt["epoch"]), global_step=int(ckpt["global_step"]), best=dict(ckpt["best"]),
        history=[dict(r) for r in ckpt["history"]],
        early_stopping=dict(ckpt.get("early_stopping") or state["early_stopping"]),
        partial=ckpt.get("partial"),
    )  # fmt: skip


def _guard_io(run_dir: Path, write: Callable[[], Any]) -> None:
    try:
        write()
    except OSError as e:
        raise TrainingError(
            f"cannot write to run directory {run_dir}: {e.strerror or e}; free disk space or choose another --work-dir"
        ) from None


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


# ---- best checkpoint, early stopping, messages --------------------------------------------


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if best is None or not math.isfinite(best):
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _track(best: dict, row: Mapping, epoch: int, min_delta: float) -> bool:
    """Update ``best`` from ``row``; True when this epoch is the new best."""
    value = row.get(best["monitor"])
    if value is None or not _improved(value, best["value"], best["mode"], min_delta):
        return False
    best.update(value=float(value), epoch=epoch)
    return True


def _early_stop(es: dict, cfg: Mapping, row: Mapping, epoch: int) -> None:
    monitor = cfg.get("monitor", "val/loss")
    if monitor not in row:
        return
    if _improved(
        row[monitor], es["value"], cfg.get("mode", "min"), float(cfg.get("min_delta", 0.0))
    ):
        es.update(value=float(row[monitor]), bad_epochs=0)
    else:
        es["bad_epochs"] += 1
        es["stopped"] = es["bad_epochs"] >= int(cfg.get("patience", 5))


def _check_monitor(row: Mapping, monitor: str, key: str) -> None:
    if monitor not in row:
        raise ConfigError(
            f"{key}={monitor!r} is not a metric of this run; choose one of: {', '.join(k for k in row if '/' in k)}"
        )


def _non_finite_weights(model: nn.Module) -> list[str]:
    """The names of the model's weights and buffers that hold a NaN or an Inf."""
    return [
        name
        for name, t in model.state_dict().items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]


def _non_finite_losses(row: Mapping, trained: bool) -> list[str]:
    """The losses of an epoch's row that are not finite (``train/`` ones only if it trained)."""
    return [
        f"{k} {v}"
        for k, v in row.items()
        if k.endswith("loss") and (trained or not k.startswith("train/")) and not math.isfinite(v)
    ]


def _last_good(ckpt_dir: Path, done: int) -> str:
    if not done:
        return "no epoch was completed"
    return f"the last good checkpoint is {ckpt_dir / 'last.pt'} (epoch {done})"


def _nan_message(loss: torch.Tensor, where: str, streak: int, ckpt_dir: Path, done: int) -> str:
    what = f"loss is {loss.item()} at {where}"
    if streak >= MAX_NAN_SKIPS:
        what = f"{streak} steps in a row had a non-finite loss (last: {where})"
    return f"{what}; training stopped and {_last_good(ckpt_dir, done)}. Lower optimizer.lr, set clip_grad.max_norm, or use nan_policy='skip'"


def _bad_epoch_message(epoch: int, bad: list[str], ckpt_dir: Path, done: int) -> str:
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return (
        f"epoch {epoch} ended with non-finite values ({shown}), so it was not saved; training "
        f"stopped and {_last_good(ckpt_dir, done)}. Lower optimizer.lr or set clip_grad.max_norm, then resume"
    )


def _epoch_line(row: Mapping, max_epochs: int, improved: bool) -> str:
    parts = [f"epoch {row['epoch']}/{max_epochs}", f"lr {row['lr']:.3g}"]
    parts += [
        f"{k} {v:.4f}" if k.endswith("loss") else f"{k} {v:.2f}" for k, v in row.items() if "/" in k
    ]
    return "  ".join(parts) + f"  {row['time']:.1f}s" + ("  *best" if improved else "")


STOP_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)
)


@contextlib.contextmanager
def _deferred_signals():
    """Ctrl-C, SIGTERM and SIGHUP (what SLURM and Kubernetes send before preemption) set
    ``flag['signum']``, which the loop checks after each step (so the step finishes and the
    last checkpoint is whole); a second Ctrl-C stops at once. A repeated SIGTERM or SIGHUP
    changes nothing: schedulers and torchrun may deliver one preemption notice to a process
    twice (to the job's processes and through the launcher), and it must still save."""
    flag = {"signum": 0}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signum"]:
            if signum == signal.SIGINT:
                raise Interrupted(signum)
            return
        flag["signum"] = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{name}: stopping after this step (Ctrl-C to stop at once)", file=sys.stderr)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for s, before in previous.items():
            signal.signal(s, before)
