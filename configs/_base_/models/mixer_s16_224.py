# MLP-Mixer S/16 (Tolstikhin et al. 2021): token- and channel-mixing MLPs on 16x16 patches.
model = dict(type="mixer_s16_224", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
