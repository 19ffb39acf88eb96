"""The per-sample kernels against torchvision.transforms.v2.functional, image by image."""

import math

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from cnnzoo.data.augment import functional as fn

NEAREST = InterpolationMode.NEAREST


def images(n=6, c=3, h=12, w=11, seed=0):
    """Float images on the 256 levels of uint8, as the loader makes them."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8).float() / 255


def params(*values):
    return torch.tensor(values, dtype=torch.float64)


FACTORS = params(0.0, 0.3, 1.0, 1.4, 1.99, 0.7)
# kernel, torchvision's function, per-sample parameters
CASES = dict(
    brightness=(fn.brightness, TF.adjust_brightness, FACTORS),
    contrast=(fn.contrast, TF.adjust_contrast, FACTORS),
    saturation=(fn.saturation, TF.adjust_saturation, FACTORS),
    sharpness=(fn.sharpness, TF.adjust_sharpness, FACTORS),
    hue=(fn.hue, TF.adjust_hue, params(-0.5, -0.21, 0.0, 0.1, 0.33, 0.5)),
    posterize=(fn.posterize, lambda a, v: TF.posterize(a, int(v)), params(1, 2, 4, 5, 7, 8)),
    solarize=(fn.solarize, TF.solarize, params(0.0, 0.2, 0.5, 0.7, 0.9, 1.0)),
)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("c", [3, 1])
def test_kernel_matches_torchvision_per_image(name, c):
    kernel, reference, values = CASES[name]
    x = images(c=c)
    expected = torch.stack([reference(a, float(v)) for a, v in zip(x, values, strict=True)])
    out = kernel(x, values)
    assert torch.allclose(out, expected, atol=2e-6)
    if c == 3 or name not in ("saturation", "hue"):  # one channel has no colour to change
        assert not torch.allclose(out, x, atol=1e-3)


@pytest.mark.parametrize(
    ("kernel", "reference"), [(fn.autocontrast, TF.autocontrast), (fn.equalize, TF.equalize)]
)
def test_image_kernels_match_torchvision(kernel, reference):
    x = images(n=5) * 0.4 + 0.2  # low contrast, so both have work to do
    x[1, 0] = 0.5  # a flat channel: left as it is
    x[2] = x[2] * 0.02  # few levels: equalize's step is small
    out = kernel(x)
    assert torch.allclose(out, torch.stack([reference(a) for a in x]), atol=1e-6)
    assert not torch.allclose(out, x, atol=1e-3)


SHIFTS = params(-5.7, -2.0, 0.0, 1.2, 3.0, 9.9)
SHEARS = params(-0.3, -0.1, 0.0, 0.15, 0.25, 0.99)


def _affine(a, angle=0.0, translate=(0, 0), shear=(0.0, 0.0), center=None):
    return TF.affine(
        a,
        angle=angle,
        translate=list(translate),
        scale=1.0,
        shear=list(shear),
        interpolation=NEAREST,
        center=center,
    )


GEOMETRIC = dict(
    ShearX=(
        SHEARS,
        lambda a, v: _affine(a, shear=(math.degrees(math.atan(v)), 0.0), center=[0, 0]),
    ),
    ShearY=(
        SHEARS,
        lambda a, v: _affine(a, shear=(0.0, math.degrees(math.atan(v))), center=[0, 0]),
    ),
    TranslateX=(SHIFTS, lambda a, v: _affine(a, translate=(int(v), 0))),
    TranslateY=(SHIFTS, lambda a, v: _affine(a, translate=(0, int(v)))),
    Rotate=(params(-30, -7.5, 0, 12, 45, 135), lambda a, v: TF.rotate(a, v, NEAREST)),
)


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_geometric_ops_match_torchvision(name):
    values, reference = GEOMETRIC[name]
    x = images(h=13, w=10)
    out = fn.affine(x, fn.geometric_maps(name, values, (13, 10)))
    expected = torch.stack([reference(a, float(v)) for a, v in zip(x, values, strict=True)])
    assert torch.equal(out, expected)
    assert torch.equal(out[2], x[2]) and not torch.equal(out[-1], x[-1])  # magnitude 0: as is


def test_apply_ops_gives_each_sample_its_own_op():
    """Grouping by op (and one resampling for all geometric ops) changes nothing: each
    sample comes out as if transformed alone."""
    names = ["Identity", "Rotate", "Brightness", "TranslateX", "Equalize", "Posterize"]
    op = torch.tensor([1, 2, -1, 3, 4, 5, 1, 0, 3, 2])
    magnitude = params(20, 0.5, 0, -3, 0, 3, -40, 0, 2, -0.5)
    x = images(n=10)
    out = fn.apply_ops(x, names, op, magnitude)
    for i in range(10):
        alone = fn.apply_ops(x[i : i + 1], names, op[i : i + 1], magnitude[i : i + 1])
        assert torch.equal(out[i], alone[0])
    assert torch.equal(out[2], x[2]) and torch.equal(out[7], x[7])  # no op, Identity
    assert not torch.equal(out[0], out[6])


@pytest.mark.parametrize(
    ("cls", "wide"), [(T.RandAugment, False), (T.TrivialAugmentWide, True), (T.AutoAugment, False)]
)
def test_op_space_is_torchvisions(cls, wide):
    bins = 10 if cls is T.AutoAugment else 31
    ours = fn.op_space(wide, bins, (40, 24))
    if cls is T.AutoAugment:
        ours = {k: v for k, v in ours.items() if k != "Identity"} | {"Invert": None}
    theirs = cls._AUGMENTATION_SPACE
    assert set(ours) == set(theirs)
    for name, (magnitudes, signed) in theirs.items():
        assert (name in fn.SIGNED) == signed, name
        mine = ours[name]
        if magnitudes(bins, 40, 24) is None:
            assert mine is None, name
        else:
            assert torch.allclose(mine, magnitudes(bins, 40, 24).double(), atol=1e-5), name


@pytest.mark.parametrize("policy", sorted(fn.POLICIES))
def test_autoaugment_policies_are_torchvisions(policy):
    theirs = T.AutoAugment(T.AutoAugmentPolicy(policy))._policies
    assert [tuple(s) for s in theirs] == list(fn.POLICIES[policy])
