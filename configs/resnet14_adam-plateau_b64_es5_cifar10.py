# The tutorials' small CIFAR-10 ResNet (2 basic blocks per stage) with their recipe: Adam at
# LR 1e-3, weight decay 1e-4, LR / 10 on a plateau, early stopping patience 5, batch 64.
_base_ = [
    "./_base_/models/resnet14.py",
    "./_base_/datasets/cifar10.py",
    "./_base_/schedules/adam_plateau.py",
    "./_base_/default_runtime.py",
]
data = dict(val_split=0.1, train=dict(batch_size=64))
early_stopping = dict(_delete_=True, monitor="val/loss", mode="min", patience=5, min_delta=0.0)
