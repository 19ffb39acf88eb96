# A short SGD + cosine schedule (30 epochs, 1 warm-up epoch): a quick, honest baseline on CIFAR.
optimizer = dict(
    type="SGD", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="CosineAnnealingLR", min_lr=0.0, warmup_epochs=1)
train_cfg = dict(max_epochs=30)
