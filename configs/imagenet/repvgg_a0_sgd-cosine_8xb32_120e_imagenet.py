# RepVGG-A0 (Ding et al. 2021) on ImageNet with the paper's recipe: batch 256 (8 GPUs x 32),
# SGD momentum 0.9, LR 0.1 with cosine annealing over 120 epochs, weight decay 1e-4, the simple
# augmentation (RandomResizedCrop 224 + flip); evaluation resize 256, centre crop 224. Train the
# multi-branch blocks, fuse them for inference (cnnzoo export --reparameterize).
# Reported: 72.41% top-1 (the paper's Table 4). Not run here.
_base_ = [
    "../_base_/models/repvgg_a0.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/schedules/imagenet_sgd_step_90e.py",
    "../_base_/imagenet_runtime.py",
]
model = dict(num_classes=1000)
param_scheduler = dict(_delete_=True, type="CosineAnnealingLR", min_lr=0.0, warmup_epochs=0)
train_cfg = dict(max_epochs=120)
auto_scale_lr = dict(base_batch_size=256)
