# ResNeXt-50 32x4d (Xie et al. 2017): grouped 3x3 bottlenecks, cardinality 32, ImageNet stem.
model = dict(type="resnext50_32x4d", num_classes=1000, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
