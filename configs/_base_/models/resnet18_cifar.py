# ResNet-18 with a CIFAR stem (one 3x3 stride-1 conv, no max pool), the usual adaptation
# of the ImageNet network to 32x32 inputs.
model = dict(type="resnet18", num_classes=10, in_chans=3, stem="cifar")
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
