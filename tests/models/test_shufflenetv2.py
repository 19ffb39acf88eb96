import pytest
import torch
import torch.nn as nn
import torchvision

import cnnzoo
from zoo_helpers import assert_loads_reference, randomize_all

# torchvision's num_params (ShuffleNet_V2_*_Weights.meta).
PUBLISHED = {
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    "shufflenet_v2_x1_5": 3_503_624,
    "shufflenet_v2_x2_0": 7_393_996,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_equals_torchvision(name):
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]


def check_same_outputs_as_torchvision(name: str) -> None:
    assert_loads_reference(name, torchvision.models.get_model(name), torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_same_outputs_as_torchvision(name):
    check_same_outputs_as_torchvision(name)


def test_checkpoint_without_batchnorm_counters_loads(tmp_path):
    reference = randomize_all(torchvision.models.shufflenet_v2_x0_5()).eval()
    state = {
        k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    torch.save(state, tmp_path / "old.pth")
    model = cnnzoo.create_model("shufflenet_v2_x0_5", pretrained=str(tmp_path / "old.pth")).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=1e-4)


def test_units_split_and_shuffle():
    with torch.device("meta"):
        model = cnnzoo.create_model("shufflenet_v2_x1_0")
    down, unit = model.stage2[0], model.stage2[1]
    assert down.branch1[0].groups == 24 and down.branch2[0].in_channels == 24  # both see all input
    assert (
        isinstance(unit.branch1, nn.Identity) and unit.branch2[0].in_channels == 58
    )  # half of 116
    assert [len(s) for s in (model.stage2, model.stage3, model.stage4)] == [4, 8, 4]


def test_interface_small_input_and_features():
    model = cnnzoo.create_model("shufflenet_v2_x0_5", num_classes=10, in_chans=1, drop_rate=0.5)
    x = torch.randn(2, 1, 16, 16)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 1, 1)).shape == (1, 10)
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 1024)
    model.reset_classifier(3)
    assert model.get_classifier().out_features == 3 and model(x).shape == (2, 3)
    feats = cnnzoo.create_model("shufflenet_v2_x0_5", features_only=True).eval()
    with torch.no_grad():
        maps = feats(torch.randn(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == [24, 48, 96, 1024]
    assert (
        [64 // m.shape[-1] for m in maps]
        == [f["reduction"] for f in feats.feature_info]
        == [2, 8, 16, 32]
    )
