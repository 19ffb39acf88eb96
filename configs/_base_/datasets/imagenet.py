# ImageNet-1k (ILSVRC 2012, Russakovsky et al. 2015) in its usual layout, root/train/<wnid>/*.JPEG
# and root/val/<wnid>/*.JPEG (set data.root or CNNZOO_DATA), or tar shards written from it with
# `cnnzoo shards` (data.format="shards", data.root=<shard folder>). Streamed: full-size JPEGs
# decoded per sample in the workers (or on the GPU: data.decode="device"); training takes the
# Inception-style RandomResizedCrop 224 + flip from the full image, evaluation resizes the
# shorter side to 256 and crops the centre 224 (torchvision's reference classification recipe);
# ImageNet's mean and std.
data = dict(
    type="imagenet",
    root=None,  # set this: --cfg-options data.root=/path/to/imagenet
    download=False,
    val_split=0.0,  # ImageNet's own 50,000 validation images are the val split
    split_seed=0,
    image_size=224,
    resize=256,
    in_chans=3,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    loader="stream",
    format="folder",
    decode="workers",  # or "device": nvJPEG on the GPU (see README, "ImageNet")
    num_workers=8,
    train=dict(
        batch_size=32,
        pipeline=[
            dict(type="RandomResizedCrop", size=224, scale=(0.08, 1.0)),
            dict(type="RandomHorizontalFlip"),
        ],
    ),
    val=dict(batch_size=128),
    test=dict(batch_size=128, tta_flip=False),
)
