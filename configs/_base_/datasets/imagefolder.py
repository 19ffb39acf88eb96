# Your own images, ImageNet style: root/train/<class>/*.jpg and root/test/<class>/*.jpg
# (set data.root, or data.folder for $CNNZOO_DATA/<folder>/). Random-resized 224 crops and
# flips (Szegedy et al. 2015), ImageNet mean/std.
data = dict(
    type="imagefolder",
    root=None,  # set this: --cfg-options data.root=/path/to/images
    folder=None,  # or this: the images' subfolder of $CNNZOO_DATA (None: 'imagefolder')
    download=False,
    val_split=0.1,
    split_seed=0,
    image_size=224,
    in_chans=3,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    loader="dataloader",
    num_workers=2,
    train=dict(
        batch_size=64,
        pipeline=[
            dict(type="RandomResizedCrop", size=224, scale=(0.08, 1.0)),
            dict(type="RandomHorizontalFlip"),
        ],
    ),
    val=dict(batch_size=128),
    test=dict(batch_size=128, tta_flip=False),
)
