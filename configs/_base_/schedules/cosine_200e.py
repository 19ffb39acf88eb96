# SGD with cosine annealing (Loshchilov and Hutter 2017) over 200 epochs, no restarts,
# weight decay 5e-4: a common CIFAR recipe for the compact networks.
optimizer = dict(
    type="SGD", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="CosineAnnealingLR", min_lr=0.0, warmup_epochs=0)
train_cfg = dict(max_epochs=200)
