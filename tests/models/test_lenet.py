import pytest
import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.errors import InputShapeError
from cnnzoo.layers import Tanh
from zoo_helpers import randomize_all


def test_lenet5_follows_the_paper():
    model = cnnzoo.create_model("lenet5").eval()
    assert (model.c1.out_channels, model.c3.out_channels) == (6, 16)
    assert (model.c5.out_features, model.f6.out_features, model.fc.out_features) == (120, 84, 10)
    assert isinstance(model.act, Tanh)
    with torch.no_grad():  # 28x28 digits are padded to the paper's 32x32
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def check_forward_by_hand(size: tuple[int, int] = (28, 28)) -> None:
    """LeCun et al. 1998, section II.B, with every tensor random: the input zero-padded to
    32x32 (centred), C1 conv5x5 (6), tanh, S2 2x2 average, C3 conv5x5 (16), tanh, S4 2x2
    average, C5 (120), tanh, F6 (84), tanh, output layer."""
    model = randomize_all(cnnzoo.create_model("lenet5")).eval()
    x = torch.randn(2, 1, *size)
    top, left = (32 - size[0]) // 2, (32 - size[1]) // 2
    padded = torch.zeros(2, 1, 32, 32)
    padded[:, :, top : top + size[0], left : left + size[1]] = x
    with torch.no_grad():
        y = F.avg_pool2d(torch.tanh(F.conv2d(padded, model.c1.weight, model.c1.bias)), 2)
        y = F.avg_pool2d(torch.tanh(F.conv2d(y, model.c3.weight, model.c3.bias)), 2)
        y = torch.tanh(F.linear(y.flatten(1), model.c5.weight, model.c5.bias))
        y = torch.tanh(F.linear(y, model.f6.weight, model.f6.bias))
        expected = F.linear(y, model.fc.weight, model.fc.bias)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("size", [(28, 28), (32, 32), (29, 31)])
def test_forward_equals_the_paper_built_by_hand(size):
    check_forward_by_hand(size)


@pytest.mark.parametrize("size", [(33, 32), (36, 36), (64, 64), (86, 28), (28, 86)])
def test_inputs_above_32_are_refused_with_the_accepted_sizes(size):
    model = cnnzoo.create_model("lenet5").eval()
    with pytest.raises(
        InputShapeError, match=r"up to the paper's 32x32 .*got \d+x\d+: resize the images to 32x32"
    ):
        model(torch.randn(1, 1, *size))


def test_without_padding_only_32x32_is_taken():
    model = cnnzoo.create_model("lenet5", pad_to_32=False).eval()
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)
    with pytest.raises(InputShapeError, match="of exactly the paper's 32x32"):
        model(torch.randn(1, 1, 28, 28))


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
