# Wide ResNet 28-10 on CIFAR-10 with the paper's schedule (Zagoruyko and Komodakis 2016:
# 3.89% test error with dropout).
_base_ = [
    "./_base_/models/wrn28_10.py",
    "./_base_/datasets/cifar10.py",
    "./_base_/schedules/cifar_sgd_200e.py",
    "./_base_/default_runtime.py",
]
