"""Weight averaging during training: Lookahead, as airbench uses it."""

from __future__ import annotations

import torch
import torch.nn as nn


class Lookahead:
    """Lookahead (Zhang, Lucas, Hinton and Ba 2019): every ``k`` optimizer steps the slow
    weights move ``alpha`` of the way to the fast (trained) weights, and the fast weights
    restart from them. airbench (Jordan 2024) applies it, as an EMA with the pull-back, to all
    floating-point state, BatchNorm statistics included; so does this class.

    :meth:`sync` does one such update at once; the trainer calls it at every epoch end, so
    the weights that are validated and checkpointed are the slow ones
    (:class:`~cnnzoo.engine.callbacks.LookaheadAveraging` also saves the slow copy mid-epoch).
    """

    def __init__(self, model: nn.Module, k: int = 5, alpha: float = 0.5) -> None:
        self.k, self.alpha = k, float(alpha)
        self.fast = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.slow = [t.detach().clone() for t in self.fast]
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        """Count one optimizer step; every ``k``-th one updates the weights."""
        self.steps += 1
        if self.steps % self.k == 0:
            self.sync()

    @torch.no_grad()
    def sync(self) -> None:
        """slow += alpha * (fast - slow); fast = slow."""
        for slow, fast in zip(self.slow, self.fast, strict=True):
            slow.lerp_(fast, self.alpha)
            fast.copy_(slow)
        self.steps = 0
