# He et al. 2016 (ResNet, CIFAR-10 section 4.2): SGD momentum 0.9, weight decay 1e-4, LR 0.1
# divided by 10 at 32k and 48k iterations, stopping at 64k (= epochs 82, 123 and 164 at batch 128).
optimizer = dict(
    type="SGD", lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="MultiStepLR", milestones=[82, 123], gamma=0.1, warmup_epochs=0)
train_cfg = dict(max_epochs=164)
