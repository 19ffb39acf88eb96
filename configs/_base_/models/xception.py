# Xception (Chollet 2017): depthwise-separable convolutions throughout, with residual links.
model = dict(type="xception", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
