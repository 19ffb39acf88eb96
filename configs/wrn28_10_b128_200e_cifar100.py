# Wide ResNet 28-10 on CIFAR-100 with the paper's schedule (Zagoruyko and Komodakis 2016:
# 18.85% test error with dropout).
_base_ = [
    "./_base_/models/wrn28_10.py",
    "./_base_/datasets/cifar100.py",
    "./_base_/schedules/cifar_sgd_200e.py",
    "./_base_/default_runtime.py",
]
model = dict(num_classes=100)
