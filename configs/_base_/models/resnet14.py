# The small CIFAR ResNet of the classic tutorials (He et al. 2016 layout, 2 blocks per stage).
model = dict(type="resnet14", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
