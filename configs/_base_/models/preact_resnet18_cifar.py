# Pre-activation ResNet-18 (He et al. 2016, 'Identity mappings') with a CIFAR stem.
model = dict(type="preact_resnet18", num_classes=10, in_chans=3, stem="cifar")
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
