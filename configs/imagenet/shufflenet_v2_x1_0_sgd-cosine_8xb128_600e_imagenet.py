# ShuffleNetV2 1.0x (Ma et al. 2018) on ImageNet with torchvision's reference recipe for
# ShuffleNetV2 (references/classification, used there for x1.5 and x2.0; 8 GPUs x 128): SGD
# momentum 0.9, LR 0.5, 5 linear warm-up epochs then cosine decay over 600 epochs, weight decay
# 2e-5 (none on norm layers: here none on norm scales and biases), label smoothing 0.1, train
# crop 176 and evaluation resize 232 / crop 224, model EMA every 32 steps (torchvision's
# --model-ema-decay 0.99998 adjusted as its train.py does: 1 - 2e-5 * 1024 * 32 / 600).
# TrivialAugmentWide and random erasing 0.1 (filled with the mean: zero after normalisation, as
# torchvision erases normalised images) run on the batch. Not reproduced: the repeated-
# augmentation sampler (cnnzoo has none); torchvision draws Mixup 0.2 or CutMix 1.0 per batch,
# cnnzoo applies its ops in sequence, so CutMix 1.0 alone here.
# Reported: 69.4% top-1 for 1.0x (the paper's Table 8, 30.6% error, with its own recipe;
# torchvision's recipe gives 72.996% for x1.5). Not run here.
_base_ = [
    "../_base_/models/shufflenet_v2_x1_0.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/imagenet_runtime.py",
]
model = dict(num_classes=1000)
loss = dict(label_smoothing=0.1)
data = dict(
    resize=232,
    train=dict(
        batch_size=128,
        pipeline=[
            dict(type="RandomResizedCrop", size=176, scale=(0.08, 1.0)),
            dict(type="RandomHorizontalFlip"),
            dict(type="TrivialAugmentWide"),
            dict(type="RandomErasing", p=0.1, value=(0.485, 0.456, 0.406)),
            dict(type="CutMix", alpha=1.0),
        ],
    ),
)
optimizer = dict(
    type="SGD", lr=0.5, momentum=0.9, nesterov=False, weight_decay=2e-5, decay_norm_and_bias=False
)
clip_grad = None
param_scheduler = dict(type="CosineAnnealingLR", min_lr=0.0, warmup_epochs=5)
train_cfg = dict(max_epochs=600)
ema = dict(_delete_=True, decay=0.998908, every=32, warmup=False)
auto_scale_lr = dict(base_batch_size=1024)
