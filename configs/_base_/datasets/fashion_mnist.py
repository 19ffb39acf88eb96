# Fashion-MNIST (Xiao et al. 2017): MNIST's format (60k/10k 28x28 grey) with 10 kinds of clothing,
# so MNIST's settings; clothes are mirror-symmetric, so a horizontal flip replaces the translation.
_base_ = ["./mnist.py"]
data = dict(type="fashion_mnist", train=dict(pipeline=[dict(type="RandomHorizontalFlip")]))
