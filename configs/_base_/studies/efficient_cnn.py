# The one recipe of the efficient-CNN study (`cnnzoo study efficient-cnn`): every family is
# trained with these data, augmentation, optimizer, schedule and runtime settings; the study
# sets model.type (and a model's own size arguments) and, from its --budget, the epochs and the
# CIFAR-10 subset (data.root). Trainable alone too:
#   cnnzoo train _base_/studies/efficient_cnn.py --cfg-options model.type=mobilenet_v2 data.root=DIR
# where DIR is a CIFAR-10 ImageFolder (train/<class>/, test/<class>/, optionally val/<class>/).
_base_ = ["../default_runtime.py"]
model = dict(type="mobilenetv1_100", num_classes=10, in_chans=3)
loss = dict(type="cross_entropy", label_smoothing=0.1, aux_weight=0.3)
# CIFAR-10 at its own 32x32 for every network (ImageNet-shaped stems then leave a 1x1 map: the
# price of one input size for all), random crop with 4-pixel padding and flips, CIFAR-10's
# channel statistics. The study's subset folder holds val/, so nothing is split off train/.
data = dict(
    type="imagefolder",
    root=None,  # the study sets it to its subset of $CNNZOO_DATA/cifar10-jpeg (or --data)
    folder="cifar10-jpeg",
    download=False,
    val_split=0.0,
    split_seed=0,
    image_size=32,
    in_chans=3,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    loader="device",
    num_workers=0,
    train=dict(
        batch_size=64,
        pipeline=[dict(type="RandomCrop", size=32, padding=4), dict(type="RandomHorizontalFlip")],
    ),
    val=dict(batch_size=256),
    test=dict(batch_size=256, tta_flip=False),
)
# Nesterov SGD with cosine annealing to zero (Loshchilov and Hutter 2017), no warm-up (a
# budget may be one epoch); weight decay 5e-4 on the weights only.
optimizer = dict(
    type="SGD", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4, decay_norm_and_bias=False
)
clip_grad = None
param_scheduler = dict(type="CosineAnnealingLR", min_lr=0.0, warmup_epochs=0)
train_cfg = dict(max_epochs=30)
log = dict(interval=50, tensorboard=False)
