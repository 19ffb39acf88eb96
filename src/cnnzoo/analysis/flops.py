"""FLOPs and MACs, counted by PyTorch itself (``torch.utils.flop_counter.FlopCounterMode``).

The counter follows the convention of the papers' "FLOPs" in the roofline sense: one
multiply-add is **2 FLOPs**. Most CNN papers (MobileNet's "mult-adds", ResNet's "FLOPs")
report multiply-accumulates, so ``macs = flops / 2`` is the number to hold against them.
Only matrix products and convolutions are counted (they are >99% of the work in these
networks); BatchNorm, activations, pooling and additions are not.

Counting also works on the meta device (shapes only, no memory, no arithmetic), which is how
``cnnzoo models`` lists the whole zoo in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo.errors import ConfigError


def count_flops(model: nn.Module, input_size: Sequence[int], batch_size: int = 1) -> dict:
    """FLOPs and MACs of one forward pass (eval mode) of ``batch_size`` images shaped
    ``input_size`` = (C, H, W), on the model's own device (``meta`` works).

    Returns ``dict(flops=..., macs=..., by_operator={op name: FLOPs})``, ``macs = flops // 2``.
    """
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != 3 or min(input_size) < 1:
        raise ConfigError(f"input_size must be (C, H, W) with positive sizes, got {input_size}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(batch_size, *input_size, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.inference_mode(), counter:
            model(x)
    finally:
        model.train(was_training)
    flops = int(counter.get_total_flops())
    by_op = {
        str(op).split(".")[1] if "." in str(op) else str(op): int(n)
        for op, n in counter.get_flop_counts()["Global"].items()
    }
    return dict(flops=flops, macs=flops // 2, by_operator=by_op)


def format_count(n: float) -> str:
    """A count in K/M/G with 3 significant digits or more: ``1_814_073_344`` -> ``'1.81G'``,
    ``416_520`` -> ``'417K'``, ``11_689`` -> ``'11.7K'``, ``840`` -> ``'840'``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale * 0.9995:
            v = n / scale
            return f"{v:.3g}{unit}" if abs(v) < 999.5 else f"{v:.0f}{unit}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.3g}"


def has_depthwise_conv(model: nn.Module) -> bool:
    """Whether ``model`` has a depthwise convolution (one filter per input channel, as in
    MobileNet's depthwise separable blocks), i.e. whether :func:`separable_report` applies."""
    return any(
        isinstance(m, nn.Conv2d) and m.in_channels > 1 and m.groups == m.in_channels
        for m in model.modules()
    )


def separable_cost_ratio(kernel_size: int, out_channels: int) -> float:
    """Cost of a depthwise separable convolution relative to a standard one (MobileNet,
    Howard et al. 2017, eq. 5): ``(k^2 M + M N) / (k^2 M N) = 1/N + 1/k^2`` for ``M`` input
    channels, ``N`` output channels and a ``k x k`` kernel; independent of ``M`` and the map size."""
    return 1.0 / out_channels + 1.0 / kernel_size**2


def separable_vs_standard(
    in_channels: int = 256, out_channels: int = 256, kernel_size: int = 3, size: int = 14
) -> dict:
    """Measured MACs of a standard ``k x k`` convolution and of a depthwise ``k x k`` +
    pointwise 1x1 pair on the same ``in_channels x size x size`` tensor (no bias, "same"
    padding), with the measured ratio and the formula's, so one can see they agree."""
    pad = kernel_size // 2
    with torch.device("meta"):
        standard = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, bias=False)
        separable = nn.Sequential(
            nn.Conv2d(
                in_channels, in_channels, kernel_size, padding=pad, groups=in_channels, bias=False
            ),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )
    shape = (in_channels, size, size)
    std_macs = count_flops(standard, shape)["macs"]
    sep_macs = count_flops(separable, shape)["macs"]
    return dict(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel_size,
        size=size,
        standard_macs=std_macs,
        separable_macs=sep_macs,
        measured_ratio=sep_macs / std_macs,
        formula_ratio=separable_cost_ratio(kernel_size, out_channels),
    )


def separable_report(
    in_channels: int = 256, out_channels: int = 256, kernel_size: int = 3, size: int = 14
) -> str:
    """A few lines explaining the depthwise separable saving, with a worked example and the
    counter's measurement."""
    r = separable_vs_standard(in_channels, out_channels, kernel_size, size)
    k, n = kernel_size, out_channels
    return "\n".join(
        [
            "Depthwise separable vs standard convolution (MobileNet, Howard et al. 2017, eq. 5):",
            "  cost ratio = (k^2*M*H*W + M*N*H*W) / (k^2*M*N*H*W) = 1/N + 1/k^2",
            f"  worked example: k={k}, N={n} -> 1/{n} + 1/{k * k} = {r['formula_ratio']:.4f}"
            f" (about {1 / r['formula_ratio']:.1f}x fewer MACs)",
            f"  measured on a {in_channels}x{size}x{size} tensor by FlopCounterMode:",
            f"    {f'standard {k}x{k} conv {in_channels}->{n}:':<36}{r['standard_macs']:>15,} MACs",
            f"    {f'depthwise {k}x{k} + pointwise 1x1:':<36}{r['separable_macs']:>15,} MACs",
            f"    measured ratio: {r['measured_ratio']:.4f}",
        ]
    )
