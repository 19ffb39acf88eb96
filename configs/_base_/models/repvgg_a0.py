# RepVGG-A0 (Ding et al. 2021): 3x3/1x1/identity branches in training, one 3x3 conv at inference.
model = dict(type="repvgg_a0", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
