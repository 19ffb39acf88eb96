# VGG-16 with batch norm (Simonyan and Zisserman 2015) on ImageNet with torchvision's reference
# defaults (references/classification, 8 GPUs x 32; the _bn variants keep LR 0.1): SGD momentum
# 0.9, weight decay 1e-4, LR / 10 every 30 epochs, 90 epochs, RandomResizedCrop 224 + flip;
# evaluation resize 256, centre crop 224.
# Reported: 73.360% top-1 (torchvision's VGG16_BN_Weights.IMAGENET1K_V1). Not run here.
_base_ = [
    "../_base_/models/vgg16_bn.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/schedules/imagenet_sgd_step_90e.py",
    "../_base_/imagenet_runtime.py",
]
auto_scale_lr = dict(base_batch_size=256)
