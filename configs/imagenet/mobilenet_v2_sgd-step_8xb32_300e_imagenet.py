# MobileNetV2 (Sandler et al. 2018) on ImageNet with torchvision's reference recipe
# (references/classification: "--model mobilenet_v2 --epochs 300 --lr 0.045 --wd 0.00004
# --lr-step-size 1 --lr-gamma 0.98", 8 GPUs x 32): SGD momentum 0.9, LR 0.045 x 0.98 every
# epoch, weight decay 4e-5 on every parameter, 300 epochs, RandomResizedCrop 224 + flip;
# evaluation resize 256, centre crop 224.
# Reported: 71.878% top-1 (torchvision's MobileNet_V2_Weights.IMAGENET1K_V1). Not run here.
_base_ = [
    "../_base_/models/mobilenet_v2.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/schedules/imagenet_sgd_step_90e.py",
    "../_base_/imagenet_runtime.py",
]
model = dict(num_classes=1000)
optimizer = dict(lr=0.045, weight_decay=4e-5)
param_scheduler = dict(step_size=1, gamma=0.98)
train_cfg = dict(max_epochs=300)
auto_scale_lr = dict(base_batch_size=256)
