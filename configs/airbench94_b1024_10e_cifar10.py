# airbench94 (Jordan 2024) on CIFAR-10: batch 1024, about 10 epochs of Nesterov SGD with a
# triangular LR, label smoothing 0.2, flip + 2-pixel translation, flip test-time augmentation,
# trained on all 50k training images (no validation split). airbench's own code reaches 94%
# in seconds on an A100; this is its recipe, translated to cnnzoo's engine (see onecycle_10e.py).
_base_ = [
    "./_base_/models/airbench94.py",
    "./_base_/datasets/cifar10.py",
    "./_base_/schedules/onecycle_10e.py",
    "./_base_/default_runtime.py",
]
data = dict(
    val_split=0.0,
    loader="device",
    train=dict(
        batch_size=1024,
        pipeline=[dict(type="RandomHorizontalFlip"), dict(type="RandomTranslate", pixels=2)],
    ),
    test=dict(batch_size=2000, tta_flip=True),
)
workflow = [("train", 1)]
checkpoint = dict(monitor="train/loss", mode="min")
