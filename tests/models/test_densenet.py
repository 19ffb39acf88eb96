import re

import pytest
import torch
import torch.nn as nn
import torchvision

import cnnzoo
from cnnzoo.errors import InputShapeError
from cnnzoo.models.densenet import checkpoint_filter_fn
from zoo_helpers import assert_loads_reference, count_params, randomize_bn

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


def test_same_outputs_as_torchvision_including_old_key_names(tmp_path):
    reference = randomize_bn(torchvision.models.densenet121()).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(x)
    assert expected.std() > 1e-3
    state = reference.state_dict()
    # The published files use the pre-0.4 names ("norm.1") and have no num_batches_tracked.
    old = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked")
    }
    assert any(".norm.1." in k for k in old)
    assert_loads_reference("densenet121", reference, x, tmp_path)
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
