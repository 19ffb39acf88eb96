# SE-ResNet-18 (Hu et al. 2018): ResNet-18 with squeeze-and-excitation, CIFAR stem.
model = dict(type="se_resnet18", num_classes=10, in_chans=3, stem="cifar")
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
