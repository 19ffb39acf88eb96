"""What cnnzoo asks of the machine it runs on: the device to compute on and the cache folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cnnzoo.errors import ConfigError

if TYPE_CHECKING:
    import torch


def cache_dir() -> Path:
    """Where cnnzoo caches decoded images, statistics and model costs: ``$CNNZOO_CACHE``, or
    ``~/.cache/cnnzoo`` when it is unset or empty."""
    return Path(os.environ.get("CNNZOO_CACHE") or "~/.cache/cnnzoo").expanduser()


def resolve_device(name: str | torch.device) -> torch.device:
    """``'auto'`` -> CUDA when a GPU is visible, else the CPU; a device torch does not know,
    or CUDA on a machine without a GPU, is a :class:`ConfigError` naming what to use."""
    import torch

    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} but no CUDA GPU is visible; use 'cpu' or 'auto'")
    return device
