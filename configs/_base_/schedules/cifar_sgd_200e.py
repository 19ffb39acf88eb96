# Zagoruyko and Komodakis 2016 (Wide ResNets): SGD Nesterov momentum 0.9, weight decay 5e-4,
# LR 0.1 multiplied by 0.2 at epochs 60, 120 and 160 of 200.
optimizer = dict(
    type="SGD", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="MultiStepLR", milestones=[60, 120, 160], gamma=0.2, warmup_epochs=0)
train_cfg = dict(max_epochs=200)
