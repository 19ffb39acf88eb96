# CIFAR-100 (Krizhevsky 2009): as CIFAR-10 but 100 classes of 500 training images each.
_base_ = ["./cifar10.py"]
data = dict(type="cifar100")
