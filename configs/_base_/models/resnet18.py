# ResNet-18 (He et al. 2016) with its ImageNet stem (7x7 stride-2 conv + max pool).
model = dict(type="resnet18", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
