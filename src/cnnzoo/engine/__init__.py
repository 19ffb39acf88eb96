"""Training and evaluation: the loop, losses, optimizers and schedules, metrics, checkpoints."""

from cnnzoo.engine.checkpoint import load_checkpoint, load_trained, save_checkpoint
from cnnzoo.engine.losses import Loss, build_loss
from cnnzoo.engine.metrics import Meter
from cnnzoo.engine.optim import Schedule, build_optimizer
from cnnzoo.engine.trainer import evaluate, train

__all__ = [
    "Loss",
    "Meter",
    "Schedule",
    "build_loss",
    "build_optimizer",
    "evaluate",
    "load_checkpoint",
    "load_trained",
    "save_checkpoint",
    "train",
]
