# ResNeXt-50 32x4d (CIFAR stem) on CIFAR-10, SGD + cosine annealing over 200 epochs.
_base_ = [
    "./_base_/models/resnext50_32x4d_cifar.py",
    "./_base_/datasets/cifar10.py",
    "./_base_/schedules/cosine_200e.py",
    "./_base_/default_runtime.py",
]
