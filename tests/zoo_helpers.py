"""Checks shared by the model and export tests: parameter counts on the meta device, BatchNorm
layers with non-trivial statistics, and "a reference implementation's weights, loaded through
``create_model(pretrained=...)``, give the reference's outputs".

Importable from any test module: pytest puts ``tests/`` (the directory of the top conftest.py)
on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

import cnnzoo


def count_params(name: str, **kwargs) -> int:
    """Parameter count of a registered model, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = cnnzoo.create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, so that equal outputs mean
    equal networks (a fresh BN is nearly the identity in eval mode) and BN folding is tested for
    real. Gains of 0.7..1 keep a 150-layer network well-conditioned in float32."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
                if m.affine:
                    gain = 0.7 + 0.3 * torch.rand(c, generator=g)
                    m.weight.copy_(gain * torch.sqrt(m.running_var + m.eps))
                    m.bias.copy_(0.2 * torch.randn(c, generator=g))
    return model


def assert_loads_reference(
    name: str,
    reference: nn.Module,
    x: torch.Tensor,
    tmp_path: Path,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    **create_kwargs,
) -> nn.Module:
    """Save ``reference``'s state_dict, build ``name`` from it and assert equal eval outputs on
    ``x``. The checkpoint is deleted afterwards: some references are half a gigabyte, and pytest
    keeps every test's tmp_path until the session ends. Returns the loaded cnnzoo model."""
    reference = reference.eval()
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    try:
        model = cnnzoo.create_model(name, pretrained=str(path), **create_kwargs).eval()
    finally:
        path.unlink()
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(model(x), expected, atol=atol, rtol=rtol)
    assert expected.std() > 1e-3, "degenerate reference output: the comparison proves nothing"
    return model
