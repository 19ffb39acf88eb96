# AlexNet (Krizhevsky et al. 2012), single-tower, with dropout 0.5 in the classifier.
model = dict(type="alexnet", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
