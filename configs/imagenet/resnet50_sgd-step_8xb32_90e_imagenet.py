# ResNet-50 (He et al. 2016) on ImageNet with torchvision's reference recipe
# (references/classification: "--model resnet50", 8 GPUs x 32): SGD momentum 0.9, LR 0.1,
# weight decay 1e-4, LR / 10 every 30 epochs, 90 epochs, RandomResizedCrop 224 + flip;
# evaluation resize 256, centre crop 224.
# Reported: 76.130% top-1 (torchvision's ResNet50_Weights.IMAGENET1K_V1). Not run here.
_base_ = [
    "../_base_/models/resnet50.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/schedules/imagenet_sgd_step_90e.py",
    "../_base_/imagenet_runtime.py",
]
auto_scale_lr = dict(base_batch_size=256)
