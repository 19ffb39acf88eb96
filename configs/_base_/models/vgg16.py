# VGG-16 (Simonyan and Zisserman 2015), configuration D, without batch norm.
model = dict(type="vgg16", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
