# ResNeXt-50 32x4d (Xie et al. 2017) on ImageNet with torchvision's reference recipe
# (references/classification: "--model resnext50_32x4d --epochs 100", 8 GPUs x 32): SGD
# momentum 0.9, LR 0.1, weight decay 1e-4, LR / 10 every 30 epochs, 100 epochs,
# RandomResizedCrop 224 + flip; evaluation resize 256, centre crop 224.
# Reported: 77.618% top-1 (torchvision's ResNeXt50_32X4D_Weights.IMAGENET1K_V1). Not run here.
_base_ = [
    "../_base_/models/resnext50_32x4d.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/schedules/imagenet_sgd_step_90e.py",
    "../_base_/imagenet_runtime.py",
]
train_cfg = dict(max_epochs=100)
auto_scale_lr = dict(base_batch_size=256)
