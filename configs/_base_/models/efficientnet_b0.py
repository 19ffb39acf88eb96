# EfficientNet-B0 (Tan and Le 2019): MBConv blocks with squeeze-and-excitation.
model = dict(type="efficientnet_b0", num_classes=10, in_chans=3, drop_rate=0.2)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
