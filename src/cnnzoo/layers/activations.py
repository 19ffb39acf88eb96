"""Activations with a faster CPU path than PyTorch's own kernel."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor


class _SigmoidTanh(torch.autograd.Function):
    """tanh(x) = 2 sigmoid(2x) - 1, with tanh's own backward (grad * (1 - y^2))."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = torch.sigmoid(x * 2).mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class Tanh(nn.Module):
    """``nn.Tanh`` with the same state (none) and, on CPU, the identity tanh(x) = 2σ(2x) − 1.

    PyTorch 2.14's CPU tanh kernel is about 6x slower than its sigmoid kernel (1.58 ms against
    0.24 ms for LeNet-5's first activation, 128x6x28x28 floats, one thread on this project's
    AVX-512 machine), enough to make tanh a fifth of a LeNet-5 training step; through sigmoid
    the step is about 1.5x faster (benchmarks/results/train_options_lenet5.md). The two agree
    to 2e-7 absolute. Exports (tracing, ``torch.compile``/``torch.export``, ONNX) and other
    devices get ``torch.tanh`` itself, so an exported graph holds a plain Tanh node.
    """

    def forward(self, x: Tensor) -> Tensor:
        if (
            x.device.type != "cpu"
            or torch.jit.is_scripting()
            or torch.jit.is_tracing()
            or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export()
        ):
            return torch.tanh(x)
        if x.requires_grad and torch.is_grad_enabled():
            return _SigmoidTanh.apply(x)
        return torch.sigmoid(x * 2).mul_(2).sub_(1)
