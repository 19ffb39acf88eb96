# DenseNet-BC-100 with growth rate 12 (Huang et al. 2017): the paper's CIFAR network.
model = dict(type="densenet_bc_100_k12", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
