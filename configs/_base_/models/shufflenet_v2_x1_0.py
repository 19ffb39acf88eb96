# ShuffleNetV2 1.0x (Ma et al. 2018): channel split and channel shuffle.
model = dict(type="shufflenet_v2_x1_0", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
