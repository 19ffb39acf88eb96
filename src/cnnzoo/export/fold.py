"""Fold inference-mode BatchNorm into the convolution that feeds it.

In eval mode ``bn(conv(x))`` is ``conv(x) * s + t`` per output channel, with
``s = gamma / sqrt(running_var + eps)`` and ``t = beta - running_mean * s``; one conv with
weight ``W * s`` and bias ``(b - running_mean) * s + beta`` computes the same thing, and the
BN disappears from the deployed graph.

A pair is folded only where the dataflow shows the BN reads the conv's output and nothing
else does: each module's ``forward`` is traced with ``torch.fx`` (conv and BN kept as leaf
calls). A module whose forward cannot be traced (Python control flow on tensor values or
shapes) is not guessed at: its children are traced one by one instead.
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.fx as fx
import torch.nn as nn

from cnnzoo.errors import ConfigError


class _ConvBnTracer(fx.Tracer):
    """fx tracer that keeps every Conv2d and BatchNorm2d (subclasses included) as one call."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) or super().is_leaf_module(
            m, module_qualified_name
        )


def _plain_conv(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and type(m).forward is nn.Conv2d.forward


def _plain_bn(m: nn.Module) -> bool:
    """A BatchNorm2d whose forward is the stock one and that has running statistics (a
    subclass that only changes defaults, like airbench's frozen-scale BN, qualifies)."""
    return (
        isinstance(m, nn.BatchNorm2d)
        and type(m).forward is nn.BatchNorm2d.forward
        and m.track_running_stats
        and m.running_mean is not None
    )


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """Dotted names ``(conv, bn)`` of every BatchNorm2d that directly and only consumes the
    output of a Conv2d with as many output channels, each module used exactly once."""
    refs = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    pairs: list[tuple[str, str]] = []
    _collect(model, "", refs, pairs)
    return pairs


def _collect(module: nn.Module, prefix: str, refs: Counter, pairs: list[tuple[str, str]]) -> None:
    try:
        graph = _ConvBnTracer().trace(module)
    except Exception:  # fx fails in many ways (TraceError, NameError, TypeError, ...)
        for name, child in module.named_children():
            _collect(child, f"{prefix}{name}.", refs, pairs)
        return
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    for node in graph.nodes:
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        src = node.args[0]
        if not isinstance(src, fx.Node) or src.op != "call_module" or len(src.users) != 1:
            continue
        conv, bn = module.get_submodule(src.target), module.get_submodule(node.target)
        if (
            _plain_conv(conv)
            and _plain_bn(bn)
            and conv.out_channels == bn.num_features
            and calls[src.target] == calls[node.target] == 1
            and refs[id(conv)] == refs[id(bn)] == 1
        ):
            pairs.append((prefix + src.target, prefix + node.target))


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Make ``conv`` compute ``bn(conv(x))`` (BN in inference form), in place."""
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(var)
    weight = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
    conv.weight.copy_(weight.to(conv.weight.dtype))
    conv.bias = nn.Parameter(((bias - mean) * scale + beta).to(conv.weight.dtype))


def fold_batchnorm(
    model: nn.Module, pairs: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """Fold, in place, every BatchNorm2d that directly follows a Conv2d in the dataflow (see
    :func:`conv_bn_pairs`; or just ``pairs``, found by it earlier) into that conv, and replace
    the BN by ``nn.Identity``. The model must be in eval mode. Returns the folded names."""
    if model.training:
        raise ConfigError("fold_batchnorm folds running statistics: call model.eval() first")
    pairs = conv_bn_pairs(model) if pairs is None else pairs
    for conv_name, bn_name in pairs:
        fold_conv_bn(model.get_submodule(conv_name), model.get_submodule(bn_name))
        parent, _, attr = bn_name.rpartition(".")
        setattr(model.get_submodule(parent), attr, nn.Identity())
    return pairs
