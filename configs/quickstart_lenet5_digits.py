# The offline quick start (`cnnzoo train` with no config): LeNet-5 on scikit-learn's digits,
# resized to 32x32. Needs no download and reaches >= 95% test accuracy in well under a minute
# on two CPU cores.
_base_ = [
    "./_base_/models/lenet5.py",
    "./_base_/datasets/digits.py",
    "./_base_/schedules/adam_20e.py",
    "./_base_/default_runtime.py",
]
optimizer = dict(lr=3e-3)
train_cfg = dict(max_epochs=10)
log = dict(interval=10, tensorboard=False)
