import pytest
import torch

import cnnzoo
from cnnzoo.layers import Tanh


def test_lenet5_follows_the_paper():
    model = cnnzoo.create_model("lenet5").eval()
    assert (model.c1.out_channels, model.c3.out_channels) == (6, 16)
    assert (model.c5.out_features, model.f6.out_features, model.fc.out_features) == (120, 84, 10)
    assert isinstance(model.act, Tanh)
    with torch.no_grad():  # 28x28 digits are padded to the paper's 32x32
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("requires_grad", [True, False])
def test_cpu_tanh_equals_torch_tanh_in_value_and_gradient(requires_grad):
    x = (torch.randn(4096) * 4).requires_grad_(requires_grad)
    ours = Tanh()(x)
    torch.testing.assert_close(ours, torch.tanh(x), atol=3e-7, rtol=0)
    if requires_grad:
        (g_ours,) = torch.autograd.grad(ours.square().sum(), x)
        (g_ref,) = torch.autograd.grad(torch.tanh(x).square().sum(), x)
        torch.testing.assert_close(g_ours, g_ref, atol=1e-6, rtol=1e-5)


def test_cpu_tanh_gradcheck():
    x = torch.randn(32, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(Tanh(), (x,))


def test_traced_tanh_is_torch_tanh():
    graph = torch.jit.trace(Tanh(), torch.randn(3)).inlined_graph
    kinds = {node.kind() for node in graph.nodes()}
    assert "aten::tanh" in kinds and "aten::sigmoid" not in kinds
