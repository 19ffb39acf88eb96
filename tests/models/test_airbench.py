import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import cnnzoo
from cnnzoo.errors import DataError
from zoo_helpers import bn_eval, randomize_all

# whitening 24*3*2*2 + 24; blocks (conv, conv, BN shift+scale x2): 64/256/256; fc 256*10
EXPECTED_PARAMS = (
    (24 * 3 * 4 + 24)
    + (64 * 24 * 9 + 64 * 64 * 9 + 4 * 64)
    + (256 * 64 * 9 + 256 * 256 * 9 + 4 * 256)
    + (256 * 256 * 9 * 2 + 4 * 256)
    + 256 * 10
)


def _correlated_images(n: int = 64, size: int = 16) -> torch.Tensor:
    """Images whose channels and neighbouring pixels are correlated, like natural images."""
    base = torch.randn(n, 1, size + 1, size + 1)
    smooth = (base[..., 1:, 1:] + base[..., :-1, 1:] + base[..., 1:, :-1]) / 3
    colour = torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)
    return smooth * colour + 0.3 * torch.randn(n, 3, size, size)


def test_structure_and_param_count():
    m = cnnzoo.create_model("airbench94")
    assert sum(p.numel() for p in m.parameters()) == EXPECTED_PARAMS == 1_972_792
    assert m.whiten.weight.shape == (24, 3, 2, 2) and m.whiten.padding == (0, 0)
    assert not m.whiten.weight.requires_grad and m.whiten.bias.requires_grad
    assert m.fc.bias is None
    bn = m.block2.bn1
    assert (bn.momentum, bn.eps) == (0.4, 1e-12)
    assert not bn.weight.requires_grad and bn.bias.requires_grad
    assert [
        m.block1.conv2.out_channels,
        m.block2.conv2.out_channels,
        m.block3.conv2.out_channels,
    ] == [64, 256, 256]


def test_head_is_global_max_pool_and_scaled_linear():
    m = cnnzoo.create_model("airbench94").eval()
    feats = torch.randn(2, 256, 3, 3)
    pooled = m.forward_head(feats, pre_logits=True)
    torch.testing.assert_close(pooled, feats.amax(dim=(2, 3)))
    torch.testing.assert_close(m.forward_head(feats), m.fc(pooled) / 9)


def test_init_from_data_whitens_patches():
    m = cnnzoo.create_model("airbench94")
    images = _correlated_images()
    m.init_from_data(images)
    with torch.no_grad():
        out = nn.functional.conv2d(images, m.whiten.weight)  # no bias: the whitening itself
    flat = out.permute(0, 2, 3, 1).reshape(-1, 24).double()
    cov = flat.T @ flat / flat.shape[0]
    half = cov[:12, :12]  # the positive filters; the other 12 are their negatives
    torch.testing.assert_close(half, torch.eye(12, dtype=torch.float64), atol=0.02, rtol=0)
    torch.testing.assert_close(m.whiten.weight[12:], -m.whiten.weight[:12])


def test_init_from_data_refuses_wrong_images():
    m = cnnzoo.create_model("airbench94")
    with pytest.raises(DataError, match="3-channel"):
        m.init_from_data(torch.randn(4, 1, 32, 32))


def test_runs_at_min_size_any_channels_and_classes():
    m = cnnzoo.create_model("airbench94", in_chans=1, num_classes=4).eval()
    assert m.whiten.out_channels == 2 * 1 * 4
    h, w = m.default_cfg.min_input_size
    assert m(torch.randn(1, 1, h, w)).shape == (1, 4)
    m.reset_classifier(0)
    assert m(torch.randn(1, 1, 32, 32)).shape == (1, 256) and isinstance(
        m.get_classifier(), nn.Identity
    )


def test_features_only_and_training_step():
    f = cnnzoo.create_model("airbench94", features_only=True)
    maps = f(torch.randn(2, 3, 32, 32))
    assert [tuple(t.shape[1:]) for t in maps] == [(64, 15, 15), (256, 7, 7), (256, 3, 3)]
    m = cnnzoo.create_model("airbench94")
    m.init_from_data(torch.randn(8, 3, 32, 32))
    loss = nn.functional.cross_entropy(m(torch.randn(2, 3, 32, 32)), torch.tensor([1, 2]))
    loss.backward()
    assert m.whiten.weight.grad is None and m.block1.conv1.weight.grad is not None


def check_forward_by_hand() -> None:
    """airbench94 as the script writes it, every tensor random: GELU(whiten 2x2 conv + bias),
    then per block conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU, global max
    pool, bias-free linear scaled by 1/9."""
    m = cnnzoo.create_model("airbench94")
    m.init_from_data(_correlated_images(16))
    m = randomize_all(m).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        y = F.gelu(F.conv2d(x, m.whiten.weight, m.whiten.bias))
        for block in (m.block1, m.block2, m.block3):
            y = F.max_pool2d(F.conv2d(y, block.conv1.weight, padding=1), 2)
            y = F.gelu(bn_eval(y, block.bn1))
            y = F.gelu(bn_eval(F.conv2d(y, block.conv2.weight, padding=1), block.bn2))
        expected = F.linear(y.amax((2, 3)), m.fc.weight) / 9
        torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-4)


def test_forward_equals_the_script_built_by_hand():
    check_forward_by_hand()
