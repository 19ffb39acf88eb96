import itertools

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from cnnzoo.data.augment import (
    AugContext,
    AutoAugment,
    ColorJitter,
    CutMix,
    Cutout,
    Mixup,
    PCAColor,
    RandAugment,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomTranslate,
    TrivialAugmentWide,
    build_pipeline,
    check_pipeline,
)
from cnnzoo.data.augment import functional as fn
from cnnzoo.errors import ConfigError, UnknownNameError

CTX = AugContext(
    num_classes=10,
    mean=(0.5, 0.5, 0.5),
    eigvals=torch.tensor([0.2, 0.02, 0.005]),
    eigvecs=torch.eye(3),
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def label_images(b=16, c=3, h=8, w=8):
    """Images whose every pixel encodes their label (value = label / 10)."""
    y = torch.arange(b) % 10
    x = (y.float() / 10).view(b, 1, 1, 1).expand(b, c, h, w).clone()
    return x, y


def ramp(b=16, h=8, w=8):
    """Distinct pixels, the same in every sample, so crops at different offsets differ."""
    return torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w).expand(
        b, 3, h, w
    ).clone(), torch.zeros(b, dtype=torch.long)


@pytest.mark.parametrize(
    "op",
    [
        RandomCrop(6, padding=2, padding_mode="reflect"),
        RandomHorizontalFlip(),
        RandomResizedCrop(5),
        build_pipeline(
            [
                dict(type="RandomCrop", size=8, padding=3, padding_mode="reflect"),
                dict(type="RandomHorizontalFlip"),
            ],
            CTX,
        ),
    ],
)
def test_labels_stay_with_their_images(op):
    x, y = label_images()
    perm = torch.randperm(16)
    x, y = x[perm], y[perm]
    out, y2 = op(x, y, gen())
    assert torch.equal(y2, y)
    assert torch.allclose(out, (y.float() / 10).view(-1, 1, 1, 1).expand_as(out))


@pytest.mark.parametrize(
    "op", [RandomCrop(8, padding=3), RandomTranslate(3), RandomResizedCrop(6), Cutout(3, CTX)]
)
def test_per_sample_randomness(op):
    x, y = ramp()
    out, _ = op(x, y, gen())
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) > 4


def test_random_crop_is_a_window_of_the_padded_image():
    x, y = ramp(b=8)
    out, _ = RandomCrop(8, padding=2)(x, y, gen(3))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for o, p in zip(out, padded, strict=True):
        windows = [p[:, i : i + 8, j : j + 8] for i in range(5) for j in range(5)]
        assert any(torch.equal(o, wdw) for wdw in windows)


def test_flip_is_a_flip():
    x, y = ramp(b=4)
    out, _ = RandomHorizontalFlip(p=1.0)(x, y, gen())
    assert torch.equal(out, x.flip(3))
    out, _ = RandomHorizontalFlip(p=0.0)(x, y, gen())
    assert torch.equal(out, x)


def test_same_generator_same_result_other_seed_differs():
    pipe = build_pipeline(
        [
            dict(type="RandomResizedCrop", size=6),
            dict(type="RandomHorizontalFlip"),
            dict(type="Cutout", size=2),
        ],
        CTX,
    )
    x, y = ramp()
    a, _ = pipe(x, y, gen(1))
    b, _ = pipe(x, y, gen(1))
    c, _ = pipe(x, y, gen(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_resized_crop_full_box_is_identity():
    x, y = ramp(b=4)
    out, _ = RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, y, gen())
    assert torch.allclose(out, x, atol=1e-4)


def test_cutout_blanks_a_square_with_the_mean():
    x = torch.ones(32, 3, 10, 10)
    out, _ = Cutout(4, CTX)(x, torch.zeros(32, dtype=torch.long), gen())
    blanked = (out[:, 0] == 0.5).sum((1, 2))
    assert blanked.max() == 16 and blanked.min() >= 4  # clipped at the border at worst 2x2
    assert torch.equal(out[:, 0] == 0.5, out[:, 2] == 0.5)


def test_pca_color_shifts_each_image_by_one_colour():
    x = torch.rand(6, 3, 5, 5)
    out, _ = PCAColor(0.1, CTX)(x, torch.zeros(6, dtype=torch.long), gen())
    shift = out - x
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift), atol=1e-6)
    assert shift[:, :, 0, 0].abs().sum() > 0
    with pytest.raises(ConfigError, match="3-channel"):
        PCAColor(0.1, AugContext(10, (0.5,), torch.tensor([0.1]), torch.eye(1)))


@pytest.mark.parametrize("op", [Mixup(0.4, CTX), CutMix(1.0, CTX)])
def test_mixing_gives_soft_targets_that_sum_to_one(op):
    x, y = label_images(b=12)
    out, t = op(x, y, gen(5))
    assert t.shape == (12, 10) and t.dtype == torch.float32
    assert torch.allclose(t.sum(1), torch.ones(12))
    # the image's mean pixel is the target-weighted mean of the labels it was mixed from
    expected = (t * (torch.arange(10).float() / 10)).sum(1)
    assert torch.allclose(out.mean((1, 2, 3)), expected, atol=1e-5)


def test_mixup_then_cutmix_still_sum_to_one():
    pipe = build_pipeline([dict(type="Mixup", alpha=0.2), dict(type="CutMix")], CTX)
    x, y = label_images(b=8)
    _, t = pipe(x, y, gen())
    assert pipe.mixes_targets and torch.allclose(t.sum(1), torch.ones(8))


def test_pipeline_config_errors():
    with pytest.raises(UnknownNameError, match="RandomCrop"):
        build_pipeline([dict(type="RandomCrp", size=3)], CTX)
    with pytest.raises(ConfigError, match="does not take pad"):
        build_pipeline([dict(type="RandomCrop", size=3, pad=1)], CTX)
    with pytest.raises(ConfigError, match="padding_mode"):
        build_pipeline([dict(type="RandomCrop", size=3, padding_mode="wrap")], CTX)
    assert build_pipeline(
        [dict(type="RandomCrop", size=24), dict(type="Resize", size=(20, 30))], CTX
    ).out_size((32, 32)) == (20, 30)


def photos(b=12, c=3, h=10, w=9, seed=0):
    """Random images on the 256 levels of uint8, the same image ``b`` times."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (1, c, h, w), generator=g, dtype=torch.uint8).float() / 255
    return x.expand(b, c, h, w).clone(), torch.zeros(b, dtype=torch.long)


NEW_OPS = [
    ColorJitter(0.4, 0.4, 0.4, 0.1),
    RandomErasing(p=0.7),
    RandAugment(),
    TrivialAugmentWide(),
    AutoAugment("imagenet"),
    AutoAugment("cifar10"),
    AutoAugment("svhn"),
]


@pytest.mark.parametrize("op", NEW_OPS, ids=repr)
def test_new_ops_are_per_sample_and_replay_from_the_generator(op):
    x, y = photos(b=24)
    a, _ = op(x, y, gen(1))
    b, _ = op(x, y, gen(1))
    c, _ = op(x, y, gen(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(o.flatten().tolist()) for o in a}) > 6  # one image, many outcomes
    assert torch.equal(x, photos(b=24)[0])  # the input is left alone


@pytest.mark.parametrize(
    ("key", "value", "reference"),
    [
        ("brightness", 0.6, TF.adjust_brightness),
        ("contrast", 1.7, TF.adjust_contrast),
        ("saturation", 0.2, TF.adjust_saturation),
        ("hue", -0.3, TF.adjust_hue),
    ],
)
def test_color_jitter_at_a_fixed_factor_is_torchvisions(key, value, reference):
    x, y = photos(b=3)
    out, _ = ColorJitter(**{key: (value, value)})(x, y, gen())
    assert torch.allclose(out, reference(x, value), atol=2e-6)
    assert not torch.allclose(out, x, atol=1e-3)


def test_color_jitter_order_is_drawn_per_image():
    x, y = photos(b=32)
    out, _ = ColorJitter(brightness=(1.6, 1.6), contrast=(0.3, 0.3))(x, y, gen())
    first_b = TF.adjust_contrast(TF.adjust_brightness(x[0], 1.6), 0.3)
    first_c = TF.adjust_brightness(TF.adjust_contrast(x[0], 0.3), 1.6)
    assert not torch.allclose(first_b, first_c, atol=1e-3)
    which = [torch.allclose(o, first_b, atol=2e-6) for o in out]
    assert all(w or torch.allclose(o, first_c, atol=2e-6) for w, o in zip(which, out, strict=True))
    assert 0 < sum(which) < 32


def test_random_erasing_fills_one_box_per_image():
    x = torch.ones(40, 3, 16, 20)
    op = RandomErasing(p=0.5, scale=(0.05, 0.2), value=(0.1, 0.2, 0.3))
    out, _ = op(x, torch.zeros(40, dtype=torch.long), gen())
    erased = out[:, 0] != 1
    assert 5 < erased.flatten(1).any(1).sum() < 35  # about half the images
    for o, mask in zip(out, erased, strict=True):
        if mask.any():
            rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
            box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            assert box.all() and box.numel() == mask.sum()  # one solid box
            assert 0.03 * 320 <= box.numel() <= 0.25 * 320  # scale, give or take rounding
            assert torch.equal(
                o[:, mask], torch.tensor([[0.1], [0.2], [0.3]]).expand(3, box.numel())
            )
    assert torch.equal(RandomErasing(p=0.0)(x, None, gen())[0], x)
    with pytest.raises(ConfigError, match="needs 1 or 3 numbers"):
        RandomErasing(value=(0.1, 0.2))(x, None, gen())


def _outcomes(tv_op, x, names_and_magnitudes):
    """torchvision's result of applying each (op, magnitude) sequence to the batch ``x``."""
    outs = []
    for steps in names_and_magnitudes:
        o = x
        for name, m in steps:
            o = tv_op._apply_image_or_video_transform(
                o, name, m, interpolation=tv_op.interpolation, fill=tv_op._fill
            )
        outs.append(o)
    return torch.stack(outs, 1)  # (B, candidates, C, H, W)


def _each_is_one_of(out, candidates):
    """How many distinct candidates the outputs matched (each output must match one)."""
    close = (out[:, None] - candidates).abs().flatten(2).amax(2) < 2e-6
    assert close.any(1).all(), "an output is none of torchvision's outcomes"
    return int(close.any(0).sum())


def _signed(name, magnitudes, level):
    if magnitudes is None:
        return [0.0]
    m = float(magnitudes[level])
    return [m, -m] if name in fn.SIGNED else [m]


def test_rand_augment_gives_each_image_one_of_torchvisions_ops():
    # bin 3 of 7 (shear 0.15, rotation 15 degrees) puts no sampling point on an exact
    # half-pixel, where nearest-neighbour rounding may go either way on either side
    x, y = photos(b=64, h=9, w=10)
    op = RandAugment(num_ops=1, magnitude=3, num_magnitude_bins=7)
    out, _ = op(x, y, gen())
    space = fn.op_space(False, 7, (9, 10))
    steps = [[(n, m)] for n, mags in space.items() for m in _signed(n, mags, 3)]
    tv_op = T.RandAugment(num_ops=1, magnitude=3, num_magnitude_bins=7)
    assert _each_is_one_of(out, _outcomes(tv_op, x, steps)) > 12


def test_trivial_augment_gives_each_image_one_of_torchvisions_ops():
    x, y = photos(b=64, h=9, w=10)
    out, _ = TrivialAugmentWide(num_magnitude_bins=4)(x, y, gen())
    space = fn.op_space(True, 4, (9, 10))
    steps = [
        [(n, m)] for n, mags in space.items() for level in range(4) for m in _signed(n, mags, level)
    ]
    tv_op = T.TrivialAugmentWide(num_magnitude_bins=4)
    assert _each_is_one_of(out, _outcomes(tv_op, x, steps)) > 15


def test_auto_augment_applies_torchvisions_sub_policies():
    x, y = photos(b=48, h=9, w=10)
    out, _ = AutoAugment("cifar10")(x, y, gen())
    space = {**fn.op_space(False, 10, (9, 10)), "Invert": None}
    steps = set()
    for sub in fn.POLICIES["cifar10"]:
        for keep in itertools.product((False, True), repeat=2):
            options = [
                [(n, m) for m in _signed(n, space[n], level or 0)]
                for (n, _, level), k in zip(sub, keep, strict=True)
                if k
            ]
            steps.update(itertools.product(*options))
    tv_op = T.AutoAugment(T.AutoAugmentPolicy.CIFAR10)
    assert _each_is_one_of(out, _outcomes(tv_op, x, sorted(steps))) > 10


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (
            dict(type="ColorJitter", hue=0.6),
            r"pipeline.0.hue \(ColorJitter\) must be in \[0.0, 0.5\]",
        ),
        (dict(type="ColorJitter", brightness=-0.1), "pipeline.0.brightness"),
        (dict(type="ColorJitter", contrast=(1.5, 0.5)), "pipeline.0.contrast .* min <= max"),
        (dict(type="ColorJitter", saturation=(1, 2, 3)), "pipeline.0.saturation"),
        (dict(type="RandAugment", magnitude=31), r"pipeline.0.magnitude .* \[0, 30\]"),
        (dict(type="RandAugment", num_ops=1.5), "pipeline.0.num_ops .* integer"),
        (dict(type="TrivialAugmentWide", num_magnitude_bins=1), "num_magnitude_bins"),
        (dict(type="AutoAugment", policy="cifar100"), "pipeline.0.policy .* 'imagenet'"),
        (dict(type="RandomErasing", scale=(0.5, 0.1)), "pipeline.0.scale .* min <= max"),
        (dict(type="RandomErasing", p=2), "pipeline.0.p "),
        (dict(type="RandomErasing", value=[]), "pipeline.0.value"),
        (dict(type="RandomErasing", value="random"), "pipeline.0.value"),
    ],
)
def test_new_op_arguments_are_checked(op, message):
    with pytest.raises(ConfigError, match=message):
        check_pipeline([op])


def test_color_jitter_off_and_torchvision_ranges():
    assert ColorJitter(0, (1, 1), None, 0.0).__dict__ == dict(
        brightness=None, contrast=None, saturation=None, hue=None
    )
    op = ColorJitter(brightness=1.5, hue=0.2)
    assert op.brightness == (0.0, 2.5) and op.hue == (-0.2, 0.2)
    x, y = photos(b=4)
    assert torch.equal(ColorJitter()(x, y, gen())[0], x)
