# MobileNetV1 1.0 (Howard et al. 2017): depthwise-separable convolutions.
model = dict(type="mobilenetv1_100", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
