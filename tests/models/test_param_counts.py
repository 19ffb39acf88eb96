"""Every variant's parameter count against a published number, counted on the meta device.

``expected`` is either an exact count (an int: torchvision's documented ``num_params``, or
timm 1.0's model of the same name counted on the meta device) or a paper's rounded figure
(a string such as ``"0.27M"``), which must agree to that figure's rounding (0.27M: within
5,000). All counts are at the variant's default configuration: 1000 classes and 3 channels
for ImageNet models, 10 classes for the CIFAR ones. ``deployed`` rows count the model after
:func:`cnnzoo.reparameterize_model` (RepVGG's inference-time form).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import cnnzoo

TV = "torchvision 0.29 docs, num_params"
TIMM = "timm 1.0 {}, counted on meta"
MMPRE_REPVGG = "mmpretrain configs/repvgg README ({} column)"


@dataclass(frozen=True)
class Count:
    name: str
    expected: int | str
    source: str
    deployed: bool = False


TABLE = [
    Count(
        "lenet5",
        61_706,
        "d2l 7.6 LeNet (full C3, linear output), by formula; the paper's sparse C3 has ~60k",
    ),
    Count("alexnet", 61_100_840, TV),
    Count(
        "alexnet_paper",
        60_965_224,
        "Krizhevsky et al. 2012 ('60 million'): two-GPU net, groups=2 in conv2/4/5, by formula",
    ),
    Count("vgg11", 132_863_336, TV),
    Count("vgg11_bn", 132_868_840, TV),
    Count("vgg13", 133_047_848, TV),
    Count("vgg13_bn", 133_053_736, TV),
    Count("vgg16", 138_357_544, TV),
    Count("vgg16_bn", 138_365_992, TV),
    Count("vgg19", 143_667_240, TV),
    Count("vgg19_bn", 143_678_248, TV),
    Count("googlenet", 6_624_904, TV + " (without the auxiliary heads)"),
    Count("resnet18", 11_689_512, TV),
    Count("resnet34", 21_797_672, TV),
    Count("resnet50", 25_557_032, TV),
    Count("resnet101", 44_549_160, TV),
    Count("resnet152", 60_192_808, TV),
    Count("resnet20", "0.27M", "He et al. 2016, Table 6 (CIFAR-10)"),
    Count("resnet32", "0.46M", "He et al. 2016, Table 6 (CIFAR-10)"),
    Count("resnet44", "0.66M", "He et al. 2016, Table 6 (CIFAR-10)"),
    Count("resnet56", "0.85M", "He et al. 2016, Table 6 (CIFAR-10)"),
    Count("resnet110", "1.7M", "He et al. 2016, Table 6 (CIFAR-10)"),
    Count("resnext50_32x4d", 25_028_904, TV),
    Count("resnext101_32x8d", 88_791_336, TV),
    Count("wide_resnet50_2", 68_883_240, TV),
    Count("wrn28_10", "36.5M", "Zagoruyko and Komodakis 2016, WRN-28-10 (CIFAR-10)"),
    Count("preact_resnet18", 11_687_720, TIMM.format("resnetv2_18")),
    Count("preact_resnet34", 21_795_880, TIMM.format("resnetv2_34")),
    Count("preact_resnet50", 25_549_352, TIMM.format("resnetv2_50")),
    Count("preact_resnet101", 44_541_480, TIMM.format("resnetv2_101")),
    Count("preact_resnet152", 60_185_128, TIMM.format("resnetv2_152")),
    Count("preact_resnet110", "1.7M", "He et al. 2016 (identity mappings), Table 3 (CIFAR)"),
    Count("preact_resnet164", "1.7M", "He et al. 2016 (identity mappings), Table 3 (CIFAR)"),
    Count("se_resnet18", 11_778_592, TIMM.format("legacy_seresnet18")),
    Count("se_resnet34", 21_958_868, TIMM.format("legacy_seresnet34")),
    Count("se_resnet50", 28_088_024, TIMM.format("seresnet50")),
    Count("se_resnet101", 49_326_872, TIMM.format("seresnet101")),
    Count("se_resnet152", 66_821_848, TIMM.format("seresnet152")),
    Count("se_resnext50_32x4d", 27_559_896, TIMM.format("seresnext50_32x4d")),
    Count("densenet121", 7_978_856, TV),
    Count("densenet161", 28_681_000, TV),
    Count("densenet169", 14_149_480, TV),
    Count("densenet201", 20_013_928, TV),
    Count("densenet_bc_100_k12", "0.8M", "Huang et al. 2017, Table 2 (DenseNet-BC L=100 k=12)"),
    Count("xception", 22_855_952, "Chollet 2017, Table 3; = " + TIMM.format("legacy_xception")),
    Count("mobilenetv1_100", 4_231_976, TIMM.format("mobilenetv1_100") + "; paper 4.2M"),
    Count("mobilenetv1_075", "2.6M", "Howard et al. 2017, Table 6"),
    Count("mobilenetv1_050", "1.3M", "Howard et al. 2017, Table 6"),
    Count("mobilenetv1_025", "0.5M", "Howard et al. 2017, Table 6"),
    Count("mobilenet_v2", 3_504_872, TV),
    Count("mobilenet_v2_050", 1_968_680, TIMM.format("mobilenetv2_050")),
    Count("mobilenet_v2_075", 2_636_424, TIMM.format("mobilenetv2_075")),
    Count("mobilenet_v2_140", 6_108_776, TIMM.format("mobilenetv2_140")),
    Count("shufflenet_v1_g3", "1.87M", "mmpretrain shufflenet-v1-1x_16xb64_in1k (1x, g=3)"),
    Count(
        "shufflenet_v1_g8",
        "2.4M",
        "megvii-model/ShuffleNet-Series ShuffleNetV1 README (1.0x, group=8)",
    ),
    Count("shufflenet_v2_x0_5", 1_366_792, TV),
    Count("shufflenet_v2_x1_0", 2_278_604, TV),
    Count("shufflenet_v2_x1_5", 3_503_624, TV),
    Count("shufflenet_v2_x2_0", 7_393_996, TV),
    Count("squeezenet1_0", 1_248_424, TV),
    Count("squeezenet1_1", 1_235_496, TV),
    Count("repvgg_a0", 9_108_968, TIMM.format("repvgg_a0")),
    Count("repvgg_a1", 14_092_264, TIMM.format("repvgg_a1")),
    Count("repvgg_a2", 28_210_600, TIMM.format("repvgg_a2")),
    Count("repvgg_b0", 15_817_960, TIMM.format("repvgg_b0")),
    Count("repvgg_b1", 57_415_016, TIMM.format("repvgg_b1")),
    Count("repvgg_b1g2", "45.78M", MMPRE_REPVGG.format("train")),
    Count("repvgg_b1g4", 39_966_056, TIMM.format("repvgg_b1g4")),
    Count("repvgg_b2", 89_022_376, TIMM.format("repvgg_b2")),
    Count("repvgg_b2g4", 61_758_376, TIMM.format("repvgg_b2g4")),
    Count("repvgg_b3", 123_085_288, TIMM.format("repvgg_b3")),
    Count("repvgg_b3g4", 83_825_128, TIMM.format("repvgg_b3g4")),
    Count("repvgg_a0", "8.31M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_a1", "12.79M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_a2", "25.5M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_b0", "14.34M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_b1", "51.83M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_b1g2", "41.36M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_b1g4", "36.13M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_b2", "80.32M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_b2g4", "55.78M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_b3", "110.96M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("repvgg_b3g4", "75.63M", MMPRE_REPVGG.format("deploy"), deployed=True),
    Count("mixer_s16_224", 18_528_264, TIMM.format("mixer_s16_224")),
    Count("mixer_b16_224", 59_880_472, TIMM.format("mixer_b16_224")),
    Count("mixer_l16_224", 208_196_168, TIMM.format("mixer_l16_224")),
    Count("efficientnet_b0", 5_288_548, TV),
    Count("efficientnet_b1", 7_794_184, TV),
    Count("efficientnet_b2", 9_109_994, TV),
    Count("efficientnet_b3", 12_233_232, TV),
    Count("efficientnet_b4", 19_341_616, TV),
    Count("efficientnet_b5", 30_389_784, TV),
    Count("efficientnet_b6", 43_040_704, TV),
    Count("efficientnet_b7", 66_347_960, TV),
    Count(
        "airbench94",
        1_972_792,
        "Jordan 2024 gives no count; by formula from airbench94's layers: 2x2 whitening conv "
        "3->24 with bias (312) + conv groups 24->64->256->256 with BatchNorm (1,969,920) + "
        "bias-free linear 256->10 (2,560)",
    ),
]

# Registered variants with no published count to hold them to (each says why).
NON_PAPER = {
    "resnet14": "CIFAR ResNet with n=2; He et al. 2016 report depths 20, 32, 44, 56, 110, 1202 only",
    "repvgg_b3g2": "in no table we could check (the paper's, timm's, mmpretrain's)",
    "shufflenet_v1_g1": "the ShuffleNet paper gives only MFLOPs for 1x g=1, no parameter count",
    "shufflenet_v1_g2": "the ShuffleNet paper gives only MFLOPs for 1x g=2, no parameter count",
    "shufflenet_v1_g4": "the ShuffleNet paper gives only MFLOPs for 1x g=4, no parameter count",
}


def tolerance(expected: int | str) -> tuple[int, int]:
    """(value, allowed |difference|): exact for an int, half a unit of the last printed digit
    for a rounded figure such as ``"0.27M"``."""
    if isinstance(expected, int):
        return expected, 0
    digits = expected.removesuffix("M")
    decimals = len(digits.partition(".")[2])
    return round(float(digits) * 1e6), round(0.5 * 10 ** (6 - decimals))


def count_params(name: str, deployed: bool) -> int:
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    if deployed:
        cnnzoo.reparameterize_model(model.eval())
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "row", TABLE, ids=[r.name + ("-deployed" if r.deployed else "") for r in TABLE]
)
def test_param_count(row: Count):
    if not cnnzoo.is_model(row.name):
        pytest.fail(f"{row.name} is in the parameter table but not registered")
    value, tol = tolerance(row.expected)
    n = count_params(row.name, row.deployed)
    assert abs(n - value) <= tol, (
        f"{row.name}: {n:,} parameters, expected {row.expected} ({row.source})"
    )


def test_table_covers_every_registered_model():
    listed = {r.name for r in TABLE}
    missing = sorted(set(cnnzoo.list_models()) - listed - set(NON_PAPER))
    assert not missing, f"registered models without a published parameter count: {missing}"


def test_non_paper_list_is_current():
    assert not set(NON_PAPER) & {r.name for r in TABLE}
    stale = sorted(n for n in NON_PAPER if not cnnzoo.is_model(n))
    assert not stale, f"NON_PAPER lists models that are not registered: {stale}"


@pytest.mark.parametrize(
    "expected, result",
    [
        (61_706, (61_706, 0)),
        ("0.27M", (270_000, 5_000)),
        ("1.7M", (1_700_000, 50_000)),
        ("8.31M", (8_310_000, 5_000)),
    ],
)
def test_tolerance(expected, result):
    assert tolerance(expected) == result
