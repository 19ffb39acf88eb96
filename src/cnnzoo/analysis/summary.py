"""Per-layer summary of any model: how the shapes change and where the parameters are.

As d2l's ``layer_summary`` or torchsummary, but for any ``nn.Module`` (not only
``nn.Sequential``): forward hooks on every submodule record, for each call, the output
shape(s), the module's dotted name, its nesting depth and its parameters. Work done by
functional calls inside a ``forward`` (``F.relu(x)``, ``x + y``, ``torch.flatten``) is not a
module and so has no row of its own, and a module that is never called in eval mode
(GoogLeNet's auxiliary heads) has no row, though its parameters are in the totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import ConfigError

MB = 1024**2


@dataclass
class LayerRow:
    """One call of one module. ``params`` are the module's own parameters (children excluded);
    ``total_params`` include its children. A module called more than once (a shared
    activation) has one row per call; only its first call counts its parameters."""

    name: str
    type: str
    depth: int
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_bytes: int = 0
    params: int = 0
    total_params: int = 0
    is_leaf: bool = True
    first_call: bool = True


@dataclass
class Summary:
    """The result of :func:`layer_summary`; ``str(summary)`` is the printed table."""

    model_name: str
    input_size: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    input_mb: float
    activation_mb: float
    params_mb: float
    depth: int | None = None

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_mb(self) -> float:
        return self.input_mb + self.activation_mb + self.params_mb

    def visible_rows(self) -> list[LayerRow]:
        """The rows shown at ``depth`` (all rows when ``depth`` is None)."""
        return [r for r in self.rows if self.depth is None or r.depth <= self.depth]

    def shown_params(self, row: LayerRow) -> int | None:
        """The parameter count printed for ``row``: its own and its children's when the
        children are not shown (a leaf, or the depth limit), ``None`` (printed ``--``) when
        they are, so that the column adds up to the total without counting anything twice."""
        if not row.first_call:
            return None
        children_shown = not row.is_leaf and (self.depth is None or row.depth < self.depth)
        if children_shown:
            return row.params or None
        return row.total_params

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Param #")
        body = []
        for r in self.visible_rows():
            label = "  " * (r.depth - 1) + f"{r.name} ({r.type})"
            shapes = ", ".join(_shape_str(s) for s in r.output_shapes) or "--"
            n = self.shown_params(r)
            body.append((label, shapes, "--" if n is None else f"{n:,}"))
        widths = [
            max(len(h), *(len(b[i]) for b in body)) if body else len(h)
            for i, h in enumerate(header)
        ]
        line = f"{{:<{widths[0]}}}  {{:<{widths[1]}}}  {{:>{widths[2]}}}"
        rule_len = sum(widths) + 4
        in_shape = "x".join(str(s) for s in self.input_size)
        out = [
            f"{self.model_name}, input {in_shape} (batch 1)",
            "=" * rule_len,
            line.format(*header),
            "=" * rule_len,
        ]
        out += [line.format(*b) for b in body]
        out += [
            "=" * rule_len,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            "-" * rule_len,
            f"Input size (MB): {self.input_mb:.2f}",
            f"Forward activations, leaf modules, batch 1 (MB): {self.activation_mb:.2f}",
            f"Params size (MB): {self.params_mb:.2f}",
            f"Estimated total size (MB): {self.total_mb:.2f}",
            "=" * rule_len,
        ]
        return "\n".join(out)


def layer_summary(
    model: nn.Module, input_size: Sequence[int] = (3, 224, 224), depth: int | None = None
) -> Summary:
    """Run one image of shape ``input_size`` = (C, H, W) through ``model`` (eval mode, no
    autograd, on the model's device) and record every submodule's output shapes and
    parameters. ``depth`` limits the printed rows to that nesting depth (1 = the model's
    direct children); the totals always cover the whole model. The model's train/eval mode is
    restored afterwards."""
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != 3 or min(input_size) < 1:
        raise ConfigError(f"input_size must be (C, H, W) with positive sizes, got {input_size}")
    if depth is not None and depth < 1:
        raise ConfigError(f"depth must be at least 1, got {depth}")

    rows: list[LayerRow] = []
    seen: set[int] = set()
    handles = []

    def pre_hook(name: str, module: nn.Module):
        def hook(_module: nn.Module, _args: tuple) -> None:
            first = id(module) not in seen
            seen.add(id(module))
            rows.append(
                LayerRow(
                    name=name,
                    type=type(module).__name__,
                    depth=name.count(".") + 1,
                    params=sum(p.numel() for p in module.parameters(recurse=False)) if first else 0,
                    total_params=sum(p.numel() for p in module.parameters()) if first else 0,
                    is_leaf=next(module.children(), None) is None,
                    first_call=first,
                )
            )
            stack.append(rows[-1])

        return hook

    def post_hook(_module: nn.Module, _args: tuple, output: object) -> None:
        row = stack.pop()
        tensors = list(_tensors(output))
        row.output_shapes = [tuple(t.shape) for t in tensors]
        row.output_bytes = sum(t.numel() * t.element_size() for t in tensors)

    stack: list[LayerRow] = []
    for name, module in model.named_modules():
        if module is model:
            continue
        handles.append(module.register_forward_pre_hook(pre_hook(name, module)))
        handles.append(module.register_forward_hook(post_hook))

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(1, *input_size, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    params = list(model.parameters())
    return Summary(
        model_name=getattr(model, "model_name", type(model).__name__),
        input_size=input_size,
        rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        input_mb=x.numel() * x.element_size() / MB,
        activation_mb=sum(r.output_bytes for r in rows if r.is_leaf) / MB,
        params_mb=sum(p.numel() * p.element_size() for p in params) / MB,
        depth=depth,
    )


def _tensors(output: object):
    """The tensors in a module's output (a tensor, or tuples/lists/dicts of them)."""
    if isinstance(output, Tensor):
        yield output
    elif isinstance(output, (tuple, list)):
        for o in output:
            yield from _tensors(o)
    elif isinstance(output, dict):
        for o in output.values():
            yield from _tensors(o)


def _shape_str(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"
