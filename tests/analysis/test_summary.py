import pytest
import torch
import torch.nn as nn

import cnnzoo
from cnnzoo.analysis import layer_summary
from cnnzoo.errors import ConfigError


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
