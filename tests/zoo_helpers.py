"""Checks shared by the model and export tests: parameter counts on the meta device, BatchNorm
layers with non-trivial statistics, models whose every parameter and buffer is random and
distinct, and "a reference implementation's weights, loaded through
``create_model(pretrained=...)``, give the reference's outputs".

Importable from any test module: pytest puts ``tests/`` (the directory of the top conftest.py)
on ``sys.path``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn as nn

import cnnzoo


def count_params(name: str, **kwargs) -> int:
    """Parameter count of a registered model, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = cnnzoo.create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def randomize_bn(model: nn.Module, seed: int = 0, scale: float = 1.0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, so that equal outputs mean
    equal networks (a fresh BN is nearly the identity in eval mode) and BN folding is tested for
    real. Gains of 0.7..1 keep a 150-layer network well-conditioned in float32; ``scale``
    multiplies every BN's output (its gain and shift), for networks whose clamps (ReLU6) only
    bind on large activations."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
                if m.affine:
                    gain = scale * (0.7 + 0.3 * torch.rand(c, generator=g))
                    m.weight.copy_(gain * torch.sqrt(m.running_var + m.eps))
                    m.bias.copy_(scale * 0.2 * torch.randn(c, generator=g))
    return model


def randomize_all(model: nn.Module, seed: int = 0, bn_scale: float = 1.0) -> nn.Module:
    """Make every parameter and floating-point buffer of ``model`` random and distinct, so that
    equal outputs mean equal wiring: BatchNorm as in :func:`randomize_bn` (``bn_scale`` is its
    ``scale``); LayerNorm and
    GroupNorm scales in 0.5..1.5 and shifts N(0, 0.2); any other tensor whose values are all
    equal (a zero-initialised classifier, zero or constant biases) redrawn, weights as
    N(0, 1/fan_in) and vectors as N(0, 0.1). Tensors that are random already are kept, so the
    reference's own scale (and a deep network's conditioning) stays as its authors set it."""
    randomize_bn(model, seed, bn_scale)
    g = torch.Generator().manual_seed(seed + 1)
    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.GroupNorm)) and m.weight is not None:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, norms):
                continue
            for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]:
                if not t.is_floating_point() or t.numel() < 2 or (t != t.flatten()[0]).any():
                    continue
                std = t[0].numel() ** -0.5 if t.dim() > 1 else 0.1
                t.copy_(std * torch.randn(t.shape, generator=g))
    constant = [
        n
        for n, t in model.state_dict().items()
        if t.is_floating_point() and t.numel() > 1
        if (t == t.flatten()[0]).all()
    ]
    assert not constant, f"still constant after randomize_all: {constant}"
    return model


def assert_loads_reference(
    name: str,
    reference: nn.Module,
    x: torch.Tensor,
    tmp_path: Path | None = None,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    bn_scale: float = 1.0,
    **create_kwargs,
) -> nn.Module:
    """Randomise every tensor of ``reference`` (:func:`randomize_all` with ``bn_scale``), save
    its state_dict,
    build ``name`` from it and assert equal eval outputs on ``x``. The checkpoint (in ``tmp_path``, else a temporary directory) is deleted afterwards: some
    references are half a gigabyte, and pytest keeps every test's tmp_path until the session
    ends. Returns the loaded cnnzoo model."""
    reference = randomize_all(reference, bn_scale=bn_scale).eval()
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        path = Path(tmp) / f"{name}.pth"
        torch.save(reference.state_dict(), path)
        model = cnnzoo.create_model(name, pretrained=str(path), **create_kwargs).eval()
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(model(x), expected, atol=atol, rtol=rtol)
    assert expected.std() > 1e-3, "degenerate reference output: the comparison proves nothing"
    return model


def bn_eval(x: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    """BatchNorm in eval mode, written out: (x - running mean) / sqrt(running var + eps), then
    the affine scale and shift; for the hand-built statements of the papers' units."""
    shape = (1, -1, 1, 1)
    y = (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
    return y * bn.weight.view(shape) + bn.bias.view(shape)
