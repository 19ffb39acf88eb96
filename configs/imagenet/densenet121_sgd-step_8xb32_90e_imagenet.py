# DenseNet-121 (Huang et al. 2017) on ImageNet with the paper's recipe: batch 256 (8 GPUs x 32
# here), SGD with Nesterov momentum 0.9, LR 0.1 divided by 10 at epochs 30 and 60, weight decay
# 1e-4, 90 epochs, the standard augmentation (RandomResizedCrop 224 + flip); evaluation resize
# 256, centre crop 224 (single crop).
# Reported: 74.98% top-1 (the paper's Table 3: 25.02% single-crop top-1 error; torchvision's
# DenseNet121_Weights.IMAGENET1K_V1 gives 74.434%). Not run here.
_base_ = [
    "../_base_/models/densenet121.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/schedules/imagenet_sgd_step_90e.py",
    "../_base_/imagenet_runtime.py",
]
optimizer = dict(nesterov=True)
auto_scale_lr = dict(base_batch_size=256)
