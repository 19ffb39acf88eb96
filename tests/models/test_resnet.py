import warnings

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision

import cnnzoo
from cnnzoo.errors import CheckpointError, ConfigError, InputShapeError
from cnnzoo.models.resnet import PadShortcut
from zoo_helpers import assert_loads_reference, bn_eval, count_params, randomize_all

# torchvision's num_params; He et al. 2016 Table 6 (CIFAR); Zagoruyko & Komodakis 2016 Table 1
# (WRN-28-10: 36.5M); He et al. 2016b Table 2 (pre-act ResNet-110 / -164: 1.7M); timm for resnetv2.
PUBLISHED = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "wide_resnet50_2": 68_883_240,
    "preact_resnet18": 11_687_720,
    "preact_resnet34": 21_795_880,
    "preact_resnet50": 25_549_352,
    "preact_resnet101": 44_541_480,
    "preact_resnet152": 60_185_128,
}
PUBLISHED_MILLIONS = {
    "resnet20": 0.27,
    "resnet32": 0.46,
    "resnet44": 0.66,
    "resnet56": 0.85,
    "resnet110": 1.7,
    "preact_resnet110": 1.7,
    "preact_resnet164": 1.7,
    "wrn28_10": 36.5,
}
MEASURED = {
    "resnet14": 175_258,
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "preact_resnet110": 1_727_962,
    "preact_resnet164": 1_703_258,
    "wrn28_10": 36_479_194,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_equals_torchvision_or_timm(name):
    assert count_params(name) == PUBLISHED[name]


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_cifar_parameter_counts_match_the_papers(name):
    count = count_params(name)
    assert count == MEASURED[name]
    if name in PUBLISHED_MILLIONS:
        digits = 2 if PUBLISHED_MILLIONS[name] < 1 else 1
        assert round(count / 1e6, digits) == PUBLISHED_MILLIONS[name]


def check_same_outputs_as_torchvision(name: str) -> None:
    assert_loads_reference(name, torchvision.models.get_model(name), torch.randn(2, 3, 64, 64))


def check_same_outputs_as_timm(name: str) -> None:
    ref = cnnzoo.get_model_entry(name).cfg.timm
    assert_loads_reference(name, timm.create_model(ref), torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"])
def test_torchvision_state_dict_loads_and_gives_the_same_outputs(name):
    check_same_outputs_as_torchvision(name)


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "preact_resnet50"])
def test_timm_state_dict_loads_and_gives_the_same_outputs(name):
    check_same_outputs_as_timm(name)


def test_d2l_shape_trace_of_resnet18_on_fashion_mnist_sized_input():
    model = cnnzoo.create_model("resnet18", in_chans=1, num_classes=10).eval()
    shapes = {}
    for name in ["maxpool", "layer1", "layer2", "layer3", "layer4", "fc"]:
        module = model.get_submodule(name)
        module.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))
        )
    with torch.no_grad():
        model(torch.randn(1, 1, 96, 96))
    assert shapes == {
        "maxpool": (64, 24, 24),
        "layer1": (64, 24, 24),
        "layer2": (128, 12, 12),
        "layer3": (256, 6, 6),
        "layer4": (512, 3, 3),
        "fc": (10,),
    }


def option_a_by_hand(x: torch.Tensor, out_chs: int) -> torch.Tensor:
    """He et al. 2016, section 3.3 (A): identity with stride 2, extra channels all zero."""
    sub = x[:, :, ::2, ::2]
    return torch.cat((sub, sub.new_zeros(sub.shape[0], out_chs - sub.shape[1], *sub.shape[2:])), 1)


def cifar_block_by_hand(block, x: torch.Tensor) -> torch.Tensor:
    """A basic block of the CIFAR networks, as the papers draw it: post-activation (He et al.
    2016, Fig. 2: conv-BN-ReLU, conv-BN, add, ReLU) or pre-activation (He et al. 2016b,
    Fig. 4e: BN-ReLU-conv twice, add; a shortcut that changes shape starts from BN-ReLU(x)).
    The stride, on the first conv, is 2 where the width grows."""
    out_chs = block.conv1.out_channels
    stride = 2 if out_chs != x.shape[1] else 1
    pre = torch.relu(bn_eval(x, block.bn1)) if block.preact else x
    y = F.conv2d(pre, block.conv1.weight, stride=stride, padding=1)
    y = y if block.preact else bn_eval(y, block.bn1)
    y = F.conv2d(
        torch.relu(bn_eval(y, block.bn2) if block.preact else y), block.conv2.weight, padding=1
    )
    if block.preact:
        return y + (option_a_by_hand(pre, out_chs) if stride == 2 else x)
    y = bn_eval(y, block.bn2)
    return torch.relu(y + (option_a_by_hand(x, out_chs) if stride == 2 else x))


def check_cifar_forward_by_hand(name: str = "resnet20") -> None:
    """The whole CIFAR network (section 4.2) from :func:`cifar_block_by_hand`, every tensor
    random: conv3x3 (BN-ReLU unless pre-activation), 3 stages of 16/32/64 channels, (final
    BN-ReLU when pre-activation), global average pooling, FC."""
    model = randomize_all(cnnzoo.create_model(name)).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = F.conv2d(x, model.conv1.weight, padding=1)
        y = y if model.preact else torch.relu(bn_eval(y, model.bn1))
        for stage in (model.layer1, model.layer2, model.layer3):
            for block in stage:
                y = cifar_block_by_hand(block, y)
        y = torch.relu(bn_eval(y, model.norm)) if model.preact else y
        expected = F.linear(y.mean((2, 3)), model.fc.weight, model.fc.bias)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["resnet20", "preact_resnet110"])
def test_cifar_resnet_equals_the_paper_built_by_hand(name):
    check_cifar_forward_by_hand(name)


def test_option_a_shortcut_is_parameter_free_zero_padding():
    model = cnnzoo.create_model("resnet20")
    shortcut = model.layer2[0].downsample
    assert isinstance(shortcut, PadShortcut)
    assert (
        sum(
            p.numel() for p in model.modules() if isinstance(p, PadShortcut) for p in p.parameters()
        )
        == 0
    )
    x = torch.randn(2, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y, option_a_by_hand(x, 32))
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and not y[:, 16:].any()
    # option B: 1x1 conv + BN projections 16->32 and 32->64
    assert count_params("resnet20", shortcut="B") - count_params("resnet20") == (16 * 32 + 64) + (
        32 * 64 + 128
    )
    assert isinstance(cnnzoo.create_model("resnet14").layer2[0].downsample, torch.nn.Sequential)


@pytest.mark.parametrize(
    "name, size",
    [
        ("resnet18", 32),
        ("preact_resnet18", 32),
        ("resnet14", 4),
        ("resnet20", 4),
        ("preact_resnet110", 4),
        ("preact_resnet164", 4),
    ],
)
def test_min_input_size_is_true(name, size):
    model = cnnzoo.create_model(name).eval()
    assert model.default_cfg.min_input_size == (size, size)
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, model.num_classes)
    with pytest.raises(InputShapeError, match=f"at least {size}x{size}"):
        model(torch.randn(1, 3, size - 1, size))


def test_any_in_chans_and_num_classes_and_classifier_reset():
    model = cnnzoo.create_model("resnet18", in_chans=4, num_classes=5).eval()
    x = torch.randn(2, 4, 32, 32)
    assert model(x).shape == (2, 5)
    model.reset_classifier(0)
    assert model(x).shape == (2, 512)
    assert cnnzoo.create_model("wrn28_10", in_chans=1, num_classes=100)(
        torch.randn(2, 1, 8, 8)
    ).shape == (2, 100)


def test_torchvision_weights_adapt_to_one_channel_and_ten_classes(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = cnnzoo.create_model("resnet18", in_chans=1, num_classes=10, pretrained=str(path))
    assert any("classifier" in str(w.message) for w in caught)
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_another_models_checkpoint_is_refused_without_a_class_count_warning(tmp_path):
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the head is not the problem: no warning about it
        with pytest.raises(
            CheckpointError, match=r"unexpected keys: layer1\.2\..*shape mismatches: fc\.weight"
        ):
            cnnzoo.create_model("resnet18", num_classes=10, pretrained=str(tmp_path / "r34.pth"))


@pytest.mark.parametrize(
    "name, size, expected",
    [
        ("resnet50", 64, [(256, 16), (512, 8), (1024, 4), (2048, 2)]),
        ("resnet20", 32, [(16, 32), (32, 16), (64, 8)]),
        ("preact_resnet164", 32, [(64, 32), (128, 16), (256, 8)]),
    ],
)
def test_features_only_gives_one_map_per_stage(name, size, expected):
    features = cnnzoo.create_model(name, features_only=True).eval()
    with torch.no_grad():
        maps = features(torch.randn(1, 3, size, size))
    assert [(m.shape[1], m.shape[2]) for m in maps] == expected
    assert [(f["num_chs"], size // f["reduction"]) for f in features.feature_info] == expected


def test_feature_info_names_the_imagenet_stages():
    model = cnnzoo.create_model("resnet18")
    assert [(f["module"], f["reduction"]) for f in model.feature_info] == [
        ("layer1", 4),
        ("layer2", 8),
        ("layer3", 16),
        ("layer4", 32),
    ]
    cfg = model.default_cfg
    assert (cfg.first_conv, cfg.classifier, cfg.torchvision, cfg.timm) == (
        "conv1",
        "fc",
        "resnet18",
        "resnet18",
    )


def test_stochastic_depth_grows_linearly_to_drop_path_rate():
    model = cnnzoo.create_model("resnet20", drop_path_rate=0.2)
    rates = [
        b.drop_path.drop_prob for stage in (model.layer1, model.layer2, model.layer3) for b in stage
    ]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    assert all(b > a for a, b in zip(rates, rates[1:], strict=False))


def test_drop_rate_is_dropout_before_fc():
    model = cnnzoo.create_model("resnet20", drop_rate=0.5).train()
    pooled = model.forward_head(torch.ones(8, 64, 2, 2), pre_logits=True)
    assert set(pooled.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(
        model.eval().forward_head(torch.ones(1, 64, 2, 2), pre_logits=True), torch.ones(1, 64)
    )


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "preact_resnet18"])
def test_zero_init_residual_makes_every_block_start_as_identity(name):
    model = cnnzoo.create_model(name, zero_init_residual=True).eval()
    block = model.layer1[1]
    x = torch.randn(1, block.conv1.in_channels, 8, 8).relu()
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)


def test_wrn_dropout_sits_between_the_convs():
    model = cnnzoo.create_model("wrn28_10", dropout=0.3)
    assert model.layer1[0].drop.p == 0.3
    assert [
        m.out_channels
        for m in (model.conv1, model.layer1[0].conv2, model.layer2[0].conv2, model.layer3[0].conv2)
    ] == [
        16,
        160,
        320,
        640,
    ]


def test_bad_architecture_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="shortcut"):
        cnnzoo.create_model("resnet20", shortcut="C")
    with pytest.raises(ConfigError, match="Bottleneck"):
        cnnzoo.create_model("resnet18", groups=32)


@pytest.mark.parametrize("name", ["resnet14", "preact_resnet110", "se_resnet18", "preact_resnet18"])
def test_trains_with_every_regulariser_on(name):
    model = cnnzoo.create_model(name, drop_rate=0.1, drop_path_rate=0.1, dropout=0.1).train()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())


def last_in_branch(block) -> torch.Tensor:
    """The tensor that zero-init empties: the last BN scale, or the last conv of a
    pre-activation block."""
    if block.preact:
        return (block.conv3 if hasattr(block, "conv3") else block.conv2).weight
    return (block.bn3 if hasattr(block, "bn3") else block.bn2).weight


@pytest.mark.parametrize(
    "name, zero_init",
    [("resnet18", True), ("resnet50", True), ("se_resnet50", True), ("resnext50_32x4d", True)]
    + [("resnet20", False), ("preact_resnet18", False), ("wrn28_10", False)],
)
def test_imagenet_resnets_zero_init_the_last_bn_of_each_branch_as_timm(name, zero_init):
    for zero in (zero_init, not zero_init):  # the default, then the other on request
        model = cnnzoo.create_model(
            name, **({} if zero == zero_init else {"zero_init_residual": zero})
        )
        blocks = [b for stage in (model.layer1, model.layer2, model.layer3) for b in stage]
        assert all(last_in_branch(b).any() != zero for b in blocks)
