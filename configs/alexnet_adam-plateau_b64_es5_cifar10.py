# The tutorials' AlexNet on CIFAR-10: images resized to 224x224, Adam at LR 1e-3 with weight
# decay 1e-4, LR / 10 when the validation loss stalls, early stopping after 5 epochs
# without improvement, batch 64, 10% of the training set held out for validation.
_base_ = [
    "./_base_/models/alexnet.py",
    "./_base_/datasets/cifar10_224.py",
    "./_base_/schedules/adam_plateau.py",
    "./_base_/default_runtime.py",
]
data = dict(val_split=0.1, train=dict(batch_size=64))
early_stopping = dict(_delete_=True, monitor="val/loss", mode="min", patience=5, min_delta=0.0)
