"""What a config's augmentation does: a grid of its augmented training images (as
mmpretrain's ``browse_dataset``), drawn from the batches training would see."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure  # drawn without pyplot: no backend is chosen or changed
from torch import Tensor

from cnnzoo.fileio import atomic_write

PANEL = 1.4  # inches per image


def augmented_batch(bundle, count: int, epoch: int = 0) -> tuple[Tensor, Tensor]:
    """The first ``count`` training images of ``epoch`` as training sees them (augmented,
    normalised) and their targets (indices, or soft targets under Mixup/CutMix)."""
    bundle.train.set_epoch(epoch)
    images, targets = [], []
    seen = 0
    for x, y in bundle.train:
        images.append(x.float().cpu())
        targets.append(y.cpu())
        seen += len(x)
        if seen >= count:
            break
    return torch.cat(images)[:count], torch.cat(targets)[:count]


def plot_augmented(
    images: Tensor,
    targets: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
) -> Path:
    """A PNG grid of normalised ``images`` brought back to pixels, each titled with its class
    (the two largest shares, for a mixed target)."""
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    fig = Figure(figsize=(cols * PANEL, rows * PANEL + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    mean_t = torch.tensor(mean).view(-1, 1, 1)
    std_t = torch.tensor(std).view(-1, 1, 1)
    for ax, image, target in zip(axes, images, targets, strict=False):
        pixels = (image * std_t + mean_t).clamp(0, 1).permute(1, 2, 0).numpy()
        if pixels.shape[2] == 1:
            ax.imshow(pixels[:, :, 0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(pixels)
        ax.set_title(_label(target, class_names), fontsize=7)
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize="small")
    fig.set_layout_engine("constrained")
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))


def _label(target: Tensor, class_names: Sequence[str]) -> str:
    if target.dim() == 0:
        return class_names[int(target)]
    shares, classes = target.float().topk(min(2, len(target)))
    if shares[0] > 0.999:
        return class_names[int(classes[0])]
    return " + ".join(
        f"{class_names[int(c)]} {s:.0%}" for s, c in zip(shares, classes, strict=True)
    )
