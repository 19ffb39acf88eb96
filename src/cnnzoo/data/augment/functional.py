"""Per-sample image functions on whole batches: the kernels of the colour and policy ops.

Every function takes a float batch ``x`` (N, C, H, W) on the [0, 1] scale and, where it has
one, a parameter per sample as a CPU tensor (N,), and gives each image its own parameter in
one vectorised pass. The semantics are those of ``torchvision.transforms.v2.functional`` on
float images (clamped blends with ITU-R 601 grey, HSV hue, PIL's equalize on 256 levels,
nearest-neighbour affine maps filled with zeros), so a recipe written for torchvision keeps
its meaning; ``tests/data/test_functional.py`` holds each one against torchvision.

:func:`apply_ops` runs a different op per sample (RandAugment, TrivialAugment, AutoAugment):
the samples are grouped by op, each group is transformed in one call, and the geometric ops
of all groups share one ``grid_sample``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

GREY = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision and PIL weigh RGB


def per_sample(v: Tensor, x: Tensor) -> Tensor:
    """``v`` (N,) as an (N, 1, 1, 1) tensor on ``x``'s device and dtype."""
    return v.to(x.device, x.dtype).view(-1, 1, 1, 1)


def grey(x: Tensor) -> Tensor:
    """(N, 1, H, W) luma of an RGB batch; a one-channel batch is its own grey."""
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(GREY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def blend(a: Tensor, b: Tensor, factor: Tensor) -> Tensor:
    """``factor * a + (1 - factor) * b`` clamped to [0, 1] (factor (N, 1, 1, 1))."""
    return torch.lerp(b, a, factor).clamp_(0.0, 1.0)


def brightness(x: Tensor, factor: Tensor) -> Tensor:
    """Scale each image by its factor (0: black, 1: unchanged)."""
    return (x * per_sample(factor, x)).clamp_(0.0, 1.0)


def contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with its mean grey level (0: flat grey, 1: unchanged)."""
    means = x.mean((2, 3))
    mean = means @ means.new_tensor(GREY) if x.shape[1] == 3 else means[:, 0]
    return blend(x, mean.view(-1, 1, 1, 1), per_sample(factor, x))


def saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with its grey version (0: grey, 1: unchanged); one channel: as is."""
    if x.shape[1] == 1:
        return x
    return blend(x, grey(x), per_sample(factor, x))


def _wrap(t: Tensor) -> Tensor:
    """``t % 1.0``, 4x faster on CPU than torch.remainder."""
    return t - t.floor()


def rgb_to_hsv(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Hue, saturation and value (N, H, W) of an RGB batch, hue on [0, 1)."""
    r, g, b = x.unbind(1)
    v = x.amax(1)
    delta = v - x.amin(1)
    s = delta / torch.where(v == 0, 1.0, v)
    d = torch.where(delta == 0, 1.0, delta)
    h = torch.where(v == r, (g - b) / d, torch.where(v == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    h = torch.where(delta == 0, 0.0, _wrap(h / 6.0))
    return h, s, v


def hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """An RGB batch (N, 3, H, W) from hue on [0, 1), saturation and value (N, H, W)."""
    n = torch.tensor([5.0, 3.0, 1.0], device=h.device, dtype=h.dtype).view(1, 3, 1, 1)
    k = _wrap((n + 6.0 * h.unsqueeze(1)) / 6.0) * 6.0
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return v.unsqueeze(1) * (1.0 - s.unsqueeze(1) * ramp)


def hue(x: Tensor, shift: Tensor) -> Tensor:
    """Turn each image's hue by its shift, in turns of the colour wheel ([-0.5, 0.5])."""
    if x.shape[1] == 1:
        return x
    h, s, v = rgb_to_hsv(x)
    h = _wrap(h + per_sample(shift, x)[:, 0])
    return hsv_to_rgb(h, s, v)


def sharpness(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with a 3x3 smoothed copy of itself (0: smoothed, 1: unchanged,
    2: sharpened); the one-pixel border stays as it is, as in PIL."""
    if min(x.shape[-2:]) <= 2:
        return x
    inner = x[:, :, 1:-1, 1:-1]
    # the kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13: a 3x3 box sum (as three shifted rows
    # of three shifted columns, much faster on CPU than a depthwise convolution) + 4 x centre
    rows = x[:, :, :, :-2] + x[:, :, :, 1:-1] + x[:, :, :, 2:]
    box = rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]
    smooth = box.add_(inner, alpha=4.0).div_(13.0)
    out = x.clone()
    out[:, :, 1:-1, 1:-1] = blend(inner, smooth, per_sample(factor, x))
    return out


def posterize(x: Tensor, bits: Tensor) -> Tensor:
    """Keep ``bits`` bits per channel: 2**bits levels per sample."""
    levels = per_sample(2.0**bits, x)
    out = (x * levels).floor_()
    return torch.minimum(out, levels - 1, out=out).clamp_(min=0.0).div_(levels)


def solarize(x: Tensor, threshold: Tensor) -> Tensor:
    """Invert the pixels at or above each image's threshold."""
    flip = (x >= per_sample(threshold, x)).to(x.dtype)
    return torch.lerp(x, 1.0 - x, flip)  # exact for weights 0 and 1; 3x faster than where on CPU


def autocontrast(x: Tensor) -> Tensor:
    """Stretch each channel of each image to span [0, 1] (a flat channel stays as is)."""
    lo = x.amin((2, 3), keepdim=True)
    span = x.amax((2, 3), keepdim=True) - lo
    flat = span == 0
    lo = torch.where(flat, 0.0, lo)
    span = torch.where(flat, 1.0, span)
    return ((x - lo) / span).clamp_(0.0, 1.0)


def equalize(x: Tensor) -> Tensor:
    """Histogram equalisation per channel on 256 grey levels (PIL's rule: the pixels of the
    highest level present are left out of the step, and a channel whose step is 0 is not
    spread); the result is on those 256 levels."""
    n, c, H, W = x.shape
    # level + 256 x (image, channel), computed in floats (faster on CPU than in int64; exact
    # below 2**24 in float32)
    exact = torch.float32 if n * c * 256 <= 2**24 else torch.float64
    rows = torch.arange(n * c, device=x.device, dtype=exact).view(n, c, 1, 1) * 256
    q = (x.to(exact) * (256.0 - 1e-3)).clamp_(0.0, 255.0).add_(rows).long()
    hist = torch.bincount(q.flatten(), minlength=n * c * 256).view(n * c, 256)
    levels = torch.arange(256, device=x.device)
    top = torch.where(hist > 0, levels, -1).amax(1, keepdim=True)
    step = (H * W - hist.gather(1, top)) // 255
    below = hist.cumsum(1) - hist  # pixels strictly below each level
    lut = ((below + step // 2) // step.clamp(min=1)).clamp_(max=255)
    lut = torch.where(step > 0, lut, levels).to(x.dtype) / 255.0
    return lut.view(-1).take(q)


def invert(x: Tensor) -> Tensor:
    return 1.0 - x


def affine(x: Tensor, A: Tensor) -> Tensor:
    """Resample each image through its own inverse map ``A`` (N, 2, 3): the output pixel
    whose centre is at (u, v), in pixels from the image centre, reads the input at
    ``A @ (u, v, 1)``; nearest neighbour, zeros outside. A point that falls exactly
    between two pixels may round the other way than in torchvision (float rounding)."""
    n, c, H, W = x.shape
    theta = A.clone()
    theta[:, 0, 1] *= H / W
    theta[:, 1, 0] *= W / H
    theta[:, 0, 2] *= 2.0 / W
    theta[:, 1, 2] *= 2.0 / H
    grid = F.affine_grid(theta.to(x.device, x.dtype), [n, c, H, W], align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def geometric_maps(name: str, m: Tensor, size: tuple[int, int]) -> Tensor:
    """The inverse maps (N, 2, 3) float64 of a geometric op for magnitudes ``m`` (N,):
    shears about the top-left corner (x += m * y), translations by whole pixels, rotations
    in degrees counter-clockwise about the centre, as torchvision's policies apply them."""
    H, W = size
    m = m.to(torch.float64)
    A = torch.zeros(len(m), 2, 3, dtype=torch.float64)
    A[:, 0, 0] = A[:, 1, 1] = 1.0
    if name == "ShearX":
        A[:, 0, 1], A[:, 0, 2] = m, m * H / 2
    elif name == "ShearY":
        A[:, 1, 0], A[:, 1, 2] = m, m * W / 2
    elif name == "TranslateX":
        A[:, 0, 2] = -m.trunc()
    elif name == "TranslateY":
        A[:, 1, 2] = -m.trunc()
    elif name == "Rotate":
        t = torch.deg2rad(m)
        A[:, 0, 0], A[:, 0, 1] = t.cos(), -t.sin()
        A[:, 1, 0], A[:, 1, 1] = t.sin(), t.cos()
    else:
        raise KeyError(name)
    return A


GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
KERNELS = dict(
    Identity=lambda x, m: x,
    Brightness=lambda x, m: brightness(x, 1.0 + m),
    Color=lambda x, m: saturation(x, 1.0 + m),
    Contrast=lambda x, m: contrast(x, 1.0 + m),
    Sharpness=lambda x, m: sharpness(x, 1.0 + m),
    Posterize=posterize,
    Solarize=solarize,
    AutoContrast=lambda x, m: autocontrast(x),
    Equalize=lambda x, m: equalize(x),
    Invert=lambda x, m: invert(x),
)


def apply_ops(x: Tensor, names: Sequence[str], op: Tensor, magnitude: Tensor) -> Tensor:
    """Apply op ``names[op[i]]`` with magnitude ``magnitude[i]`` to sample ``i`` (``op[i]``
    = -1: leave it); ``op`` and ``magnitude`` are CPU tensors (N,)."""
    out = x.clone()
    geo_idx, geo_maps = [], []
    for k, name in enumerate(names):
        idx = (op == k).nonzero()[:, 0]
        if len(idx) == 0 or name == "Identity":
            continue
        if name in GEOMETRIC:
            geo_idx.append(idx)
            geo_maps.append(geometric_maps(name, magnitude[idx], tuple(x.shape[-2:])))
            continue
        on = idx.to(x.device)
        out.index_copy_(0, on, KERNELS[name](out.index_select(0, on), magnitude[idx]))
    if geo_idx:
        on = torch.cat(geo_idx).to(x.device)
        out.index_copy_(0, on, affine(out.index_select(0, on), torch.cat(geo_maps)))
    return out


def op_space(wide: bool, bins: int, size: tuple[int, int]) -> dict[str, Tensor | None]:
    """The ops of RandAugment/AutoAugment (``wide=False``) or TrivialAugmentWide and their
    ``bins`` magnitudes (None: the op has none), as torchvision defines them; the signed
    ops (:data:`SIGNED`) are applied with a random sign."""
    H, W = size

    def up_to(top: float) -> Tensor:
        return torch.linspace(0.0, top, bins, dtype=torch.float64)

    shear, degrees, enhance = (0.99, 135.0, 0.99) if wide else (0.3, 30.0, 0.9)
    shift_x, shift_y = (32.0, 32.0) if wide else (150.0 / 331.0 * W, 150.0 / 331.0 * H)
    halvings = 6 if wide else 4  # Posterize goes from 8 bits down to 8 - halvings
    bits = 8 - (torch.arange(bins) / ((bins - 1) / halvings)).round()
    return dict(
        Identity=None,
        ShearX=up_to(shear),
        ShearY=up_to(shear),
        TranslateX=up_to(shift_x),
        TranslateY=up_to(shift_y),
        Rotate=up_to(degrees),
        Brightness=up_to(enhance),
        Color=up_to(enhance),
        Contrast=up_to(enhance),
        Sharpness=up_to(enhance),
        Posterize=bits.to(torch.float64),
        Solarize=torch.linspace(1.0, 0.0, bins, dtype=torch.float64),
        AutoContrast=None,
        Equalize=None,
    )


SIGNED = frozenset(
    ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
    + ("Brightness", "Color", "Contrast", "Sharpness")
)

# AutoAugment's learned policies (Cubuk et al. 2019, appendix): 25 sub-policies of two
# (op, probability, magnitude bin of 10) each, for ImageNet, CIFAR-10 and SVHN.
POLICIES: dict[str, tuple[tuple[tuple[str, float, int | None], ...], ...]] = dict(
    imagenet=(
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
        (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
        (("Color", 0.4, 0), ("Equalize", 0.6, None)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    ),
    cifar10=(
        (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
        (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
        (("Color", 0.9, 9), ("Equalize", 0.6, None)),
        (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, None), ("Invert", 0.1, None)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
    ),
    svhn=(
        (("ShearX", 0.9, 4), ("Invert", 0.2, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.6, None), ("Solarize", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("AutoContrast", 0.8, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, None)),
        (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, None), ("AutoContrast", 0.8, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
        (("ShearY", 0.8, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.9, None), ("TranslateY", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
        (("Invert", 0.8, None), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
        (("Invert", 0.6, None), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
        (("ShearX", 0.1, 6), ("Invert", 0.6, None)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
        (("ShearY", 0.8, 4), ("Invert", 0.8, None)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
        (("ShearY", 0.8, 5), ("AutoContrast", 0.7, None)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, None)),
    ),
)
