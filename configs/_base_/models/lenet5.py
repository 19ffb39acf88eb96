# LeNet-5 (LeCun et al. 1998) for 1-channel 32x32 digits (28x28 inputs are padded).
model = dict(type="lenet5", num_classes=10, in_chans=1)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
