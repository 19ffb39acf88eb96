"""Per-layer summary of any model: how the shapes change, where the parameters are and
where the multiply-adds are spent.

As d2l's ``layer_summary`` or torchinfo, but for any ``nn.Module`` (not only
``nn.Sequential``): forward hooks on every submodule record, for each call in execution
order, the output shape(s), the module's dotted name, its nesting depth, its parameters and
its multiply-adds (PyTorch's own counter, as :func:`~cnnzoo.analysis.flops.count_flops`).
Work done by functional calls inside a ``forward`` (``F.relu(x)``, ``q @ k``) has no row of
its own: its multiply-adds count towards the module whose ``forward`` makes them. A module
that is never called in eval mode (GoogLeNet's auxiliary heads) has no row, though its
parameters are in the totals; nor has a module that does nothing in eval mode (Identity,
Dropout, DropPath: no parameters, and its input comes back untouched).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo.analysis.flops import format_count
from cnnzoo.errors import ConfigError

MB = 1024**2


@dataclass
class LayerRow:
    """One call of one module. ``params`` are the module's own parameters (children excluded);
    ``total_params`` include its children. A module called more than once (a shared
    activation) has one row per call; only its first call counts its parameters.
    ``total_macs`` are the multiply-adds of this call, its children's included; ``macs``
    those of its own ``forward`` (the children's excluded)."""

    name: str
    type: str
    depth: int
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_bytes: int = 0
    params: int = 0
    total_params: int = 0
    is_leaf: bool = True
    first_call: bool = True
    macs: int = 0
    total_macs: int = 0


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
    total_macs: int = 0

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

    def shown_macs(self, row: LayerRow) -> int | None:
        """The multiply-adds printed for ``row``, on :meth:`shown_params`' rule: the call's
        own when its children are shown, else its total; ``None`` (``--``) for none. Every
        call counts (a shared module works each time), so the column adds up to
        :attr:`total_macs` less :attr:`root_macs`."""
        children_shown = not row.is_leaf and (self.depth is None or row.depth < self.depth)
        n = row.macs if children_shown else row.total_macs
        return n or None

    @property
    def root_macs(self) -> int:
        """Multiply-adds of the model's own ``forward``, outside every submodule."""
        return self.total_macs - sum(r.total_macs for r in self.rows if r.depth == 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings), as JSON holds it; :meth:`from_dict` reads
        it back."""
        return json.loads(json.dumps(asdict(self)))  # tuples become lists

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        """The summary :meth:`to_dict` gave (shapes back to tuples)."""
        row_keys = {f.name for f in fields(LayerRow)}
        rows = [LayerRow(**{k: v for k, v in r.items() if k in row_keys}) for r in data["rows"]]
        for r in rows:
            r.output_shapes = [tuple(s) for s in r.output_shapes]
        keys = {f.name for f in fields(cls)} - {"rows", "input_size"}
        return cls(
            rows=rows,
            input_size=tuple(data["input_size"]),
            **{k: v for k, v in data.items() if k in keys},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Param #", "Mult-Adds")
        body = []
        for r in self.visible_rows():
            label = "  " * (r.depth - 1) + f"{r.name} ({r.type})"
            shapes = ", ".join(_shape_str(s) for s in r.output_shapes) or "--"
            n, m = self.shown_params(r), self.shown_macs(r)
            body.append(
                (
                    label,
                    shapes,
                    "--" if n is None else f"{n:,}",
                    "--" if m is None else format_count(m),
                )
            )
        widths = [
            max(len(h), *(len(b[i]) for b in body)) if body else len(h)
            for i, h in enumerate(header)
        ]
        line = f"{{:<{widths[0]}}}  {{:<{widths[1]}}}  {{:>{widths[2]}}}  {{:>{widths[3]}}}"
        rule_len = sum(widths) + 6
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
            f"Total mult-adds: {format_count(self.total_macs)} ({self.total_macs:,}; 1 MAC = 2 FLOPs)",
        ]
        if self.root_macs:
            out.append(
                f"  of which in {self.model_name}'s own forward: {format_count(self.root_macs)}"
            )
        out += [
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
    stack: list[tuple[LayerRow, Any, int]] = []  # the calls under way: row, input, its version
    counter = FlopCounterMode(display=False)

    def pre_hook(name: str, module: nn.Module):
        def hook(_module: nn.Module, args: tuple) -> None:
            first = id(module) not in seen
            seen.add(id(module))
            row = LayerRow(
                name=name,
                type=type(module).__name__,
                depth=name.count(".") + 1,
                params=sum(p.numel() for p in module.parameters(recurse=False)) if first else 0,
                total_params=sum(p.numel() for p in module.parameters()) if first else 0,
                is_leaf=next(module.children(), None) is None,
                first_call=first,
                total_macs=counter.get_total_flops(),  # the count so far, until the call ends
            )
            rows.append(row)
            x = args[0] if len(args) == 1 and isinstance(args[0], Tensor) else None
            stack.append((row, x, x._version if x is not None else -1))

        return hook

    def post_hook(module: nn.Module, _args: tuple, output: object) -> None:
        row, x, version = stack.pop()
        if (
            row.is_leaf
            and x is not None
            and output is x
            and x._version == version
            and next(module.parameters(), None) is None
        ):  # Identity, Dropout and DropPath in eval mode: nothing happened
            del rows[max(i for i, r in enumerate(rows) if r is row)]
            return
        tensors = list(_tensors(output))
        row.output_shapes = [tuple(t.shape) for t in tensors]
        row.output_bytes = sum(t.numel() * t.element_size() for t in tensors)
        row.total_macs = (counter.get_total_flops() - row.total_macs) // 2
        row.macs += row.total_macs  # less the children's, subtracted as they ended
        if stack:
            stack[-1][0].macs -= row.total_macs

    handles = []
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
    try:  # no_grad rather than inference_mode: tensors keep the version counts read above
        with torch.no_grad(), counter:
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
        total_macs=counter.get_total_flops() // 2,
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
