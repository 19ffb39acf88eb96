"""Whole-batch augmentation with per-sample randomness: the ops, their pipeline, and (in
:mod:`cnnzoo.data.augment.functional`) the per-sample kernels they run.

Every op takes a float batch ``x`` (B, C, H, W) on the [0, 1] scale, its targets ``y``
(int64 (B,) or soft float (B, K)) and a CPU :class:`torch.Generator`, and returns the new
pair. Random parameters are drawn on the CPU from that generator (a few numbers per
sample) and applied on the batch's device in one go, so a batch is augmented identically on
any device and a given (seed, epoch, rank) always replays the same augmentations.
Normalisation comes after the pipeline (see :mod:`cnnzoo.data.batches`).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.data.augment import functional as fn
from cnnzoo.errors import ConfigError, unknown

MAX_SIDE = 65536  # the largest image side, crop, padding or shift an op accepts


@dataclass
class AugContext:
    """What some ops need to know about the data: class count (Mixup, CutMix), the channel
    mean on the [0, 1] scale (Cutout's fill) and the RGB eigen-decomposition (PCAColor)."""

    num_classes: int
    mean: tuple[float, ...]
    eigvals: Tensor | None = None
    eigvecs: Tensor | None = None


class OpArgumentError(ConfigError):
    """An op argument of the wrong type or out of range (``key`` names it)."""

    def __init__(self, op: str, key: str, problem: str) -> None:
        super().__init__(f"{op} {key} {problem}")
        self.op, self.key, self.problem = op, key, problem


def _number(
    op: Op,
    key: str,
    value: object,
    lo: float,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    integer: bool = False,
) -> float:
    """``value``, a finite number (an integer if ``integer``) in [lo, hi] ((lo, hi] if
    ``lo_open``); booleans are refused."""
    name = type(op).__name__
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise OpArgumentError(name, key, f"must be {what}, got {value!r}")
    if not math.isfinite(value):
        raise OpArgumentError(name, key, f"must be finite, got {value!r}")
    if value < lo or value > hi or (lo_open and value == lo):
        if hi == math.inf:
            bounds = f"{'>' if lo_open else '>='} {lo}"
        else:
            bounds = f"in {'(' if lo_open else '['}{lo}, {hi}]"
        raise OpArgumentError(name, key, f"must be {bounds}, got {value!r}")
    return value


def _size(op: Op, key: str, value: object) -> tuple[int, int]:
    """``32`` or ``(h, w)``: positive integers up to :data:`MAX_SIDE`, as ``(h, w)``."""
    pair = [value, value] if isinstance(value, numbers.Number) else value
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise OpArgumentError(type(op).__name__, key, f"must be an int or (h, w), got {value!r}")
    h, w = (int(_number(op, key, v, 1, MAX_SIDE, integer=True)) for v in pair)
    return h, w


def _interval(op: Op, key: str, value: object, lo: float, hi: float) -> tuple[float, float]:
    """A ``(min, max)`` pair with ``lo < min <= max <= hi``."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise OpArgumentError(type(op).__name__, key, f"must be a (min, max) pair, got {value!r}")
    a, b = (float(_number(op, key, v, lo, hi, lo_open=True)) for v in value)
    if a > b:
        raise OpArgumentError(type(op).__name__, key, f"must have min <= max, got {value!r}")
    return a, b


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def _randint(g: torch.Generator, n: int, high: Tensor | int) -> Tensor:
    """Integers uniform in ``0..high-1`` (``high`` per sample or scalar)."""
    return (torch.rand(n, generator=g, dtype=torch.float64) * high).floor().long()


def crop(x: Tensor, top: Tensor, left: Tensor, h: int, w: int) -> Tensor:
    """Per-sample crops of one size: sample i is cut at (top[i], left[i]). One gather over
    the flattened pixels, which is much faster than advanced indexing."""
    b, c, _, W = x.shape
    dev = x.device
    start = (top * W + left).to(dev)
    window = (torch.arange(h, device=dev)[:, None] * W + torch.arange(w, device=dev)).flatten()
    idx = (start[:, None] + window)[:, None, :].expand(b, c, h * w)
    return x.flatten(2).gather(2, idx).view(b, c, h, w)


def one_hot(y: Tensor, num_classes: int) -> Tensor:
    """Soft targets (B, K) float32 from int labels; soft targets pass through."""
    if y.is_floating_point():
        return y
    return F.one_hot(y, num_classes).float()


def _beta(g: torch.Generator, alpha: float) -> float:
    """A Beta(alpha, alpha) draw that depends only on ``g``."""
    seed = int(torch.randint(0, 2**62, (1,), generator=g).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


class Op:
    """Base of the batch ops: ``__call__(x, y, g) -> (x, y)`` and the output size."""

    mixes_targets = False

    def __call__(self, x: Tensor, y: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        raise TypeError(f"{type(self).__name__} must define __call__")

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class RandomCrop(Op):
    """Pad by ``padding`` (zeros, or reflection with ``padding_mode='reflect'``) and cut a
    random ``size`` window per sample (the CIFAR recipe of He et al. 2016)."""

    def __init__(
        self, size: int | Sequence[int], padding: int = 0, padding_mode: str = "zeros"
    ) -> None:
        self.size = _size(self, "size", size)
        self.padding = int(_number(self, "padding", padding, 0, MAX_SIDE, integer=True))
        if not isinstance(padding_mode, str) or padding_mode not in (
            "zeros",
            "constant",
            "reflect",
        ):
            raise OpArgumentError(
                "RandomCrop", "padding_mode", f"must be 'zeros' or 'reflect', got {padding_mode!r}"
            )
        self.padding_mode = padding_mode

    def __call__(self, x, y, g):
        h, w = self.out_size(tuple(x.shape[-2:]))
        p = self.padding
        if p:
            mode = "reflect" if self.padding_mode == "reflect" else "constant"
            x = F.pad(x, (p, p, p, p), mode=mode)
        H, W = x.shape[-2:]
        b = x.shape[0]
        return crop(x, _randint(g, b, H - h + 1), _randint(g, b, W - w + 1), h, w), y

    def out_size(self, size):
        """The crop size, once checked to fit the padded ``size``."""
        p = self.padding
        H, W = size[0] + 2 * p, size[1] + 2 * p
        if self.size[0] > H or self.size[1] > W:
            raise ConfigError(
                f"RandomCrop size {self.size} is larger than the padded image {H}x{W}; "
                f"lower its size or raise its padding"
            )
        if self.padding_mode == "reflect" and p >= min(size):
            raise ConfigError(
                f"RandomCrop padding={p} with padding_mode='reflect' needs images larger than "
                f"{p} pixels, got {size[0]}x{size[1]}; lower the padding"
            )
        return self.size


class RandomTranslate(Op):
    """Shift each image by up to ``pixels`` in x and y, filling with zeros."""

    def __init__(self, pixels: int = 2) -> None:
        self.pixels = int(_number(self, "pixels", pixels, 0, MAX_SIDE, integer=True))

    def __call__(self, x, y, g):
        p = self.pixels
        H, W = x.shape[-2:]
        x = F.pad(x, (p, p, p, p))
        b = x.shape[0]
        return crop(x, _randint(g, b, 2 * p + 1), _randint(g, b, 2 * p + 1), H, W), y


class RandomHorizontalFlip(Op):
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = float(_number(self, "p", p, 0.0, 1.0))

    def __call__(self, x, y, g):
        flip = (torch.rand(x.shape[0], generator=g) < self.p).to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(3), x), y


class Cutout(Op):
    """Cutout (DeVries and Taylor 2017): blank one ``size`` x ``size`` square per image, at a
    uniformly random centre (clipped at the border), filled with the dataset mean (zero after
    normalisation, as in the paper)."""

    def __init__(self, size: int = 16, ctx: AugContext | None = None) -> None:
        self.size = int(_number(self, "size", size, 1, MAX_SIDE, integer=True))
        self._fill = ctx.mean if ctx is not None else None

    def __call__(self, x, y, g):
        b, c, H, W = x.shape
        cy, cx = _randint(g, b, H).to(x.device), _randint(g, b, W).to(x.device)
        top, left = cy - self.size // 2, cx - self.size // 2
        r = torch.arange(H, device=x.device)[None, :]
        col = torch.arange(W, device=x.device)[None, :]
        in_r = (r >= top[:, None]) & (r < top[:, None] + self.size)
        in_c = (col >= left[:, None]) & (col < left[:, None] + self.size)
        mask = (in_r[:, :, None] & in_c[:, None, :])[:, None]
        fill = torch.tensor(self._fill or (0.0,) * c, dtype=x.dtype, device=x.device).view(
            1, c, 1, 1
        )
        return torch.where(mask, fill, x), y


def _jitter(
    op: Op, key: str, value: object, centre: float, bounds: tuple[float, float]
) -> tuple[float, float] | None:
    """torchvision's ColorJitter ranges: ``v >= 0`` means ``[centre - v, centre + v]`` (cut at
    the lower bound), or an explicit ``(min, max)`` within ``bounds``; a range that is only
    the centre (``0``, ``(1, 1)``) or ``None`` turns the adjustment off."""
    if value is None:
        return None
    name = type(op).__name__
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise OpArgumentError(
                name, key, f"must be a number or a (min, max) pair, got {value!r}"
            )
        lo, hi = (float(_number(op, key, v, *bounds)) for v in value)
        if lo > hi:
            raise OpArgumentError(name, key, f"must have min <= max, got {value!r}")
    else:
        v = float(_number(op, key, value, 0.0, bounds[1] - centre))
        lo, hi = max(centre - v, bounds[0]), centre + v
    return None if lo == hi == centre else (lo, hi)


class ColorJitter(Op):
    """Photometric jitter (Howard 2013; torchvision's ColorJitter): per image, brightness,
    contrast and saturation factors drawn from their ranges and a hue turn (in turns of the
    colour wheel), applied in a random order of its own; each range is ``v`` for
    ``[1 - v, 1 + v]`` (``[-v, v]`` for hue) or ``(min, max)``."""

    def __init__(
        self,
        brightness: float | Sequence[float] | None = None,
        contrast: float | Sequence[float] | None = None,
        saturation: float | Sequence[float] | None = None,
        hue: float | Sequence[float] | None = None,
    ) -> None:
        self.brightness = _jitter(self, "brightness", brightness, 1.0, (0.0, math.inf))
        self.contrast = _jitter(self, "contrast", contrast, 1.0, (0.0, math.inf))
        self.saturation = _jitter(self, "saturation", saturation, 1.0, (0.0, math.inf))
        self.hue = _jitter(self, "hue", hue, 0.0, (-0.5, 0.5))

    def __call__(self, x, y, g):
        b = x.shape[0]
        kernels = (fn.brightness, fn.contrast, fn.saturation, fn.hue)
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        order = torch.rand(b, 4, generator=g).argsort(1)
        factors = [None if r is None else _uniform(g, b, *r) for r in ranges]
        out = x.clone()
        for step in range(4):
            for j, (kernel, f) in enumerate(zip(kernels, factors, strict=True)):
                idx = (order[:, step] == j).nonzero()[:, 0]
                if f is None or len(idx) == 0:
                    continue
                on = idx.to(x.device)
                out.index_copy_(0, on, kernel(out.index_select(0, on), f[idx]))
        return out, y


class RandomErasing(Op):
    """Random Erasing (Zhong et al. 2020): with probability ``p`` per image, fill one box
    covering ``scale`` of the area with aspect ratio in ``ratio`` (log-uniform) with
    ``value`` (one number or one per channel, on the [0, 1] scale before normalisation);
    boxes follow torchvision's rule (10 tries, else the image is left as is)."""

    def __init__(
        self,
        p: float = 0.5,
        scale: Sequence[float] = (0.02, 0.33),
        ratio: Sequence[float] = (0.3, 3.3),
        value: float | Sequence[float] = 0.0,
    ) -> None:
        self.p = float(_number(self, "p", p, 0.0, 1.0))
        self.scale = _interval(self, "scale", scale, 0.0, 1.0)
        self.ratio = _interval(self, "ratio", ratio, 0.0, math.inf)
        if isinstance(value, list | tuple):
            if not value:
                raise OpArgumentError("RandomErasing", "value", "must be one number per channel")
            self.value = tuple(float(_number(self, "value", v, -math.inf)) for v in value)
        else:
            self.value = float(_number(self, "value", value, -math.inf))

    def __call__(self, x, y, g):
        b, c, H, W = x.shape
        value = self.value if isinstance(self.value, tuple) else (self.value,)
        if len(value) not in (1, c):
            raise ConfigError(
                f"RandomErasing value={self.value!r} needs 1 or {c} numbers for {c}-channel images"
            )
        erase = torch.rand(b, generator=g) < self.p
        tries = 10
        area = H * W * _uniform(g, b * tries, *self.scale).view(b, tries)
        logr = _uniform(g, b * tries, math.log(self.ratio[0]), math.log(self.ratio[1]))
        ar = torch.exp(logr).view(b, tries)
        h, w = torch.sqrt(area * ar).round(), torch.sqrt(area / ar).round()
        ok = (h < H) & (w < W)
        first = ok.long().argmax(1, keepdim=True)
        h, w = h.gather(1, first)[:, 0], w.gather(1, first)[:, 0]
        top = (torch.rand(b, generator=g, dtype=torch.float64) * (H - h + 1)).floor()
        left = (torch.rand(b, generator=g, dtype=torch.float64) * (W - w + 1)).floor()
        erase &= ok.any(1)
        box = torch.stack([top, top + h, left, left + w], 1).long().to(x.device)
        rows = torch.arange(H, device=x.device)[None, :]
        cols = torch.arange(W, device=x.device)[None, :]
        in_r = (rows >= box[:, :1]) & (rows < box[:, 1:2]) & erase.to(x.device)[:, None]
        in_c = (cols >= box[:, 2:3]) & (cols < box[:, 3:])
        # the box as weights 0/1 (an outer product) and lerp: exact, and on CPU much faster
        # than a boolean mask and torch.where
        mask = in_r.to(x.dtype)[:, None, :, None] * in_c.to(x.dtype)[:, None, None, :]
        fill = torch.tensor(value, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return torch.lerp(x, fill, mask), y


def _signs(g: torch.Generator, b: int, names: Sequence[str], op: Tensor) -> Tensor:
    """-1 or +1 per sample: a random sign for the signed ops, +1 for the others."""
    signed = torch.tensor([n in fn.SIGNED for n in names])
    flip = torch.rand(b, generator=g) < 0.5
    return torch.where(signed[op.clamp(min=0)] & flip, -1.0, 1.0).double()


def _table(space: dict[str, Tensor | None], bins: int) -> Tensor:
    """(ops, bins) magnitudes; zeros for the ops without one."""
    zeros = torch.zeros(bins, dtype=torch.float64)
    return torch.stack([zeros if v is None else v for v in space.values()])


class RandAugment(Op):
    """RandAugment (Cubuk et al. 2020): per image, ``num_ops`` ops drawn uniformly from 14
    (identity, shears, translations, rotation, brightness, colour, contrast, sharpness,
    posterize, solarize, autocontrast, equalize), all at bin ``magnitude`` of
    ``num_magnitude_bins``, the geometric and colour ones with a random sign."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31) -> None:
        bins = int(_number(self, "num_magnitude_bins", num_magnitude_bins, 2, 1024, integer=True))
        self.num_ops = int(_number(self, "num_ops", num_ops, 0, 64, integer=True))
        self.magnitude = int(_number(self, "magnitude", magnitude, 0, bins - 1, integer=True))
        self.num_magnitude_bins = bins

    def __call__(self, x, y, g):
        b = x.shape[0]
        space = fn.op_space(False, self.num_magnitude_bins, tuple(x.shape[-2:]))
        names = list(space)
        values = _table(space, self.num_magnitude_bins)[:, self.magnitude]
        for _ in range(self.num_ops):
            op = _randint(g, b, len(names))
            x = fn.apply_ops(x, names, op, values[op] * _signs(g, b, names, op))
        return x, y


class TrivialAugmentWide(Op):
    """TrivialAugment (Muller and Hutter 2021): per image one op of RandAugment's 14 at a
    random bin of ``num_magnitude_bins``, over the wide ranges (shear 0.99, translate 32
    pixels, rotation 135 degrees, colour 0.99, posterize down to 2 bits)."""

    def __init__(self, num_magnitude_bins: int = 31) -> None:
        self.num_magnitude_bins = int(
            _number(self, "num_magnitude_bins", num_magnitude_bins, 2, 1024, integer=True)
        )

    def __call__(self, x, y, g):
        b, bins = x.shape[0], self.num_magnitude_bins
        space = fn.op_space(True, bins, tuple(x.shape[-2:]))
        names = list(space)
        op, level = _randint(g, b, len(names)), _randint(g, b, bins)
        magnitude = _table(space, bins)[op, level] * _signs(g, b, names, op)
        return fn.apply_ops(x, names, op, magnitude), y


class AutoAugment(Op):
    """AutoAugment (Cubuk et al. 2019): per image one of the 25 sub-policies learned on
    ``policy`` ('imagenet', 'cifar10' or 'svhn'); each is two ops applied with their own
    probability and magnitude (bins of 10, RandAugment's ranges plus Invert)."""

    def __init__(self, policy: str = "imagenet") -> None:
        if not isinstance(policy, str) or policy not in fn.POLICIES:
            choices = ", ".join(map(repr, fn.POLICIES))
            raise OpArgumentError("AutoAugment", "policy", f"must be {choices}; got {policy!r}")
        self.policy = policy

    def __call__(self, x, y, g):
        b = x.shape[0]
        space = {**fn.op_space(False, 10, tuple(x.shape[-2:])), "Invert": None}
        names = list(space)
        table = _table(space, 10)
        subs = fn.POLICIES[self.policy]
        ops = torch.tensor([[names.index(n) for n, _, _ in s] for s in subs])
        probs = torch.tensor([[p for _, p, _ in s] for s in subs], dtype=torch.float64)
        levels = torch.tensor([[m or 0 for _, _, m in s] for s in subs])
        choice = _randint(g, b, len(subs))
        for j in range(ops.shape[1]):
            applied = torch.rand(b, generator=g, dtype=torch.float64) < probs[choice, j]
            op = torch.where(applied, ops[choice, j], -1)
            magnitude = table[op.clamp(min=0), levels[choice, j]] * _signs(g, b, names, op)
            x = fn.apply_ops(x, names, op, magnitude)
        return x, y


class RandomResizedCrop(Op):
    """Inception-style crop (Szegedy et al. 2015): per sample a box covering ``scale`` of the
    area with aspect ratio in ``ratio`` (log-uniform), resized bilinearly to ``size``; boxes
    are sampled with torchvision's rule (10 tries, then a centre crop)."""

    def __init__(
        self,
        size: int | Sequence[int],
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
    ) -> None:
        self.size = _size(self, "size", size)
        self.scale = _interval(self, "scale", scale, 0.0, 1.0)
        self.ratio = _interval(self, "ratio", ratio, 0.0, math.inf)

    def boxes(self, b: int, H: int, W: int, g: torch.Generator) -> Tensor:
        """(B, 4) boxes (top, left, h, w) in pixels."""
        tries = 10
        area = H * W * _uniform(g, b * tries, *self.scale).view(b, tries)
        logr = _uniform(g, b * tries, math.log(self.ratio[0]), math.log(self.ratio[1])).view(
            b, tries
        )
        ar = torch.exp(logr)
        w = torch.sqrt(area * ar).round()
        h = torch.sqrt(area / ar).round()
        ok = (w >= 1) & (h >= 1) & (w <= W) & (h <= H)
        first = ok.long().argmax(1)
        w = w.gather(1, first[:, None])[:, 0]
        h = h.gather(1, first[:, None])[:, 0]
        in_ratio = W / H
        if in_ratio < self.ratio[0]:
            cw, ch = W, round(W / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            cw, ch = round(H * self.ratio[1]), H
        else:
            cw, ch = W, H
        found = ok.any(1)
        w = torch.where(found, w, torch.full_like(w, cw))
        h = torch.where(found, h, torch.full_like(h, ch))
        top = (torch.rand(b, generator=g, dtype=torch.float64) * (H - h + 1)).floor()
        left = (torch.rand(b, generator=g, dtype=torch.float64) * (W - w + 1)).floor()
        top = torch.where(found, top, torch.full_like(top, 0.0) + ((H - h) // 2))
        left = torch.where(found, left, torch.full_like(left, 0.0) + ((W - w) // 2))
        return torch.stack([top, left, h, w], 1)

    def __call__(self, x, y, g):
        b, c, H, W = x.shape
        top, left, h, w = self.boxes(b, H, W, g).unbind(1)
        theta = torch.zeros(b, 2, 3, dtype=torch.float64)
        theta[:, 0, 0] = w / W
        theta[:, 0, 2] = (2 * left + w) / W - 1
        theta[:, 1, 1] = h / H
        theta[:, 1, 2] = (2 * top + h) / H - 1
        theta = theta.to(x.device, x.dtype)
        grid = F.affine_grid(theta, [b, c, *self.size], align_corners=False)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="border", align_corners=False
        ), y

    def out_size(self, size):
        return self.size


class Resize(Op):
    """Resize the batch to ``size`` (bilinear, antialiased)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _size(self, "size", size)

    def __call__(self, x, y, g):
        return resize_batch(x, self.size), y

    def out_size(self, size):
        return self.size


def resize_batch(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


class PCAColor(Op):
    """AlexNet's lighting noise (Krizhevsky et al. 2012): add ``sum_i a_i lambda_i p_i`` to
    every pixel, with (p_i, lambda_i) the eigenvectors/values of the training set's RGB
    covariance and a_i ~ N(0, ``std``) drawn per image."""

    def __init__(self, std: float = 0.1, ctx: AugContext | None = None) -> None:
        self.std = float(_number(self, "std", std, 0.0))
        if ctx is None or ctx.eigvals is None or ctx.eigvals.numel() != 3:
            raise ConfigError(
                "PCAColor needs 3-channel (RGB) images; set data.in_chans=3 or drop PCAColor"
            )
        self._vals, self._vecs = ctx.eigvals, ctx.eigvecs

    def __call__(self, x, y, g):
        alpha = torch.randn(x.shape[0], 3, generator=g) * self.std
        shift = (alpha * self._vals) @ self._vecs.T
        return x + shift.to(x.device, x.dtype)[:, :, None, None], y


class Mixup(Op):
    """mixup (Zhang et al. 2018): blend the batch with a shuffled copy of itself,
    ``lam * x + (1 - lam) * x[perm]`` with lam ~ Beta(alpha, alpha), and the targets alike."""

    mixes_targets = True

    def __init__(self, alpha: float = 0.2, ctx: AugContext | None = None) -> None:
        self.alpha = float(_number(self, "alpha", alpha, 0.0, lo_open=True))
        self._k = ctx.num_classes if ctx is not None else None

    def __call__(self, x, y, g):
        lam = _beta(g, self.alpha)
        perm = torch.randperm(x.shape[0], generator=g).to(x.device)
        y = one_hot(y, self._k)
        return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


class CutMix(Op):
    """CutMix (Yun et al. 2019): paste a box from a shuffled copy of the batch covering
    ``1 - lam`` of the image (lam ~ Beta(alpha, alpha)); targets mix by the pasted area."""

    mixes_targets = True

    def __init__(self, alpha: float = 1.0, ctx: AugContext | None = None) -> None:
        self.alpha = float(_number(self, "alpha", alpha, 0.0, lo_open=True))
        self._k = ctx.num_classes if ctx is not None else None

    def __call__(self, x, y, g):
        b, _, H, W = x.shape
        lam = _beta(g, self.alpha)
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(H * cut), int(W * cut)
        cy, cx = int(_randint(g, 1, H)), int(_randint(g, 1, W))
        t, bt = max(cy - ch // 2, 0), min(cy + ch // 2, H)
        lft, r = max(cx - cw // 2, 0), min(cx + cw // 2, W)
        perm = torch.randperm(b, generator=g).to(x.device)
        x = x.clone()
        x[:, :, t:bt, lft:r] = x[perm, :, t:bt, lft:r]
        lam = 1.0 - (bt - t) * (r - lft) / (H * W)
        y = one_hot(y, self._k)
        return x, lam * y + (1 - lam) * y[perm]


OPS: dict[str, type[Op]] = {
    cls.__name__: cls
    for cls in (
        RandomCrop,
        RandomResizedCrop,
        RandomHorizontalFlip,
        RandomTranslate,
        Cutout,
        RandomErasing,
        ColorJitter,
        RandAugment,
        TrivialAugmentWide,
        AutoAugment,
        Resize,
        PCAColor,
        Mixup,
        CutMix,
    )
}


class Pipeline:
    """A sequence of ops applied to each training batch."""

    def __init__(self, ops: Sequence[Op]) -> None:
        self.ops = list(ops)

    @property
    def mixes_targets(self) -> bool:
        return any(op.mixes_targets for op in self.ops)

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        for op in self.ops:
            size = op.out_size(size)
        return size

    def __call__(self, x: Tensor, y: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        for op in self.ops:
            x, y = op(x, y, g)
        return x, y

    def __repr__(self) -> str:
        return f"Pipeline({self.ops!r})"


def build_pipeline(spec: Sequence[dict] | None, ctx: AugContext) -> Pipeline:
    """Ops from config dicts like ``dict(type='RandomCrop', size=32, padding=4)``. A bad
    argument raises :class:`ConfigError` naming it as ``data.train.pipeline.N.KEY``."""
    if spec is not None and not isinstance(spec, list | tuple):
        raise ConfigError(f"data.train.pipeline must be a list of dict(type=...), got {spec!r}")
    ops = []
    for i, item in enumerate(spec or ()):
        where = f"data.train.pipeline.{i}"
        if not isinstance(item, dict) or "type" not in item:
            raise ConfigError(f"{where} must be a dict with a 'type', got {item!r}")
        kwargs = dict(item)
        name = kwargs.pop("type")
        if not isinstance(name, str) or name not in OPS:
            raise unknown("pipeline op", str(name), OPS)
        cls = OPS[name]
        params = {
            k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"
        }
        allowed = [k for k in params if k != "ctx"]
        bad = [str(k) for k in kwargs if k not in allowed]
        if bad:
            raise ConfigError(
                f"{where} ({name}) does not take {', '.join(bad)}; it takes: {', '.join(allowed)}"
            )
        missing = [k for k in allowed if params[k].default is params[k].empty and k not in kwargs]
        if missing:
            raise ConfigError(f"{where} ({name}) needs {', '.join(missing)}")
        if "ctx" in params:
            kwargs["ctx"] = ctx
        try:
            ops.append(cls(**kwargs))
        except OpArgumentError as e:
            raise ConfigError(f"{where}.{e.key} ({name}) {e.problem}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where} ({name}): {e}") from None
    return Pipeline(ops)


def check_pipeline(pipeline: list[dict]) -> None:
    """Check a training pipeline before any data is read: op names, argument names, types
    and ranges (a bad one raises :class:`ConfigError` naming ``data.train.pipeline.N.KEY``).
    What depends on the images (a crop larger than the image) is checked by ``build_data``."""
    rgb = AugContext(num_classes=2, mean=(0.5,) * 3, eigvals=torch.ones(3), eigvecs=torch.eye(3))
    build_pipeline(pipeline, rgb)
