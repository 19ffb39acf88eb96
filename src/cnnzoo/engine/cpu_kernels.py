"""CPU kernels of PyTorch (oneDNN) that fail or crawl on some layers, and how a run avoids them.

- The channels-last weight gradient of a 1x1 convolution with stride > 1 on few input
  channels writes out of bounds in oneDNN 3.12 (PyTorch 2.14; uxlfoundation/oneDNN#6035): a
  segfault or a heap abort, or worse, nothing visible. Measured with ``Conv2d(C, 48, 1,
  stride=2)`` on channels-last ``4xCx224x224`` inputs: it crashes for C from 2 to 15 and not
  for 1 or 16 and more, nor in NCHW, nor with groups, padding, a 3x3 kernel or an input size
  the stride does not divide; at 32x32 it went unnoticed. RepVGG's stem (its 1x1 stride-2
  branch on the RGB input) is such a convolution, so a model that has one trains in NCHW on
  the CPU (:func:`nhwc_weight_grad_crash`).
- Under bf16 autocast, depthwise and grouped convolutions are slower than in fp32, while dense
  ones are faster. Training steps at 32x32, batch 32, one thread, channels-last, on this
  AVX512-BF16 CPU: MobileNetV2 1.7x, ShuffleNetV2 2.1x and EfficientNet-B0 2.2x slower than
  fp32, ResNet-20 1.25x faster; one depthwise 3x3 conv on a CPU without bf16 instructions
  (``ONEDNN_MAX_CPU_ISA=AVX2``), 18-69x slower. A bf16 run of such a model is warned
  (:func:`grouped_convs`).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def nhwc_weight_grad_crash(model: nn.Module) -> str | None:
    """The name of a convolution of ``model`` whose channels-last weight gradient crashes
    oneDNN on the CPU (see above), or None. Deliberately wide: every ungrouped 1x1 conv with
    stride > 1 on fewer than 16 input channels, whatever its padding and input size."""
    for name, module in model.named_modules():
        if (
            isinstance(module, nn.Conv2d)
            and module.kernel_size == (1, 1)
            and module.stride != (1, 1)
            and module.groups == 1
            and module.in_channels < 16
        ):
            return name
    return None


def grouped_convs(model: nn.Module) -> int:
    """How many convolutions of ``model`` are grouped or depthwise (``groups > 1``)."""
    return sum(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules())


def channels_last_allowed(model: nn.Module, device: torch.device, wanted: bool) -> tuple[bool, str]:
    """(whether ``model`` trains channels-last on ``device``, the note to print when the CPU's
    kernels overrule ``wanted``: see :func:`nhwc_weight_grad_crash`)."""
    crashing = nhwc_weight_grad_crash(model) if wanted and device.type == "cpu" else None
    if crashing is None:
        return wanted, ""
    return False, (
        f"note: training in NCHW, not channels_last: on the CPU, oneDNN crashes on the "
        f"channels-last weight gradient of {crashing} (a strided 1x1 conv on few channels; "
        f"uxlfoundation/oneDNN#6035)"
    )


def bf16_warning(model: nn.Module, device: torch.device, amp_dtype: torch.dtype | None) -> str:
    """The warning a bf16 run of ``model`` on the CPU deserves when it has grouped convs, or ''."""
    grouped = grouped_convs(model) if amp_dtype == torch.bfloat16 and device.type == "cpu" else 0
    if not grouped:
        return ""
    return (
        f"bf16 autocast on the CPU slows this model's {grouped} depthwise/grouped convolutions "
        f"(MobileNetV2, ShuffleNet, EfficientNet train 1.7-2.2x slower than in fp32; more on "
        f"CPUs without bf16 instructions); train in fp32 with --cfg-options amp.enabled=False"
    )
