# AlexNet (Krizhevsky et al. 2012) on ImageNet with torchvision's reference recipe
# (references/classification: "--model alexnet --lr 1e-2", 8 GPUs x 32): SGD momentum 0.9,
# LR 0.01 (0.1 is too high without batch norm), weight decay 1e-4, LR / 10 every 30 epochs,
# 90 epochs, RandomResizedCrop 224 + flip; evaluation resize 256, centre crop 224.
# Reported: 56.522% top-1 (torchvision's AlexNet_Weights.IMAGENET1K_V1). Not run here.
_base_ = [
    "../_base_/models/alexnet.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/schedules/imagenet_sgd_step_90e.py",
    "../_base_/imagenet_runtime.py",
]
model = dict(num_classes=1000)
optimizer = dict(lr=0.01)
auto_scale_lr = dict(base_batch_size=256)
