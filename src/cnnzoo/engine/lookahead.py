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

    ``ramp_steps`` > 0 is airbench94's schedule: the step size starts at 1 (the slow weights
    follow the fast ones) and falls to ``alpha`` at step ``ramp_steps`` (the run's last) as
    ``1 - (1 - alpha) * (step / ramp_steps) ** 3``, so the averaging acts late in training,
    not while the weights move fast. airbench's is ``alpha = 1 - 0.95 ** 5``, about 0.23.
    """

    def __init__(self, model: nn.Module, k: int = 5, alpha: float = 0.5, ramp_steps: int = 0):
        self.k, self.alpha, self.ramp_steps = k, float(alpha), int(ramp_steps)
        self.fast = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.slow = [t.detach().clone() for t in self.fast]
        self.steps = 0

    def alpha_at(self, global_step: int) -> float:
        """The step size of an update made after ``global_step`` optimizer steps."""
        if self.ramp_steps <= 0:
            return self.alpha
        done = min(global_step / self.ramp_steps, 1.0)
        return 1.0 - (1.0 - self.alpha) * done**3

    @torch.no_grad()
    def step(self, global_step: int = 0) -> None:
        """Count one optimizer step (the run's ``global_step``-th); every ``k``-th one updates
        the weights."""
        self.steps += 1
        if self.steps % self.k == 0:
            self.sync(global_step)

    @torch.no_grad()
    def sync(self, global_step: int = 0) -> None:
        """slow += alpha * (fast - slow); fast = slow."""
        alpha = self.alpha_at(global_step)
        for slow, fast in zip(self.slow, self.fast, strict=True):
            slow.lerp_(fast, alpha)
            fast.copy_(slow)
        self.steps = 0
