# GoogLeNet / Inception v1 (Szegedy et al. 2015) with its two auxiliary classifiers;
# their losses are added with weight loss.aux_weight=0.3, as in the paper.
model = dict(type="googlenet", num_classes=10, in_chans=3, aux_logits=True)
loss = dict(type="cross_entropy", label_smoothing=0.0, aux_weight=0.3)
