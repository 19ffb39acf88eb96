import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm

import cnnzoo
from cnnzoo.models import FeatureExtractor, get_model_entry
from zoo_helpers import assert_loads_reference, randomize_all


def _params(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in cnnzoo.create_model(name, **kwargs).parameters())


@pytest.mark.parametrize(
    ("name", "count"), [("alexnet", 61_100_840), ("alexnet_paper", 60_965_224)]
)
def test_parameter_counts(name, count):
    assert _params(name) == count


def test_loads_torchvision_weights_and_matches_outputs():
    x = torch.randn(2, 3, 63, 63)
    assert_loads_reference("alexnet", tvm.alexnet(num_classes=10), x, num_classes=10)


def test_paper_variant_follows_the_paper():
    model = cnnzoo.create_model("alexnet_paper").eval()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    lrn = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    assert [(n.size, n.alpha, n.beta, n.k) for n in lrn] == [(5, 5e-4, 0.75, 2.0)] * 2
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3
    assert [type(m).__name__ for m in model.classifier] == ["Linear", "ReLU", "Dropout"] * 2 + [
        "Linear"
    ]
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    # Paper init: biases 1 in conv2, conv4, conv5 and the hidden FC layers.
    assert [c.bias[0].item() for c in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    # 224x224 gives the paper's 55x55 first layer and 6x6 last map.
    with torch.no_grad():
        assert convs[0](torch.randn(1, 3, 224, 224)).shape[-1] == 55
        assert model.forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 256, 6, 6)


@pytest.mark.parametrize("name", ["alexnet", "alexnet_paper"])
def test_any_channels_and_classes_at_the_true_minimum_size(name):
    h, w = get_model_entry(name).cfg.min_input_size
    model = cnnzoo.create_model(name, in_chans=1, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, h, w)).shape == (2, 7)
        with pytest.raises(RuntimeError):
            model.forward_features(torch.randn(2, 1, h - 1, w - 1))
        maps = FeatureExtractor(model)(torch.randn(1, 1, 127, 127))
        convs = [c.out_channels for c in model.features if isinstance(c, nn.Conv2d)]
        assert [m.shape[1] for m in maps] == [f["num_chs"] for f in model.feature_info]
        assert [f["num_chs"] for f in model.feature_info] == [convs[0], convs[1], convs[4]]
        assert [m.shape[-1] for m in maps] == [15, 7, 3]
        model.reset_classifier(0)
        assert model(torch.randn(1, 1, h, w)).shape == (1, model.num_features)
    model.reset_classifier(5)
    assert model.get_classifier().out_features == 5


def test_features_only_builds():
    feats = cnnzoo.create_model("alexnet", features_only=True, out_indices=[2]).eval()
    with torch.no_grad():
        (y,) = feats(torch.randn(1, 3, 63, 63))
    assert y.shape == (1, 256, 1, 1)


def lrn_by_hand(a: torch.Tensor, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta=0.75):
    """Krizhevsky et al. 2012, section 3.3: b_i = a_i / (k + alpha * sum_j a_j^2)^beta, the sum
    over the n channels centred on i (fewer at the edges)."""
    c = a.shape[1]
    sums = [a[:, max(0, i - n // 2) : min(c, i + n // 2 + 1)].square().sum(1) for i in range(c)]
    return a / (k + alpha * torch.stack(sums, 1)) ** beta


def two_towers(x: torch.Tensor, conv: nn.Conv2d, padding: int) -> torch.Tensor:
    """A layer split over the paper's two GPUs (Fig. 2): each half of the kernels sees only
    the half of the previous layer's maps on its own GPU."""
    xa, xb = x.chunk(2, 1)
    wa, wb = conv.weight.chunk(2, 0)
    ba, bb = conv.bias.chunk(2)
    return torch.cat(
        (F.conv2d(xa, wa, ba, padding=padding), F.conv2d(xb, wb, bb, padding=padding)), 1
    )


def check_paper_form_by_hand() -> None:
    """The published network with every tensor random, in training mode (dropout on): conv1
    11x11/4, ReLU, LRN, max-pool 3x3/2; conv2 5x5 on two towers, ReLU, LRN, pool; conv3 3x3
    across both towers; conv4 and conv5 3x3 on two towers; pool; fc6, ReLU, dropout; fc7,
    ReLU, dropout; fc8. Dropout draws the same masks on both sides from the same seed only
    if it sits at the same places (outputs of fc6 and fc7). The LRN layers are also checked
    alone on inputs large enough for the normalisation to matter."""
    model = randomize_all(cnnzoo.create_model("alexnet_paper", num_classes=10)).train()
    c1, c2, c3, c4, c5 = [m for m in model.features if isinstance(m, nn.Conv2d)]
    fc6, fc7, fc8 = [m for m in model.classifier if isinstance(m, nn.Linear)]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.manual_seed(1)
        out = model(x)
        y = F.max_pool2d(lrn_by_hand(F.conv2d(x, c1.weight, c1.bias, 4, 2).relu()), 3, 2)
        y = F.max_pool2d(lrn_by_hand(two_towers(y, c2, 2).relu()), 3, 2)
        y = F.conv2d(y, c3.weight, c3.bias, padding=1).relu()
        y = F.max_pool2d(two_towers(two_towers(y, c4, 1).relu(), c5, 1).relu(), 3, 2)
        assert y.shape[-2:] == (6, 6)
        torch.manual_seed(1)
        y = F.dropout(fc6(y.flatten(1)).relu(), 0.5, training=True)
        expected = fc8(F.dropout(fc7(y).relu(), 0.5, training=True))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    a = 3 * torch.randn(2, 96, 4, 4)
    for lrn in (m for m in model.features if isinstance(m, nn.LocalResponseNorm)):
        torch.testing.assert_close(lrn(a), lrn_by_hand(a))


def test_paper_form_equals_the_paper_built_by_hand():
    check_paper_form_by_hand()


def test_lrn_alpha_in_pytorchs_convention_is_the_papers_alpha_times_n():
    a = 3 * torch.randn(2, 12, 4, 4)
    model = cnnzoo.create_model("alexnet_paper", lrn_alpha=1e-4)
    assert {m.alpha for m in model.features if isinstance(m, nn.LocalResponseNorm)} == {1e-4}
    torch.testing.assert_close(model.features[2](a), lrn_by_hand(a, alpha=1e-4 / 5))
