# AdamW (Loshchilov and Hutter 2019), LR 1e-3, weight decay 0.05, 5 warm-up epochs then cosine
# decay over 100 epochs, gradients clipped at norm 1: the usual recipe for MLP-Mixer / ViT-style
# networks trained from scratch.
optimizer = dict(
    type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05, decay_norm_and_bias=False
)
clip_grad = dict(max_norm=1.0)
param_scheduler = dict(type="CosineAnnealingLR", min_lr=1e-5, warmup_epochs=5)
train_cfg = dict(max_epochs=100)
