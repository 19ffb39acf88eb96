# ResNet-50 (He et al. 2016): bottleneck blocks, ImageNet stem.
model = dict(type="resnet50", num_classes=1000, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
