# SE-ResNet-18 (CIFAR stem) on CIFAR-10, SGD + cosine annealing over 200 epochs.
_base_ = [
    "./_base_/models/se_resnet18_cifar.py",
    "./_base_/datasets/cifar10.py",
    "./_base_/schedules/cosine_200e.py",
    "./_base_/default_runtime.py",
]
