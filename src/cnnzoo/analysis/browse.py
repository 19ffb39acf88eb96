"""What a config's augmentation does: a grid of its augmented training images (as
mmpretrain's ``browse_dataset``), drawn from the batches training would see."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

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
    (the two largest shares, for a mixed target), drawn by :mod:`cnnzoo.analysis.plots`."""
    from cnnzoo.analysis import plots  # matplotlib only when a chart is drawn

    mean_t = torch.tensor(mean).view(-1, 1, 1)
    std_t = torch.tensor(std).view(-1, 1, 1)
    pixels = []
    for image in images:
        rgb = (image * std_t + mean_t).clamp(0, 1).permute(1, 2, 0).numpy()
        pixels.append(rgb[:, :, 0] if rgb.shape[2] == 1 else rgb)
    titles = [_label(target, class_names) for target in targets]
    return plots.plot_image_grid(pixels, titles, path, panel=PANEL, title=title)


def _label(target: Tensor, class_names: Sequence[str]) -> str:
    if target.dim() == 0:
        return class_names[int(target)]
    shares, classes = target.float().topk(min(2, len(target)))
    if shares[0] > 0.999:
        return class_names[int(classes[0])]
    return " + ".join(
        f"{class_names[int(c)]} {s:.0%}" for s, c in zip(shares, classes, strict=True)
    )
