# The tutorials' recipe: Adam (Kingma and Ba 2015) at LR 1e-3 with weight decay 1e-4, the LR
# divided by 10 when the validation loss stalls for 2 epochs; pair it with early stopping.
optimizer = dict(
    type="Adam", lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4, decay_norm_and_bias=True
)
clip_grad = None
param_scheduler = dict(
    type="ReduceLROnPlateau", monitor="val/loss", mode="min", factor=0.1, patience=2
)
train_cfg = dict(max_epochs=100)
