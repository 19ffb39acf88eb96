import pytest
import torch

import cnnzoo
from cnnzoo.errors import ConfigError, InputShapeError, UnknownNameError


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownNameError, match="did you mean: lenet5"):
        cnnzoo.create_model("lenet")


def test_defaults_come_from_the_variant():
    m = cnnzoo.create_model("lenet5")
    assert (m.num_classes, m.in_chans) == (10, 1)
    assert m.default_cfg.input_size == (1, 32, 32)


def test_wrong_channels_and_too_small_inputs_are_named():
    m = cnnzoo.create_model("lenet5")
    with pytest.raises(InputShapeError, match="in_chans=3"):
        m(torch.randn(1, 3, 32, 32))
    with pytest.raises(InputShapeError, match="at least 28x28"):
        m(torch.randn(1, 1, 20, 20))


def test_unknown_architecture_argument_lists_valid_ones():
    with pytest.raises(ConfigError, match="drop_rate"):
        cnnzoo.create_model("lenet5", depth=3)


def test_features_only_returns_stage_maps():
    f = cnnzoo.create_model("lenet5", features_only=True, out_indices=[1])
    (y,) = f(torch.randn(2, 1, 28, 28))
    assert y.shape == (2, 16, 5, 5)
    assert f.feature_info[0]["num_chs"] == 16
