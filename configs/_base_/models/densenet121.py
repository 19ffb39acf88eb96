# DenseNet-121 (Huang et al. 2017): dense blocks of 6/12/24/16 layers, growth rate 32.
model = dict(type="densenet121", num_classes=1000, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
