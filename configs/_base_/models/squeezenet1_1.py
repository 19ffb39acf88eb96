# SqueezeNet 1.1 (Iandola et al. 2016): fire modules of 1x1 squeeze and 1x1/3x3 expand convs.
model = dict(type="squeezenet1_1", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
