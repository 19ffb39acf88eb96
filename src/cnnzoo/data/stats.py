"""Per-channel statistics of a training split, cached in a small JSON file.

The mean and standard deviation are taken over *all* pixels of the split at once (not the
mean of per-image statistics), on the [0, 1] scale and after channel conversion and
resizing, so they normalise exactly what the model sees. The same pass gives the RGB
covariance whose eigen-decomposition drives AlexNet's PCA lighting noise.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from cnnzoo.fileio import atomic_write, read_regular_text


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
    """``compute()``, or the statistics saved in ``cache_file`` by an earlier call. The cache
    is read back from disk, so it is untrusted: one that does not hold finite numbers of the
    right shapes (a std of at least 0 per channel, a square covariance) is recomputed with a note."""
    cached = _read_stats(cache_file)
    if isinstance(cached, ChannelStats):
        return cached
    if cached is not None:
        warnings.warn(f"{cache_file}: {cached}; computing the statistics again", stacklevel=2)
    stats = compute()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dict(mean=stats.mean, std=stats.std, cov=stats.cov), indent=1)
        atomic_write(cache_file, lambda f: f.write(text), binary=False)
    except OSError:
        pass  # a read-only cache only costs recomputation
    return stats


def _read_stats(cache_file: Path) -> ChannelStats | str | None:
    """The statistics in ``cache_file``; None when there is none; else why they are unusable."""
    try:
        obj = json.loads(read_regular_text(cache_file))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as e:
        return f"the statistics cache cannot be read ({type(e).__name__})"
    if not isinstance(obj, dict):
        return "the statistics cache is not a JSON object"

    def finite(values) -> bool:
        return isinstance(values, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        )

    mean, std, cov = obj.get("mean"), obj.get("std"), obj.get("cov")
    if not (finite(mean) and finite(std) and mean and len(mean) == len(std)):
        return "the statistics cache's mean and std are not one finite number per channel"
    if any(s < 0 for s in std):
        return "the statistics cache holds a negative std"
    if not (isinstance(cov, list) and len(cov) == len(mean)) or not all(
        finite(row) and len(row) == len(mean) for row in cov
    ):
        return "the statistics cache's covariance is not a square matrix of finite numbers"
    return ChannelStats(_floats(mean), _floats(std), tuple(map(_floats, cov)))


def _floats(values: list) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
