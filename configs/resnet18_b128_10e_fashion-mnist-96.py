# d2l's ResNet-18 (chapter 8.6) on Fashion-MNIST resized to 96x96: plain SGD at LR 0.01,
# batch 128, 10 epochs, one input channel.
_base_ = [
    "./_base_/models/resnet18.py",
    "./_base_/datasets/fashion_mnist_96.py",
    "./_base_/schedules/sgd_10e.py",
    "./_base_/default_runtime.py",
]
model = dict(in_chans=1)
