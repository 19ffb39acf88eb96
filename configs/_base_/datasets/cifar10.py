# CIFAR-10 (Krizhevsky 2009): 50k train / 10k test 32x32 colour images, 10 classes.
# The standard augmentation of He et al. 2016: 4-pixel padded random crop + horizontal flip.
data = dict(
    type="cifar10",
    root=None,  # None -> $CNNZOO_DATA -> ~/.cache/cnnzoo/data
    download=True,
    val_split=0.1,
    split_seed=0,
    image_size=None,
    in_chans=None,
    mean=None,  # None: computed over the train split, cached
    std=None,
    loader="auto",
    num_workers=2,
    train=dict(
        batch_size=128,
        pipeline=[dict(type="RandomCrop", size=32, padding=4), dict(type="RandomHorizontalFlip")],
    ),
    val=dict(batch_size=512),
    test=dict(batch_size=512, tta_flip=False),
)
