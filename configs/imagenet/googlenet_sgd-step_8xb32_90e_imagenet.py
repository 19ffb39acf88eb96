# GoogLeNet / Inception v1 (Szegedy et al. 2015) on ImageNet with both auxiliary classifiers,
# their losses added with weight 0.3 (the paper). The paper trains with asynchronous SGD,
# momentum 0.9, the LR cut by 4% every 8 epochs and Polyak averaging, and gives neither the LR
# nor the length; torchvision ported its weights rather than training them. So this is
# torchvision's reference default schedule (SGD momentum 0.9, LR 0.1 for 8 GPUs x 32, weight
# decay 1e-4, LR / 10 every 30 epochs, 90 epochs) with the paper's network and aux heads;
# Polyak averaging is not reproduced. RandomResizedCrop 224 + flip; eval resize 256, crop 224.
# Reported: 69.778% top-1 (torchvision's GoogLeNet_Weights.IMAGENET1K_V1, ported from the
# paper's model). Not run here.
_base_ = [
    "../_base_/models/googlenet.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/schedules/imagenet_sgd_step_90e.py",
    "../_base_/imagenet_runtime.py",
]
model = dict(num_classes=1000)
auto_scale_lr = dict(base_batch_size=256)
