import pytest
import torch

from cnnzoo.data.augment import (
    AugContext,
    CutMix,
    Cutout,
    Mixup,
    PCAColor,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomTranslate,
    build_pipeline,
)
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
