# The MMDetection "1x" schedule: 12 epochs, SGD with momentum, LR / 10 after epochs 8 and 11.
optimizer = dict(
    type="SGD", lr=0.1, momentum=0.9, nesterov=False, weight_decay=5e-4, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="MultiStepLR", milestones=[8, 11], gamma=0.1, warmup_epochs=0)
train_cfg = dict(max_epochs=12)
