# MNIST (LeCun et al. 1998): 60k train / 10k test 28x28 grey digits. No flips: digits are not
# mirror-symmetric; a 2-pixel random translation is the classic augmentation.
data = dict(
    type="mnist",
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
    train=dict(batch_size=128, pipeline=[dict(type="RandomTranslate", pixels=2)]),
    val=dict(batch_size=1000),
    test=dict(batch_size=1000, tta_flip=False),
)
