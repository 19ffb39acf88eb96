import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import cnnzoo
from cnnzoo.errors import InputShapeError
from cnnzoo.models.densenet import checkpoint_filter_fn
from zoo_helpers import assert_loads_reference, bn_eval, count_params, randomize_all

# torchvision's num_params (DenseNet_*_Weights.meta); Huang et al. 2017 Table 2: DenseNet-BC
# (L=100, k=12) has 0.8M parameters.
PUBLISHED = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}
BC_100_K12 = 769_162


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_equals_torchvision(name):
    assert count_params(name) == PUBLISHED[name]


def test_cifar_densenet_bc_parameter_count_matches_the_paper():
    count = count_params("densenet_bc_100_k12")
    assert count == BC_100_K12
    assert round(count / 1e6, 1) == 0.8


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_state_dict_layout_equals_torchvision(name):
    with torch.device("meta"):
        ours = cnnzoo.create_model(name).state_dict()
        theirs = torchvision.models.get_model(name).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def check_same_outputs_as_torchvision(name: str = "densenet121") -> None:
    assert_loads_reference(name, torchvision.models.get_model(name), torch.randn(2, 3, 32, 32))


def test_same_outputs_as_torchvision():
    check_same_outputs_as_torchvision()


def test_old_key_names_load_and_give_the_same_outputs(tmp_path):
    reference = randomize_all(torchvision.models.densenet121()).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(x)
    state = reference.state_dict()
    # The published files use the pre-0.4 names ("norm.1") and have no num_batches_tracked.
    old = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked")
    }
    assert any(".norm.1." in k for k in old)
    torch.save(old, tmp_path / "old.pth")
    model = cnnzoo.create_model("densenet121", pretrained=str(tmp_path / "old.pth")).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-4)


def test_filter_keeps_current_names():
    with torch.device("meta"):
        model = cnnzoo.create_model("densenet_bc_100_k12")
    state = model.state_dict()
    assert list(checkpoint_filter_fn(state, model)) == list(state)


def test_minimum_input_sizes_are_exact():
    imagenet = cnnzoo.create_model("densenet121", num_classes=3).eval()
    cifar = cnnzoo.create_model("densenet_bc_100_k12").eval()
    with torch.no_grad():
        assert imagenet(torch.randn(1, 3, 29, 29)).shape == (1, 3)
        assert cifar(torch.randn(1, 3, 4, 4)).shape == (1, 10)
        with pytest.raises(RuntimeError):  # one pixel less and the last transition pools to 0x0
            imagenet.forward_features(torch.randn(1, 3, 28, 28))
        with pytest.raises(RuntimeError):
            cifar.forward_features(torch.randn(1, 3, 3, 3))
    with pytest.raises(InputShapeError, match="at least 29x29"):
        imagenet(torch.randn(1, 3, 28, 28))


def test_cifar_model_layout():
    model = cnnzoo.create_model("densenet_bc_100_k12", num_classes=100, in_chans=1)
    blocks = [m for m in model.modules() if type(m).__name__ == "DenseBlock"]
    assert [len(b) for b in blocks] == [16, 16, 16]
    assert model.features.conv0.out_channels == 24 and model.features.conv0.stride == (1, 1)
    # 24 + 16*12 = 216 -> 108; 108 + 192 = 300 -> 150; 150 + 192 = 342
    assert [f["num_chs"] for f in model.feature_info] == [216, 300, 342]
    assert model.num_features == 342
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 100)


def test_features_only_maps():
    feats = cnnzoo.create_model("densenet121", features_only=True).eval()
    with torch.no_grad():
        maps = feats(torch.randn(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == [64, 256, 512, 1024, 1024]
    assert [64 // m.shape[-1] for m in maps] == [f["reduction"] for f in feats.feature_info]
    assert maps[-1].min() >= 0  # after the final BN-ReLU, as the head sees it


def test_classifier_interface_and_dropout():
    model = cnnzoo.create_model("densenet_bc_100_k12", drop_rate=0.5, dense_drop_rate=0.2)
    x = torch.randn(2, 3, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 342)
    assert isinstance(model.get_classifier(), nn.Linear)
    model.reset_classifier(0)
    assert model(x).shape == (2, 342)
    model.reset_classifier(5)
    assert model(x).shape == (2, 5)


def check_densenet_bc_forward_by_hand() -> None:
    """DenseNet-BC (L=100, k=12) built from the paper (section 3, "Implementation details"),
    every tensor random: conv3x3 to 2k = 24 channels; each layer BN-ReLU-conv1x1 (4k)-BN-ReLU-
    conv3x3 (k) on the concatenation of the block input and every earlier layer's output, in
    that order; transitions BN-ReLU-conv1x1 (half the channels)-avgpool 2x2; after the last
    block BN-ReLU, global average pooling and the classifier."""
    model = randomize_all(cnnzoo.create_model("densenet_bc_100_k12")).eval()
    f = model.features
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = F.conv2d(x, f.conv0.weight, padding=1)
        for b in (1, 2, 3):
            maps = [y]
            for layer in f.get_submodule(f"denseblock{b}").values():
                h = F.conv2d(
                    torch.relu(bn_eval(torch.cat(maps, 1), layer.norm1)), layer.conv1.weight
                )
                h = F.conv2d(torch.relu(bn_eval(h, layer.norm2)), layer.conv2.weight, padding=1)
                maps.append(h)
            y = torch.cat(maps, 1)
            assert y.shape[1] == maps[0].shape[1] + 16 * 12
            if b < 3:
                t = f.get_submodule(f"transition{b}")
                y = F.avg_pool2d(F.conv2d(torch.relu(bn_eval(y, t.norm)), t.conv.weight), 2)
        y = torch.relu(bn_eval(y, f.norm5)).mean((2, 3))
        expected = F.linear(y, model.classifier.weight, model.classifier.bias)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-4)


def test_densenet_bc_equals_the_paper_built_by_hand():
    check_densenet_bc_forward_by_hand()
