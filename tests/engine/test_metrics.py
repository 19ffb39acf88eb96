import pytest
import torch

from cnnzoo.engine.metrics import Meter


def test_classification_metrics_and_confusion():
    m = Meter(5)
    logits = torch.tensor(
        [
            [9.0, 1, 0, 0, 0],
            [0, 9, 8, 0, 0],
            [0, 7, 9, 0, 0],
            [1, 2, 3, 4, 5],
            [5, 4, 3, 2, 1],
            [0, 0, 0, 0, 9],
        ]
    )
    y = torch.tensor([0, 2, 2, 4, 4, 4])
    m.update(logits[:3], y[:3], torch.tensor(1.0))
    m.update(logits[3:], y[3:], torch.tensor(2.0))
    out = m.compute("val/")
    assert out["val/loss"] == pytest.approx(1.5)
    assert out["val/top1"] == pytest.approx(100 * 4 / 6)
    assert out["val/top5"] == pytest.approx(100.0)
    assert m.confusion[2].tolist() == [0, 1, 1, 0, 0]
    assert m.confusion[4].tolist() == [1, 0, 0, 0, 2]
    per = m.per_class()
    assert per[0] == 100.0 and per[2] == 50.0 and per[4] == pytest.approx(100 * 2 / 3)
    assert per[1] != per[1]  # no samples: NaN


def test_top5_absent_below_five_classes_and_soft_targets():
    m = Meter(3)
    m.update(torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[0.2, 0.7, 0.1]]))
    out = m.compute()
    assert "top5" not in out and out["top1"] == 100.0


def test_regression_metrics():
    m = Meter(10, regression=True)
    m.update(torch.tensor([[1.2], [2.6], [-0.4], [12.0]]), torch.tensor([1, 2, 0, 9]))
    out = m.compute()
    assert out["mae"] == pytest.approx((0.2 + 0.6 + 0.4 + 3.0) / 4)
    assert out["rmse"] == pytest.approx(((0.04 + 0.36 + 0.16 + 9.0) / 4) ** 0.5)
    assert out["top1"] == pytest.approx(75.0)  # 1, 3 (wrong), 0, clamped 9
    assert m.confusion[2, 3] == 1 and m.confusion[9, 9] == 1
