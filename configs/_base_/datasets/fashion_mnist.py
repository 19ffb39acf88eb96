# Fashion-MNIST (Xiao et al. 2017): MNIST's format (60k/10k 28x28 grey) with 10 kinds of clothing.
data = dict(
    type="fashion_mnist",
    root=None,
    download=True,
    val_split=0.1,
    split_seed=0,
    image_size=None,
    in_chans=None,
    mean=None,
    std=None,
    loader="auto",
    num_workers=2,
    train=dict(batch_size=128, pipeline=[dict(type="RandomHorizontalFlip")]),
    val=dict(batch_size=1000),
    test=dict(batch_size=1000, tta_flip=False),
)
