# CIFAR-10 upsampled to 96x96 (d2l's choice for ImageNet-shaped networks on small images).
_base_ = ["./cifar10.py"]
data = dict(
    image_size=96,
    train=dict(
        pipeline=[dict(type="RandomCrop", size=96, padding=12), dict(type="RandomHorizontalFlip")]
    ),
)
