# ResNet-18 with a CIFAR stem on CIFAR-10, the "1x" schedule (12 epochs, LR / 10 after 8 and 11).
_base_ = [
    "./_base_/models/resnet18_cifar.py",
    "./_base_/datasets/cifar10.py",
    "./_base_/schedules/1x.py",
    "./_base_/default_runtime.py",
]
