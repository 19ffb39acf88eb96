# Adam (Kingma and Ba 2015) at LR 1e-3, cosine-annealed to 0 over 20 epochs: a robust choice
# for small networks on small data sets.
optimizer = dict(
    type="Adam", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(type="CosineAnnealingLR", min_lr=0.0, warmup_epochs=0)
train_cfg = dict(max_epochs=20)
