import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm

import cnnzoo
from cnnzoo.config import list_configs, load_config
from cnnzoo.models import FeatureExtractor
from zoo_helpers import assert_loads_reference, bn_eval, randomize_all


def _params(**kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in cnnzoo.create_model("googlenet", **kwargs).parameters())


def test_parameter_counts():
    assert _params() == 6_624_904  # torchvision's count, without the aux heads
    assert _params(aux_logits=True) == 13_004_888
    assert _params(branch3_kernel=5) == 7_005_832  # the paper's 5x5 convolutions


def test_loads_torchvision_weights_and_matches_outputs():
    ref = tvm.googlenet(num_classes=10, init_weights=True)  # carries the aux heads
    model = assert_loads_reference("googlenet", ref, torch.randn(2, 3, 32, 32), num_classes=10)
    assert model.aux1 is None


def check_aux_heads_and_transform_input_match_torchvision() -> None:
    """All three heads in training mode (dropout off), with every tensor random."""
    ref = tvm.googlenet(
        num_classes=10, init_weights=True, transform_input=True, dropout=0.0, dropout_aux=0.0
    )
    x = torch.randn(2, 3, 64, 64)
    model = assert_loads_reference(
        "googlenet",
        ref,
        x,
        num_classes=10,
        aux_logits=True,
        transform_input=True,
        drop_rate=0.0,
        aux_drop_rate=0.0,
    )
    ref.train()
    model.train()
    with torch.no_grad():
        logits, aux1, aux2 = model(x)
        expected = ref(x)  # torchvision orders them (logits, aux2, aux1)
    torch.testing.assert_close(logits, expected.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(aux1, expected.aux_logits1, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(aux2, expected.aux_logits2, atol=1e-5, rtol=1e-4)
    assert isinstance(model.eval()(x), torch.Tensor)


def test_aux_heads_and_transform_input_match_torchvision():
    check_aux_heads_and_transform_input_match_torchvision()


def test_any_channels_and_classes_at_the_true_minimum_size():
    model = cnnzoo.create_model("googlenet", in_chans=1, num_classes=7, aux_logits=True)
    h, w = model.default_cfg.min_input_size
    with torch.no_grad():
        logits, aux1, aux2 = model.train()(torch.randn(2, 1, h, w))
    assert logits.shape == aux1.shape == aux2.shape == (2, 7)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, h, w)).shape == (2, 7)
        with pytest.raises(RuntimeError):
            model.forward_features(torch.randn(2, 1, h - 1, w - 1))
        maps = FeatureExtractor(model)(torch.randn(1, 1, 32, 32))
        assert (
            [m.shape[1] for m in maps]
            == [f["num_chs"] for f in model.feature_info]
            == [64, 192, 480, 832, 1024]
        )
        assert [
            m.shape[-1] * f["reduction"] for m, f in zip(maps, model.feature_info, strict=True)
        ] == [32] * 5
    model.reset_classifier(0)
    assert model.aux1 is None
    assert model.train()(torch.randn(2, 1, h, w)).shape == (2, 1024)


def test_features_only_builds():
    feats = cnnzoo.create_model("googlenet", features_only=True, out_indices=[-1]).eval()
    with torch.no_grad():
        (y,) = feats(torch.randn(1, 3, 32, 32))
    assert y.shape == (1, 1024, 1, 1)


def test_torchvision_weights_for_another_class_count_reset_every_head(tmp_path):
    torch.save(tvm.googlenet(init_weights=True).state_dict(), tmp_path / "tv.pth")
    with pytest.warns(UserWarning, match="aux1.fc2"):
        model = cnnzoo.create_model(
            "googlenet", num_classes=10, aux_logits=True, pretrained=str(tmp_path / "tv.pth")
        )
    assert model.fc.out_features == model.aux1.fc2.out_features == model.aux2.fc2.out_features == 10
    logits, aux1, aux2 = model.train()(torch.randn(2, 3, 64, 64))
    assert logits.shape == aux1.shape == aux2.shape == (2, 10)


def check_aux_heads_by_hand() -> None:
    """Section 5: aux1 on the output of 4a, aux2 on that of 4d, each an average pool to 4x4,
    a 1x1 conv to 128 with ReLU, FC 1024 with ReLU, dropout (off here) and FC to the classes;
    the model returns (logits, aux1, aux2) in training mode. Every tensor random, BN in eval
    mode so that the batch does not matter."""
    model = randomize_all(
        cnnzoo.create_model("googlenet", num_classes=10, aux_logits=True, aux_drop_rate=0.0)
    ).train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    taps = {}
    for name in ("inception4a", "inception4d"):
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: taps.__setitem__(name, out)
        )
    with torch.no_grad():
        _, aux1, aux2 = model(torch.randn(2, 3, 64, 64))
        for name, head, out in (
            ("inception4a", model.aux1, aux1),
            ("inception4d", model.aux2, aux2),
        ):
            y = F.conv2d(F.adaptive_avg_pool2d(taps[name], 4), head.conv.conv.weight)
            y = F.linear(bn_eval(y, head.conv.bn).relu().flatten(1), head.fc1.weight, head.fc1.bias)
            expected = F.linear(y.relu(), head.fc2.weight, head.fc2.bias)
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_aux_heads_equal_the_paper_built_by_hand():
    check_aux_heads_by_hand()


def test_training_configs_use_the_aux_heads_with_weight_0_3():
    names = [c for c in list_configs() if load_config(c).model.type == "googlenet"]
    assert names
    for name in names:
        cfg = load_config(name)
        assert cfg.model.aux_logits is True and cfg.loss.aux_weight == 0.3, name
