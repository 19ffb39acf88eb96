"""Optimizers and learning-rate schedules, built from the config.

Every schedule but ReduceLROnPlateau steps once per batch, so that epoch-based settings
(StepLR's ``step_size``, MultiStepLR's ``milestones``, warm-up and cosine lengths, all in
epochs) change the rate exactly at epoch boundaries and warm-up/cosine move smoothly.
StepLR, MultiStepLR and CosineAnnealingLR are a pure function of the step count (a
``LambdaLR``), so a resumed run continues on the same curve.

Batch size semantics (mmpretrain's ``8xb16`` naming): ``data.train.batch_size`` is the batch
of ONE process; the global batch is ``batch_size x world_size``. The learning rate is the
config's as written unless ``auto_scale_lr = dict(enable=True, base_batch_size=B)`` asks for
the linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): every learning
rate of the config (``optimizer.lr``, Muon's ``optimizer.aux.lr``,
``param_scheduler.max_lr``/``min_lr``) is multiplied by ``global batch / B`` (B = None: the
config's own batch, so the factor is the process count).
"""

from __future__ import annotations

import bisect
import inspect
import math
import warnings
from collections.abc import Mapping

import torch
import torch.nn as nn
from torch.optim import lr_scheduler

from cnnzoo import rundir, schema
from cnnzoo.engine.muon import MuonWithAux, split_parameters
from cnnzoo.errors import ConfigError, unknown

# The builders of the ``optimizer`` and ``param_scheduler`` sections. Which keys each type
# takes, their defaults and ranges are cnnzoo.schema.OPTIMIZER / SCHEDULER; every key a
# validated section holds is passed on here, so a key cannot be accepted and ignored.
OPTIMIZERS = {
    "SGD": torch.optim.SGD,
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
    "Adadelta": torch.optim.Adadelta,
    "RMSprop": torch.optim.RMSprop,
    "Muon": MuonWithAux,  # built by build_muon: it splits the parameters itself
}
_FUSED = ("SGD", "Adam", "AdamW")
SCHEDULERS = (*schema.SCHEDULER.types, "None")


# The normalisation layers whose parameters ``norm_lr_mult`` and ``norm_decay_mult`` scale:
# BatchNorm (SyncBatchNorm too) and InstanceNorm derive from _NormBase.
NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    decay_norm_and_bias: bool = True,
    norm_lr_mult: float = 1.0,
    norm_decay_mult: float = 1.0,
) -> list[dict]:
    """The trained parameters in groups by how they are stepped: the weights (``ndim > 1``)
    at ``lr`` and ``weight_decay``; the other biases without weight decay when
    ``decay_norm_and_bias`` is False; the parameters of normalisation layers
    (:data:`NORM_LAYERS`) without it too, and at ``lr * norm_lr_mult`` with the weight decay
    times ``norm_decay_mult`` (mmengine's paramwise_cfg names). Parameters stepped alike share
    a group, in the model's order, the weights' group first (its rate is the one logged); a
    group at a scaled rate keeps its factor as ``lr_mult``, so that a schedule given one peak
    rate scales it too."""
    norms = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters()}
    other_decay = weight_decay if decay_norm_and_bias else 0.0

    def settings(p: nn.Parameter) -> tuple[float, float]:  # (lr factor, weight decay)
        if id(p) in norms:
            return norm_lr_mult, other_decay * norm_decay_mult
        return 1.0, (weight_decay if p.ndim > 1 else other_decay)

    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault(settings(p), []).append(p)
    weights = (1.0, weight_decay)
    ordered = sorted(groups.items(), key=lambda item: item[0] != weights)  # stable
    return [
        dict(
            params=params,
            lr=lr * mult,
            weight_decay=decay,
            **({"lr_mult": mult} if mult != 1 else {}),
        )
        for (mult, decay), params in ordered
    ]


def build_optimizer(model: nn.Module, cfg: Mapping) -> torch.optim.Optimizer:
    """``optimizer = dict(type='SGD', lr=..., weight_decay=..., decay_norm_and_bias=True,
    norm_lr_mult=1.0, norm_decay_mult=1.0, fused=None, ...)`` (keys:
    :data:`cnnzoo.schema.OPTIMIZER`; those left out take its defaults, then torch's);
    ``fused=None`` uses the fused kernels on CUDA where PyTorch has them (SGD, Adam, AdamW),
    ``fused=True`` asks for them anywhere. ``type='Muon'``: see :func:`build_muon`."""
    kind = cfg["type"]
    if kind not in OPTIMIZERS:
        raise unknown("optimizer", kind, OPTIMIZERS)
    if kind == "Muon":
        return build_muon(model, cfg)
    cfg = {**schema.OPTIMIZER.defaults(kind), **cfg}
    del cfg["type"]
    groups = param_groups(
        model,
        cfg["lr"],
        cfg.pop("weight_decay"),
        cfg.pop("decay_norm_and_bias"),
        cfg.pop("norm_lr_mult"),
        cfg.pop("norm_decay_mult"),
    )
    fused = cfg.pop("fused") if "fused" in cfg else False  # Adadelta and RMSprop have none
    on_cuda = all(p.is_cuda for p in model.parameters())
    if fused is None:
        fused = kind in _FUSED and on_cuda
    if fused and kind in _FUSED:
        cfg["fused"] = True
    elif on_cuda:
        cfg["foreach"] = True
    try:
        return OPTIMIZERS[kind](groups, **cfg)
    except TypeError as e:
        raise ConfigError(f"optimizer {kind}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"optimizer {kind}: {e}") from None


def build_muon(model: nn.Module, cfg: Mapping) -> MuonWithAux:
    """``optimizer = dict(type='Muon', lr, momentum, nesterov, weight_decay, ns_steps,
    adjust_lr, aux=dict(type='SGD' or 'AdamW', lr, ...))``: Muon on the model's weight
    matrices and conv filters, ``aux`` on biases, norms, embeddings and the classifier head
    (:func:`cnnzoo.engine.muon.split_parameters`)."""
    cfg = {**schema.OPTIMIZER.defaults("Muon"), **cfg}
    del cfg["type"]
    aux = dict(cfg.pop("aux"))
    aux_kind = aux.get("type")
    if aux_kind not in schema.MUON_AUX.types:
        raise unknown("optimizer.aux type", str(aux_kind), schema.MUON_AUX.types)
    aux = {**schema.MUON_AUX.defaults(aux_kind), **aux}
    muon, rest = split_parameters(model)
    try:
        return MuonWithAux(muon, rest, aux_cfg=aux, **cfg)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"optimizer Muon: {e}") from None


def clip_gradients(model: nn.Module, max_norm: float, norm_type: float = 2.0) -> torch.Tensor:
    """Scale the gradients so that their ``norm_type``-norm is at most ``max_norm``
    (``clip_grad`` of the config); returns the norm before clipping."""
    return nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=norm_type)


CLIP_GRAD_KEYS = tuple(inspect.signature(clip_gradients).parameters)[1:]  # the clip_grad section


class Schedule:
    """A learning-rate schedule that the loop drives with :meth:`step_batch` after every
    optimizer step and :meth:`step_epoch` after every epoch (ReduceLROnPlateau only)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        cfg: Mapping | None,
        *,
        steps_per_epoch: int,
        max_epochs: int,
    ) -> None:
        kind = str((cfg or {"type": "None"})["type"])
        if kind not in SCHEDULERS:
            raise unknown("param_scheduler", kind, SCHEDULERS)
        defaults = schema.SCHEDULER.defaults(kind) if kind != "None" else {}
        cfg = {**defaults, **(cfg or {})}
        cfg.pop("type", None)
        self.kind = kind
        self.optimizer = optimizer
        self.monitor = cfg.pop("monitor", None)  # ReduceLROnPlateau's
        spe = self.steps_per_epoch = max(1, steps_per_epoch)
        warmup = int(cfg.pop("warmup_epochs", 0) * spe)  # OneCycleLR and Plateau have none
        total = max_epochs * spe
        try:
            if kind == "OneCycleLR":
                max_lr = self._peaks(cfg.pop("max_lr"), optimizer.param_groups)
                if not {"momentum", "betas"} & set(optimizer.defaults):
                    # no one momentum to cycle (Muon's groups keep their own; Adadelta has
                    # none): the rates follow the cycle, the momentum stays as configured
                    cfg["cycle_momentum"] = False
                self.sched = lr_scheduler.OneCycleLR(
                    optimizer, max_lr=max_lr, total_steps=total, **cfg
                )
            elif kind == "ReduceLROnPlateau":
                self.sched = lr_scheduler.ReduceLROnPlateau(optimizer, **cfg)
            else:
                factors = [
                    self._factor(
                        kind, dict(cfg), g["lr"] / g.get("lr_mult", 1.0), spe, warmup, total
                    )
                    for g in optimizer.param_groups
                ]
                self.sched = lr_scheduler.LambdaLR(optimizer, factors)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"param_scheduler {kind}: {e}") from None

    @staticmethod
    def _peaks(max_lr, groups: list[dict]) -> list[float]:
        """OneCycle's peak per parameter group: each group's own LR (None), one per group
        (a list), or one rate times each group's ``lr_mult`` (a number)."""
        if max_lr is None:
            return [g["lr"] for g in groups]
        if isinstance(max_lr, list | tuple):
            return list(max_lr)
        return [max_lr * g.get("lr_mult", 1.0) for g in groups]

    @staticmethod
    def _factor(kind: str, cfg: dict, base_lr: float, spe: int, warmup: int, total: int):
        """The LR multiplier at step ``s``: a linear warm-up, then the schedule ``kind``."""
        gamma = cfg["gamma"] if kind in ("StepLR", "MultiStepLR") else 1.0
        every = cfg["step_size"] * spe if kind == "StepLR" else 1
        milestones = sorted(m * spe for m in cfg["milestones"]) if kind == "MultiStepLR" else []
        floor = cfg["min_lr"] / base_lr if kind == "CosineAnnealingLR" and base_lr else 0.0
        span = max(1, total - warmup)

        def factor(s: int) -> float:
            if s < warmup:
                return (s + 1) / (warmup + 1)
            if kind == "StepLR":
                return gamma ** (s // every)
            if kind == "MultiStepLR":
                return gamma ** bisect.bisect_right(milestones, s)
            if kind == "CosineAnnealingLR":
                return floor + (1 - floor) * 0.5 * (
                    1 + math.cos(math.pi * min(s - warmup, span) / span)
                )
            return 1.0

        return factor

    def step_batch(self) -> None:
        if self.kind != "ReduceLROnPlateau":
            self.sched.step()

    def step_epoch(self, metrics: Mapping[str, float]) -> None:
        if self.kind == "ReduceLROnPlateau" and self.monitor in metrics:
            self.sched.step(metrics[self.monitor])

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rate for the rest of the run (the schedule keeps its shape)."""
        for group in self.optimizer.param_groups:
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                if key in group:
                    group[key] *= factor
        if hasattr(self.sched, "base_lrs"):
            self.sched.base_lrs = [lr * factor for lr in self.sched.base_lrs]

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {
            "type": self.kind,
            "steps_per_epoch": self.steps_per_epoch,
            "state": self.sched.state_dict(),
        }

    def load_state_dict(self, state: Mapping) -> None:
        if state.get("type") != self.kind:
            raise ConfigError(
                f"the checkpoint was trained with param_scheduler {state.get('type')!r}, the config asks "
                f"for {self.kind!r}; resume with the run's own config ({rundir.CONFIG} in the run dir)"
            )
        saved = dict(state["state"])
        then = int(state.get("steps_per_epoch") or self.steps_per_epoch)
        moved = then != self.steps_per_epoch and self.kind != "ReduceLROnPlateau"
        if moved:  # another batch size or number of processes: the same point of the curve
            fresh = self.sched.state_dict()
            saved["last_epoch"] = round(saved["last_epoch"] * self.steps_per_epoch / then)
            for key in ("total_steps", "_schedule_phases"):  # OneCycleLR's length, in steps
                if key in fresh:
                    saved[key] = fresh[key]
        self.sched.load_state_dict(saved)
        if moved:
            with warnings.catch_warnings():  # get_lr outside step() warns; here it is meant
                warnings.simplefilter("ignore", UserWarning)
                lrs = self.sched.get_lr()
            for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr
            self.sched._last_lr = list(lrs)


# ---- batch size and learning-rate scaling (auto_scale_lr) ---------------------------------

LR_KEYS = {"optimizer": ("lr",), "param_scheduler": ("max_lr", "min_lr")}


def global_batch_size(cfg: Mapping, world_size: int) -> int:
    """``data.train.batch_size`` (per process) x ``world_size``."""
    return int(cfg["data"]["train"]["batch_size"]) * int(world_size)


def lr_scale(cfg: Mapping, world_size: int) -> float:
    """The factor of the linear scaling rule, ``global batch / auto_scale_lr.base_batch_size``,
    when ``auto_scale_lr.enable`` is True (``base_batch_size=None``: the config's own batch,
    i.e. the learning rate was tuned for one process); else 1."""
    auto = cfg["auto_scale_lr"]
    if not auto["enable"]:
        return 1.0
    base = auto["base_batch_size"]
    if base is None:  # the learning rate was tuned for one process
        return float(world_size)
    return global_batch_size(cfg, world_size) / base


def scaled_lr_sections(cfg: Mapping, factor: float) -> dict[str, dict | None]:
    """Copies of ``optimizer`` and ``param_scheduler`` with every learning rate in them
    (``lr``, ``max_lr``, ``min_lr``) multiplied by ``factor``; the config itself is left as
    written, so the saved config stays the one the user gave."""
    out: dict[str, dict | None] = {}
    for section, keys in LR_KEYS.items():
        part = cfg[section]
        if part is None:
            out[section] = None
            continue
        out[section] = _scaled(part, keys, factor)
    aux = (out["optimizer"] or {}).get("aux")
    if isinstance(aux, Mapping):  # Muon's auxiliary optimizer has its own rate
        out["optimizer"]["aux"] = _scaled(aux, ("lr",), factor)
    return out


def _scaled(part: Mapping, keys: tuple[str, ...], factor: float) -> dict:
    part = dict(part)
    for key in keys:
        value = part.get(key)
        if isinstance(value, list | tuple):
            part[key] = [v * factor for v in value]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            part[key] = value * factor
    return part
