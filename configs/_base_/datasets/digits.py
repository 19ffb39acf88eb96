# scikit-learn's digits (UCI optical digits): 1797 8x8 grey images, 10 classes, shipped with
# scikit-learn, so it needs no download. Resized to 32x32 for LeNet-5's input.
data = dict(
    type="digits",
    root=None,
    download=False,
    val_split=0.1,
    split_seed=0,
    image_size=32,
    in_chans=None,
    mean=None,
    std=None,
    loader="auto",
    num_workers=0,
    train=dict(batch_size=32, pipeline=[]),
    val=dict(batch_size=512),
    test=dict(batch_size=512, tta_flip=False),
)
