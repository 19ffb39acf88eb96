"""Muon (Jordan et al. 2024, "Muon: MomentUm Orthogonalized by Newton-schulz") for the weight
matrices of a network, with SGD or AdamW for the rest, as one optimizer.

Muon keeps a momentum buffer per weight and steps along its orthogonalisation: the buffer,
reshaped to a matrix (a conv filter ``out x in x kh x kw`` becomes ``out x (in*kh*kw)``), is
replaced by the nearest semi-orthogonal matrix ``U V^T`` of its SVD, approximated by a few
Newton-Schulz iterations. Biases, norm scales, embeddings and the classifier head do not suit
that update (they are not matrices, or their rows are not alike); they take the auxiliary
optimizer's update, with its own learning rate and weight decay. airbench94_muon trains
CIFAR-10 this way: Muon on the conv filters (lr 0.24, momentum 0.6, Nesterov) and Nesterov
SGD on biases and the head.

:class:`MuonWithAux` is one :class:`torch.optim.Optimizer` whose param groups carry a
``kind`` ('muon', 'sgd' or 'adamw') and an ``lr``, so schedules, ``state_dict`` and
``load_state_dict`` (bit-exact resume) work as with torch's own optimizers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

# The quintic Newton-Schulz coefficients of Jordan's Muon: they push every singular value of
# the normalised matrix into about [0.7, 1.2] in five steps (not exactly 1; that is the point:
# fast, and close enough for an update direction).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
ADJUST_LR = ("original", "match_rms_adamw")
AUX_TYPES = ("SGD", "AdamW")


@torch.no_grad()
def orthogonalize(matrix: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    """About ``U V^T`` of ``matrix = U S V^T`` (2-D), by ``steps`` quintic Newton-Schulz
    iterations in float32; the result has the shape of ``matrix``."""
    if matrix.ndim != 2:
        raise ValueError(f"orthogonalize takes a 2-D matrix, got shape {tuple(matrix.shape)}")
    a, b, c = NS_COEFFICIENTS
    x = matrix.float()
    tall = x.shape[0] > x.shape[1]
    if tall:  # iterate on the smaller Gram matrix
        x = x.T
    x = x / (x.norm() + eps)  # the spectral norm is at most the Frobenius norm: now <= 1
    for _ in range(steps):
        gram = x @ x.T
        poly = b * gram + c * gram @ gram
        x = a * x + poly @ x
    if tall:
        x = x.T
    return x.to(matrix.dtype)


def lr_factor(shape: torch.Size, adjust_lr: str | None) -> float:
    """The factor on Muon's learning rate for a weight of ``shape`` (rows = ``shape[0]``,
    columns = the rest): 'original' (Jordan's) ``sqrt(max(1, rows / columns))``, so that a
    tall matrix's update has the RMS of a square one's; 'match_rms_adamw' (Liu et al. 2025)
    ``0.2 * sqrt(max(rows, columns))``, an update of about AdamW's RMS, so AdamW's lr and
    weight decay carry over; None: 1."""
    rows = shape[0]
    cols = math.prod(shape[1:])
    if adjust_lr == "original":
        return math.sqrt(max(1.0, rows / cols))
    if adjust_lr == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0


def classifier_parameters(model: nn.Module) -> set[int]:
    """The ids of the head's parameters: the module that ``model.get_classifier()`` returns
    (every cnnzoo model has it); for another model, its last ``nn.Linear``."""
    getter = getattr(model, "get_classifier", None)
    if callable(getter):
        head = getter()
    else:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        head = linears[-1] if linears else None
    if not isinstance(head, nn.Module):
        return set()
    return {id(p) for p in head.parameters()}


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(muon, aux)``: the trainable weights with ``ndim >= 2`` that are neither the head's
    nor an embedding's go to Muon; the rest (biases, norm scales, the head, embeddings) to
    the auxiliary optimizer."""
    head = classifier_parameters(model)
    embedded = {
        id(p)
        for m in model.modules()
        if isinstance(m, nn.Embedding | nn.EmbeddingBag)
        for p in m.parameters()
    }
    muon: list[nn.Parameter] = []
    aux: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        to_muon = p.ndim >= 2 and id(p) not in head and id(p) not in embedded
        (muon if to_muon else aux).append(p)
    return muon, aux


def _positive(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


class MuonWithAux(torch.optim.Optimizer):
    """Muon on ``muon`` parameters, SGD or AdamW (``aux['type']``) on ``aux`` parameters.

    Muon: ``buf = lerp(buf, grad, 1 - momentum)``; the direction is ``lerp(grad, buf,
    momentum)`` with ``nesterov`` (else ``buf``), orthogonalised on its 2-D reshape by
    ``ns_steps`` Newton-Schulz steps; ``p *= 1 - lr * weight_decay`` (decoupled) and
    ``p -= lr * lr_factor(shape, adjust_lr) * direction``.

    ``aux``: ``dict(type='SGD', lr, momentum, dampening, nesterov, weight_decay)`` (torch's
    SGD update, L2 weight decay) or ``dict(type='AdamW', lr, betas, eps, weight_decay)``
    (torch's AdamW update); its ``lr`` defaults to Muon's.
    """

    def __init__(
        self,
        muon: Iterable[nn.Parameter],
        aux: Iterable[nn.Parameter],
        *,
        lr: float,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        ns_steps: int = 5,
        adjust_lr: str | None = "original",
        aux_cfg: Mapping[str, Any] | None = None,
    ) -> None:
        lr = _positive("lr", lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if adjust_lr is not None and adjust_lr not in ADJUST_LR:
            raise ValueError(f"adjust_lr must be None or one of {ADJUST_LR}, got {adjust_lr!r}")
        muon_group = dict(
            params=list(muon),
            kind="muon",
            lr=lr,
            momentum=float(momentum),
            nesterov=bool(nesterov),
            weight_decay=float(weight_decay),
            ns_steps=int(ns_steps),
            adjust_lr=adjust_lr,
        )
        aux_group = self._aux_group(list(aux), dict(aux_cfg or {"type": "SGD"}), lr)
        super().__init__([muon_group, aux_group], dict(lr=lr))

    @staticmethod
    def _aux_group(params: list, cfg: dict, muon_lr: float) -> dict:
        kind = cfg.pop("type", "SGD")
        if kind not in AUX_TYPES:
            raise ValueError(f"aux type must be one of {AUX_TYPES}, got {kind!r}")
        lr = cfg.pop("lr", None)
        lr = muon_lr if lr is None else _positive("aux lr", lr)
        if kind == "SGD":
            defaults = dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.0)
        else:
            defaults = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        extra = sorted(set(cfg) - set(defaults))
        if extra:
            raise TypeError(f"aux {kind} takes no key {extra[0]!r}")
        group = {**defaults, **cfg}
        if kind == "AdamW":
            group["betas"] = tuple(float(b) for b in group["betas"])
        return dict(params=params, kind=kind.lower(), lr=lr, **group)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            update = getattr(self, f"_{group['kind']}")
            for p in group["params"]:
                if p.grad is not None:
                    update(p, p.grad, group, self.state[p])
        return loss

    @staticmethod
    def _muon(p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        momentum = group["momentum"]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        buf = state["momentum_buffer"]
        buf.lerp_(grad, 1 - momentum)
        direction = grad.lerp(buf, momentum) if group["nesterov"] else buf
        ortho = orthogonalize(direction.reshape(p.shape[0], -1), group["ns_steps"])
        lr = group["lr"]
        if group["weight_decay"]:
            p.mul_(1 - lr * group["weight_decay"])
        p.add_(ortho.view(p.shape), alpha=-lr * lr_factor(p.shape, group["adjust_lr"]))

    @staticmethod
    def _sgd(p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        d = grad
        if group["weight_decay"]:
            d = d.add(p, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = d.clone()
            else:
                state["momentum_buffer"].mul_(momentum).add_(d, alpha=1 - group["dampening"])
            buf = state["momentum_buffer"]
            d = d.add(buf, alpha=momentum) if group["nesterov"] else buf
        p.add_(d, alpha=-group["lr"])

    @staticmethod
    def _adamw(p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        beta1, beta2 = group["betas"]
        if "step" not in state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        t = float(state["step"])
        lr = group["lr"]
        p.mul_(1 - lr * group["weight_decay"])
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1**t))
