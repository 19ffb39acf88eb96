# Wide ResNet 28-10 (Zagoruyko and Komodakis 2016), dropout 0.3 between the convs of a block.
model = dict(type="wrn28_10", num_classes=10, in_chans=3, dropout=0.3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
