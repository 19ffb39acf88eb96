# airbench94 (Jordan 2024): the small whitened-stem CNN that reaches 94% on CIFAR-10 in seconds;
# label smoothing 0.2 as in its recipe.
model = dict(type="airbench94", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.2, aux_weight=0.3)
