# Huang et al. 2017 (DenseNet, CIFAR): SGD Nesterov momentum 0.9, weight decay 1e-4, LR 0.1
# divided by 10 at 50% and 75% of 300 epochs (batch 64).
optimizer = dict(
    type="SGD", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="MultiStepLR", milestones=[150, 225], gamma=0.1, warmup_epochs=0)
train_cfg = dict(max_epochs=300)
