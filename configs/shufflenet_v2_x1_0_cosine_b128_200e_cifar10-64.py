# shufflenet_v2_x1_0 on CIFAR-10 upsampled to 64x64 (an ImageNet-shaped network downsamples 32x, so 32x32
# inputs would leave a 1x1 final feature map); SGD + cosine annealing over 200 epochs.
_base_ = [
    "./_base_/models/shufflenet_v2_x1_0.py",
    "./_base_/datasets/cifar10_64.py",
    "./_base_/schedules/cosine_200e.py",
    "./_base_/default_runtime.py",
]
