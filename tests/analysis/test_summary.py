import dataclasses
import json

import pytest
import torch
import torch.nn as nn

import cnnzoo
from cnnzoo.analysis import Summary, count_flops, layer_summary
from cnnzoo.analysis.flops import format_count
from cnnzoo.errors import ConfigError
from cnnzoo.layers import DropPath


class TwoHeads(nn.Module):
    """Not a Sequential: nested blocks, a shared activation, a tuple output, a frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2))
        self.act = nn.ReLU()
        self.split = Split()
        self.head = nn.Linear(2, 3)
        self.head.requires_grad_(False)

    def forward(self, x):
        a, b = self.split(self.act(self.stem(x)))
        return self.head(self.act(a + b).mean((2, 3)))


class Split(nn.Module):
    def forward(self, x):
        return x, x * 2


def test_lenet5_shapes_and_totals():
    s = layer_summary(cnnzoo.create_model("lenet5"), (1, 32, 32))
    shapes = {r.name: r.output_shapes[0] for r in s.rows if r.first_call}
    assert shapes["c1"] == (1, 6, 28, 28)
    assert shapes["s4"] == (1, 16, 5, 5)
    assert shapes["fc"] == (1, 10)
    assert s.total_params == 61_706 == s.trainable_params
    assert sum(n for r in s.visible_rows() if (n := s.shown_params(r))) == s.total_params
    text = str(s)
    assert "Total params: 61,706" in text and "c3 (Conv2d)" in text and "[1, 16, 10, 10]" in text


def test_any_module_tuples_shared_modules_and_frozen_params():
    model = TwoHeads().train()
    s = layer_summary(model, (1, 4, 4))
    assert model.training, "the model's mode is restored"
    split = next(r for r in s.rows if r.name == "split")
    assert split.output_shapes == [(1, 2, 4, 4), (1, 2, 4, 4)]
    acts = [r for r in s.rows if r.name == "act"]
    assert [r.first_call for r in acts] == [True, False]
    stem = next(r for r in s.rows if r.name == "stem")
    assert (stem.params, stem.total_params, stem.is_leaf) == (0, 20 + 4, False)
    assert s.total_params == 20 + 4 + 9 and s.non_trainable_params == 9
    # leaf outputs, float32, batch 1: conv, bn, act, split (2 maps), act, head
    assert s.activation_mb * 1024**2 == 4 * (32 + 32 + 32 + 64 + 32 + 3)
    assert [r.name for r in s.rows[:3]] == ["stem", "stem.0", "stem.1"], (
        "parents come before children"
    )


def test_depth_folds_children_into_their_parent():
    s = layer_summary(TwoHeads(), (1, 4, 4), depth=1)
    assert {r.depth for r in s.visible_rows()} == {1}
    stem = next(r for r in s.visible_rows() if r.name == "stem")
    assert s.shown_params(stem) == 24
    assert "stem.0" not in str(s)
    assert sum(n for r in s.visible_rows() if (n := s.shown_params(r))) == s.total_params


@pytest.mark.parametrize("size, depth", [((3, 32), None), ((3, 0, 32), None), ((1, 32, 32), 0)])
def test_bad_arguments_are_config_errors(size, depth):
    with pytest.raises(ConfigError):
        layer_summary(cnnzoo.create_model("lenet5"), size, depth=depth)


def test_works_on_the_meta_device():
    with torch.device("meta"):
        model = cnnzoo.create_model("lenet5")
    s = layer_summary(model, (1, 32, 32))
    assert s.total_params == 61_706
    assert s.rows[0].output_shapes == [(1, 6, 28, 28)]


def _meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return cnnzoo.create_model(name)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "mixer_s16_224"])
def test_mult_adds_column_adds_up_to_the_models_macs(name):
    model = _meta(name)
    macs = count_flops(model, (3, 224, 224))["macs"]
    whole = layer_summary(model, (3, 224, 224))
    assert whole.total_macs == macs and whole.root_macs == 0
    for depth in (None, 1, 2):
        s = dataclasses.replace(whole, depth=depth)
        assert sum(m for r in s.visible_rows() if (m := s.shown_macs(r))) == macs, depth
    assert f"Total mult-adds: {format_count(macs)} ({macs:,};" in str(whole)


def test_mult_adds_of_layers_and_of_a_forwards_own_work():
    s = layer_summary(cnnzoo.create_model("lenet5"), (1, 32, 32))
    macs = {r.name: r.macs for r in s.rows if r.first_call}
    assert (macs["c1"], macs["c3"], macs["fc"], macs["s2"]) == (117_600, 240_000, 840, 0)
    assert "c1 (Conv2d)     [1, 6, 28, 28]       156       118K" in str(s)

    class Attention(nn.Module):  # a matmul of its own forward, besides its child's
        def __init__(self) -> None:
            super().__init__()
            self.qk = nn.Linear(4, 8, bias=False)

        def forward(self, x):
            q, k = self.qk(x).chunk(2, dim=-1)
            return q @ k.transpose(-1, -2)

    model = nn.Sequential(nn.Flatten(1, 2), Attention())
    s = layer_summary(model, (1, 6, 4))  # 6 tokens of 4 numbers
    attn = next(r for r in s.rows if r.type == "Attention")
    assert (attn.total_macs, attn.macs) == (4 * 6 * 8 + 6 * 6 * 4, 6 * 6 * 4)
    assert s.total_macs == sum(m for r in s.visible_rows() if (m := s.shown_macs(r)))


class Reordered(nn.Module):
    """Defined in one order, run in another; no-op layers between real ones."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)
        self.drop = nn.Dropout(0.5)
        self.skip = nn.Identity()
        self.path = DropPath(0.2)
        self.act = nn.ReLU(inplace=True)  # returns its input, but changed: a real layer
        self.body = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        x = self.skip(self.act(self.body(x)))
        return self.head(self.drop(self.path(x.mean((2, 3)))))


def test_rows_come_in_execution_order_without_no_op_layers():
    s = layer_summary(Reordered(), (1, 5, 5))
    assert [(r.name, r.type) for r in s.rows] == [
        ("body", "Conv2d"),
        ("act", "ReLU"),
        ("head", "Linear"),
    ]
    text = str(s)
    assert "Identity" not in text and "Dropout" not in text and "DropPath" not in text


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "mixer_s16_224"])
def test_zoo_rows_follow_the_forward_hooks(name):
    model = _meta(name)
    names = {m: n for n, m in model.named_modules() if m is not model}
    called = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda m, _args: called.append(names[m]) if m in names else None
    )
    try:
        s = layer_summary(model, (3, 224, 224))
    finally:
        handle.remove()
    no_ops = (nn.Identity, nn.Dropout, DropPath)
    assert {type(m) for m in model.modules()} & set(no_ops), "the model has no-op layers"
    real = [n for n in called if not isinstance(model.get_submodule(n), no_ops)]
    assert [r.name for r in s.rows] == real


def test_json_parses_and_round_trips():
    s = layer_summary(TwoHeads(), (1, 4, 4), depth=1)
    data = json.loads(s.to_json())
    assert data["total_macs"] == s.total_macs and data["depth"] == 1
    assert data["rows"][0]["name"] == "stem" and data["rows"][0]["output_shapes"] == [[1, 2, 4, 4]]
    back = Summary.from_dict(data)
    assert back == s and str(back) == str(s)


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0"),
        (840, "840"),
        (999, "999"),
        (1_000, "1K"),
        (10_080, "10.1K"),
        (416_520, "417K"),
        (999_499, "999K"),
        (999_500, "1M"),
        (11_689_512, "11.7M"),
        (1_814_073_344, "1.81G"),
        (3_776_958_464_000, "3777G"),
    ],
)
def test_counts_read_in_k_m_g(n, text):
    assert format_count(n) == text
