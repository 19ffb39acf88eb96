# CIFAR-10 upsampled to 64x64, for networks whose stem downsamples too much for 32x32 inputs.
# The crop pads by 1/8 of the side, as the 32x32 recipe does.
_base_ = ["./cifar10.py"]
data = dict(
    image_size=64,
    train=dict(
        pipeline=[dict(type="RandomCrop", size=64, padding=8), dict(type="RandomHorizontalFlip")]
    ),
)
