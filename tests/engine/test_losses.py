import pytest
import torch
import torch.nn.functional as F

from cnnzoo.config import load_config
from cnnzoo.engine.losses import build_loss
from cnnzoo.errors import ConfigError, UnknownNameError


def test_cross_entropy_int_and_soft_targets_agree():
    logits = torch.randn(8, 5)
    y = torch.randint(0, 5, (8,))
    loss = build_loss(dict(type="cross_entropy"))
    assert torch.allclose(loss(logits, y), F.cross_entropy(logits, y))
    assert torch.allclose(loss(logits, F.one_hot(y, 5).float()), loss(logits, y))
    assert not loss.regression


def test_label_smoothing_raises_loss_of_confident_prediction():
    logits = torch.tensor([[20.0, 0.0, 0.0]])
    y = torch.tensor([0])
    plain = build_loss(dict(type="cross_entropy"))(logits, y)
    smooth = build_loss(dict(type="cross_entropy", label_smoothing=0.1))(logits, y)
    assert smooth > plain + 0.5


@pytest.mark.parametrize("kind", ["mae", "mse", "rmse", "huber"])
def test_regression_losses_read_the_label_value(kind):
    pred = torch.tensor([[0.5], [2.5], [1.0], [2.0], [7.0], [9.0]])  # one output per image
    y = torch.tensor([1, 2, 3, 3, 4, 7])  # digit values
    err = pred.squeeze(1) - y.float()  # -0.5, 0.5, -2, -1, 3, 2
    expected = {
        "mae": err.abs().mean(),
        "mse": err.square().mean(),
        "rmse": err.square().mean().sqrt(),
        "huber": torch.where(err.abs() < 1, 0.5 * err.square(), err.abs() - 0.5).mean(),
    }[kind]
    loss = build_loss(dict(type=kind))
    assert loss.regression
    assert loss(pred, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_regression_soft_targets_use_their_expected_value():
    soft = torch.tensor([[0.0, 0.5, 0.5]])  # expected value 1.5
    assert build_loss(dict(type="mae"))(torch.tensor([[1.5]]), soft).item() == pytest.approx(0.0)


def test_aux_outputs_weighted_in_training_only():
    main, aux1, aux2 = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 0])
    loss = build_loss(dict(type="cross_entropy", aux_weight=0.3))
    ce = lambda o: F.cross_entropy(o, y)  # noqa: E731
    assert torch.allclose(loss((main, aux1, aux2), y), ce(main) + 0.3 * (ce(aux1) + ce(aux2)))
    assert torch.allclose(loss(main, y), ce(main))  # eval: plain logits


def test_bad_loss_configs():
    with pytest.raises(UnknownNameError, match="cross_entropy"):
        build_loss(dict(type="crossentropy"))
    with pytest.raises(ConfigError, match="loss 'mse' takes: aux_weight"):
        load_config(None, {"loss.type": "mse", "model.num_classes": 1, "loss.smoothing": 0.1})
    with pytest.raises(ConfigError, match="num_classes=1"):
        build_loss(dict(type="mse"))(torch.randn(2, 10), torch.tensor([1, 2]))
