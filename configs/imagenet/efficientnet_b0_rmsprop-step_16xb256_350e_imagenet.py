# EfficientNet-B0 (Tan and Le 2019) on ImageNet with the paper's recipe: RMSProp (decay 0.9,
# momentum 0.9; TensorFlow's eps 1e-3 is eps=0.0316 in PyTorch's RMSprop), LR 0.256 for a batch
# of 4096 (16 x 256 here), decayed by 0.97 every 2.4 epochs (here 0.975 every 2 epochs, the same
# decay per epoch: cnnzoo steps by whole epochs), weight decay 1e-5, dropout 0.2, stochastic
# depth 0.2 (the model's defaults), SiLU, model EMA 0.9999 every step, 350 epochs.
# AutoAugment's ImageNet policy runs on the batch. Not reproduced: the bicubic 256/224
# evaluation resize (bilinear here). Reported: 77.1% top-1 (the paper's Table 2; torchvision's ported
# EfficientNet_B0_Weights.IMAGENET1K_V1 gives 77.692%). Not run here.
_base_ = [
    "../_base_/models/efficientnet_b0.py",
    "../_base_/datasets/imagenet.py",
    "../_base_/imagenet_runtime.py",
]
model = dict(num_classes=1000)
data = dict(
    train=dict(
        batch_size=256,
        pipeline=[
            dict(type="RandomResizedCrop", size=224, scale=(0.08, 1.0)),
            dict(type="RandomHorizontalFlip"),
            dict(type="AutoAugment", policy="imagenet"),
        ],
    )
)
optimizer = dict(
    type="RMSprop",
    lr=0.256,
    alpha=0.9,
    momentum=0.9,
    eps=0.0316,
    weight_decay=1e-5,
    decay_norm_and_bias=True,
)
clip_grad = None
param_scheduler = dict(type="StepLR", step_size=2, gamma=0.975, warmup_epochs=0)
train_cfg = dict(max_epochs=350)
ema = dict(_delete_=True, decay=0.9999, every=1, warmup=False)
auto_scale_lr = dict(base_batch_size=4096)
