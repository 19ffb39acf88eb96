import pytest
import torch
import torch.nn as nn

import cnnzoo
from cnnzoo.analysis import (
    count_flops,
    separable_cost_ratio,
    separable_report,
    separable_vs_standard,
)

# LeNet-5 multiply-adds: C1 6*28*28*25, C3 16*10*10*6*25, C5 400*120, F6 120*84, output 84*10
LENET5_MACS = 117_600 + 240_000 + 48_000 + 10_080 + 840


def test_lenet5_macs_by_hand():
    counts = count_flops(cnnzoo.create_model("lenet5"), (1, 32, 32))
    assert counts["macs"] == LENET5_MACS
    assert counts["flops"] == 2 * LENET5_MACS, "the counter counts a multiply-add as 2 FLOPs"
    assert set(counts["by_operator"]) >= {"convolution"}


def test_meta_device_counts_the_same_and_batch_scales():
    with torch.device("meta"):
        model = cnnzoo.create_model("lenet5")
    assert count_flops(model, (1, 32, 32))["macs"] == LENET5_MACS
    assert count_flops(model, (1, 32, 32), batch_size=3)["macs"] == 3 * LENET5_MACS


def test_conv_formula():
    conv = nn.Conv2d(3, 8, 3, bias=False)
    assert count_flops(conv, (3, 10, 10))["macs"] == 8 * 8 * 8 * 3 * 9


def test_separable_ratio_matches_mobilenet_eq5():
    assert separable_cost_ratio(3, 256) == pytest.approx(0.11502, abs=1e-5)
    r = separable_vs_standard(256, 256, 3, 14)
    assert r["standard_macs"] == 256 * 256 * 9 * 14 * 14
    assert r["measured_ratio"] == pytest.approx(r["formula_ratio"], rel=1e-12)
    assert "0.1150" in separable_report()
