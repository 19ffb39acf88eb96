"""Per-channel statistics of a training split, cached in a small JSON file.

The mean and standard deviation are taken over *all* pixels of the split at once (not the
mean of per-image statistics), on the [0, 1] scale and after channel conversion and
resizing, so they normalise exactly what the model sees. The same pass gives the RGB
covariance whose eigen-decomposition drives AlexNet's PCA lighting noise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from cnnzoo.fileio import atomic_write


@dataclass(frozen=True)
class ChannelStats:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]  # channel covariance on the [0, 1] scale

    def eig(self) -> tuple[Tensor, Tensor]:
        """(eigenvalues (C,), eigenvectors (C, C) as columns) of the channel covariance."""
        vals, vecs = torch.linalg.eigh(torch.tensor(self.cov, dtype=torch.float64))
        return vals.clamp_min(0).float(), vecs.float()


def chunks(images: Tensor, size: int = 2048) -> Iterable[Tensor]:
    """``images`` in pieces of ``size`` samples."""
    return (images[i : i + size] for i in range(0, images.shape[0], size))


def channel_stats(batches: Tensor | Iterable[Tensor]) -> ChannelStats:
    """Mean, std and covariance per channel over every pixel of uint8 (N, C, H, W) images,
    given as one tensor or as an iterable of batches."""
    if isinstance(batches, Tensor):
        batches = chunks(batches)
    total = outer = None
    count = 0
    for batch in batches:
        c = batch.shape[1]
        if total is None:
            total = torch.zeros(c, dtype=torch.float64)
            outer = torch.zeros(c, c, dtype=torch.float64)
        x = batch.to("cpu", torch.float64).div_(255.0)
        x = x.transpose(0, 1).reshape(c, -1)
        total += x.sum(1)
        outer += x @ x.T
        count += x.shape[1]
    mean = total / count
    cov = outer / count - torch.outer(mean, mean)
    std = cov.diagonal().clamp_min(0).sqrt()
    return ChannelStats(
        tuple(mean.tolist()), tuple(std.tolist()), tuple(tuple(row) for row in cov.tolist())
    )


def cached_channel_stats(compute: Callable[[], ChannelStats], cache_file: Path) -> ChannelStats:
    """``compute()``, or the statistics saved in ``cache_file`` by an earlier call."""
    try:
        obj = json.loads(cache_file.read_text())
        return ChannelStats(
            tuple(obj["mean"]), tuple(obj["std"]), tuple(tuple(r) for r in obj["cov"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    stats = compute()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dict(mean=stats.mean, std=stats.std, cov=stats.cov), indent=1)
        atomic_write(cache_file, lambda f: f.write(text), binary=False)
    except OSError:
        pass  # a read-only cache only costs recomputation
    return stats
