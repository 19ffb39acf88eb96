# MLP-Mixer S/16 on CIFAR-10 resized to 224x224 (its 16x16 patches need the full size);
# AdamW + warm-up + cosine over 100 epochs, label smoothing 0.1, Mixup.
_base_ = [
    "./_base_/models/mixer_s16_224.py",
    "./_base_/datasets/cifar10_224.py",
    "./_base_/schedules/adamw_cosine_100e.py",
    "./_base_/default_runtime.py",
]
loss = dict(label_smoothing=0.1)
data = dict(
    train=dict(
        pipeline=[
            dict(type="RandomCrop", size=224, padding=28),
            dict(type="RandomHorizontalFlip"),
            dict(type="Mixup", alpha=0.2),
        ]
    )
)
