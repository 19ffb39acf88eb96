# VGG-16 (Simonyan and Zisserman 2015), configuration D, with batch norm after every conv.
model = dict(type="vgg16_bn", num_classes=1000, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
