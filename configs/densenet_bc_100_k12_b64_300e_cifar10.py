# DenseNet-BC (L=100, k=12) on CIFAR-10 with the paper's recipe (Huang et al. 2017: batch 64,
# 300 epochs, 4.51% test error with augmentation).
_base_ = [
    "./_base_/models/densenet_bc_100_k12.py",
    "./_base_/datasets/cifar10.py",
    "./_base_/schedules/cifar_sgd_300e.py",
    "./_base_/default_runtime.py",
]
data = dict(train=dict(batch_size=64))
