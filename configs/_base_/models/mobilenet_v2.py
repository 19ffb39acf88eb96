# MobileNetV2 1.0 (Sandler et al. 2018): inverted residuals with linear bottlenecks.
model = dict(type="mobilenet_v2", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
