# Speedrun: 99% test accuracy on MNIST, on a 2-core CPU, in as little time as we could.
# Run: CNNZOO_DATA=<dir with MNIST/raw> cnnzoo train configs/speedrun/mnist_99.py
# LeNet-5 with ReLU, 3 epochs of Nesterov SGD with a one-cycle LR at batch 128 on all 60k
# training images, no augmentation; the last epoch is tested (the test set selects nothing).
# Data held in memory (the device loader), fixed mean/std (no statistics pass), bf16 autocast
# and channels_last (measured 1.3x faster per step: benchmarks/results/train_options_lenet5.md),
# no TensorBoard. Measured: benchmarks/results/speedrun_mnist.md.
_base_ = [
    "../_base_/models/lenet5.py",
    "../_base_/datasets/mnist.py",
    "../_base_/schedules/onecycle_10e.py",
    "../_base_/speedrun_runtime.py",
]
model = dict(act="relu")
data = dict(
    val_split=0.0,
    loader="device",
    mean=(0.1307,),
    std=(0.3081,),
    train=dict(batch_size=128, pipeline=[]),
    test=dict(batch_size=2000),
)
optimizer = dict(type="SGD", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
param_scheduler = dict(type="OneCycleLR", max_lr=0.1, pct_start=0.25)
train_cfg = dict(max_epochs=3)
