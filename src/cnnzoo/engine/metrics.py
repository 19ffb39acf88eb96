"""Classification and regression metrics, accumulated batch by batch on the device.

A :class:`Meter` keeps sums (loss, hits, errors) and a confusion matrix as tensors, so a
loop never waits on the device per batch and several processes can add their counts up
(:meth:`Meter.all_reduce`). Regression models (one output, the label's value) are scored by
MAE/RMSE and by the accuracy of the rounded prediction, which also fills the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import Tensor


class Meter:
    """Running loss, top-1, top-5 (with >= 5 classes), per-class accuracy and confusion
    matrix (rows: true class, columns: predicted class)."""

    def __init__(
        self, num_classes: int, *, regression: bool = False, device: torch.device | str = "cpu"
    ) -> None:
        self.num_classes = num_classes
        self.regression = regression
        self.topk = 5 if num_classes >= 5 and not regression else 0
        # count, loss sum, top-5 hits, absolute error sum, squared error sum
        self.sums = torch.zeros(5, dtype=torch.float64, device=device)
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, output: Tensor, targets: Tensor, loss: Tensor | None = None) -> None:
        """Add a batch: ``output`` logits ``[B, K]`` (or values ``[B, 1]``), ``targets`` indices
        ``[B]`` or soft ``[B, K]`` (scored against their most likely class)."""
        output = output.detach().float()
        labels = targets.argmax(1) if targets.dim() == 2 else targets
        n = labels.shape[0]
        add = torch.zeros(5, dtype=torch.float64, device=self.sums.device)
        add[0] = n
        if loss is not None:
            add[1] = loss.detach().double() * n
        if self.regression:
            value = output.reshape(-1)
            err = value - labels.float()
            add[3], add[4] = err.abs().sum(), err.square().sum()
            pred = value.round().clamp(0, self.num_classes - 1).long()
        else:
            pred = output.argmax(1)
            if self.topk:
                add[2] = (output.topk(self.topk, dim=1).indices == labels[:, None]).any(1).sum()
        self.sums += add
        k = self.num_classes
        self.confusion += torch.bincount(labels * k + pred, minlength=k * k).view(k, k)

    def all_reduce(self) -> None:
        """Sum the counts of every process (no-op without torch.distributed)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums)
            dist.all_reduce(self.confusion)

    def per_class(self) -> list[float]:
        """Accuracy of each true class in % like :meth:`compute` (NaN for a class without
        samples)."""
        cm = self.confusion.double()
        return (100.0 * cm.diagonal() / cm.sum(1)).tolist()

    def compute(self, prefix: str = "") -> dict[str, float]:
        """``{prefix + 'loss': ..., 'top1': ..., 'top5'|'mae'|'rmse': ...}`` (accuracies in %)."""
        count, loss, top5, abs_err, sq_err = self.sums.tolist()
        count = max(count, 1.0)
        out = {"loss": loss / count, "top1": 100.0 * self.confusion.diagonal().sum().item() / count}
        if self.topk:
            out["top5"] = 100.0 * top5 / count
        if self.regression:
            out["mae"] = abs_err / count
            out["rmse"] = (sq_err / count) ** 0.5
        return {prefix + k: v for k, v in out.items()}


def scores_line(split: str, metrics: Mapping[str, float]) -> str:
    """The final scores as training and ``cnnzoo test`` print them, four significant digits:
    ``test  loss 0.148  top1 99.14  top5 100``."""
    return f"{split}  " + "  ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in metrics.items())
