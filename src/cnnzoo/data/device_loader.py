"""The fast path: the whole split kept on the training device as one uint8 tensor.

Airbench's approach: no workers, no host-to-device copies per step; a batch is one indexing
operation, finished like every other path's (:class:`~cnnzoo.data.batches.BatchIterable`).
"""

from __future__ import annotations

from torch import Tensor

from cnnzoo.data.batches import BatchIterable


class DeviceBatches(BatchIterable):
    """The fast path: the whole split is one uint8 tensor on the training device and a batch
    is one indexing operation."""

    def __init__(self, images: Tensor, labels: Tensor, **kwargs) -> None:
        super().__init__(labels, **kwargs)
        self.images = images.to(self.device)
        self._labels_dev = labels.to(self.device)

    def fetch(self, plan):
        for idx in plan:
            idx = idx.to(self.device)
            yield self.images[idx], self._labels_dev[idx]
