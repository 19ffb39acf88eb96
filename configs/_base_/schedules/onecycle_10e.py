# airbench-style short schedule (Jordan 2024): about 10 epochs of Nesterov SGD with a
# triangular one-cycle LR (Smith and Topin 2019), rising for the first 23% of steps.
# airbench94 sums the loss over a batch of 1024 and scales LR 11.5 and weight decay 0.0153 by
# 1024 * (1 + 1 / (1 - momentum)); for cnnzoo's mean loss that is a peak LR of 1.5 and a
# weight decay of 0.0013 (the same lr * weight_decay shrink per step).
optimizer = dict(
    type="SGD", lr=1.5, momentum=0.85, nesterov=True, weight_decay=1.3e-3, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="OneCycleLR", max_lr=1.5, pct_start=0.23)
train_cfg = dict(max_epochs=10)
