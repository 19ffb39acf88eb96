# LeNet-5 on MNIST with its paper's tanh units: SGD with momentum, 20 epochs (~99% test accuracy).
_base_ = [
    "./_base_/models/lenet5.py",
    "./_base_/datasets/mnist.py",
    "./_base_/schedules/20e.py",
    "./_base_/default_runtime.py",
]
optimizer = dict(lr=0.05)
