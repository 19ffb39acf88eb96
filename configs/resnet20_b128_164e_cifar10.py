# ResNet-20 on CIFAR-10 with the paper's schedule (He et al. 2016: 91.25% test accuracy).
_base_ = [
    "./_base_/models/resnet20.py",
    "./_base_/datasets/cifar10.py",
    "./_base_/schedules/cifar_sgd_164e.py",
    "./_base_/default_runtime.py",
]
