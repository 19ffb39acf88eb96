# CIFAR-10 upsampled to the ImageNet input size 224x224, for networks that need it.
# Images are resized batch by batch (loader='dataloader'), not held in memory at 224x224.
_base_ = ["./cifar10.py"]
data = dict(
    image_size=224,
    loader="dataloader",
    train=dict(
        batch_size=64,
        pipeline=[dict(type="RandomCrop", size=224, padding=28), dict(type="RandomHorizontalFlip")],
    ),
    val=dict(batch_size=128),
    test=dict(batch_size=128),
)
