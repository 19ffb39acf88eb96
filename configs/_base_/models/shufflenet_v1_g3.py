# ShuffleNet 1x, g=3 (Zhang et al. 2018): grouped 1x1 convolutions with channel shuffle.
model = dict(type="shufflenet_v1_g3", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
