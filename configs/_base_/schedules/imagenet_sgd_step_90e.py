# torchvision's reference defaults for ImageNet (references/classification): SGD with momentum
# 0.9, LR 0.1 for a global batch of 256 (8 GPUs x 32), weight decay 1e-4 on every parameter,
# LR / 10 every 30 epochs, 90 epochs.
optimizer = dict(
    type="SGD", lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="StepLR", step_size=30, gamma=0.1, warmup_epochs=0)
train_cfg = dict(max_epochs=90)
