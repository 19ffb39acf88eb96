# ResNet-56 for CIFAR (He et al. 2016, section 4.2): 3 stages of 9 basic blocks, 16/32/64 channels.
model = dict(type="resnet56", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
