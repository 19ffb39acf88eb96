# GoogLeNet with its auxiliary classifiers on CIFAR-10 resized to 96x96 (d2l's size for
# ImageNet-shaped networks); SGD + cosine over 30 epochs.
_base_ = [
    "./_base_/models/googlenet.py",
    "./_base_/datasets/cifar10_96.py",
    "./_base_/schedules/cosine_30e.py",
    "./_base_/default_runtime.py",
]
