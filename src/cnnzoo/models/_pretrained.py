"""Loading weights: safe reads, key mapping from torchvision/timm, strict checks.

Every read uses ``torch.load(..., weights_only=True)``: a file that needs arbitrary
pickled objects is refused. A family whose parameter names differ from torchvision's or
timm's defines ``checkpoint_filter_fn(state_dict, model) -> state_dict`` in its module;
it is applied to every foreign checkpoint before a strict load.
"""

from __future__ import annotations

import pickle
import sys
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import CheckpointError
from cnnzoo.models._registry import ModelEntry

_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "state_dict_ema", "model_ema")
_PREFIXES = ("module.", "_orig_mod.", "model.")


def _first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type when the message is empty."""
    return (str(e).splitlines() or [type(e).__name__])[0]


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file safely (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"checkpoint {path} is empty (0 bytes); it was never written completely"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {path}: it holds pickled Python objects beyond tensors and plain "
            f"containers, which could run code ({_first_line(e)}). Re-save it as a plain "
            f"state_dict (torch.save(model.state_dict(), path)) from a source you trust"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated: {_first_line(e)}"
        ) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict")
    return dict(obj)


def extract_state_dict(obj: Mapping) -> dict[str, Tensor]:
    """The model state_dict inside a checkpoint: unwraps ``{'model': ...}``-style wrappers
    and strips ``module.`` (DDP), ``_orig_mod.`` (torch.compile) prefixes."""
    for key in _WRAPPER_KEYS:
        inner = obj.get(key)
        if (
            isinstance(inner, Mapping)
            and inner
            and all(isinstance(v, Tensor) for v in inner.values())
        ):
            obj = inner
            break
    state = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state:
        raise CheckpointError("the checkpoint holds no tensors: it is not a model state_dict")
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_weights(model: nn.Module, state: Mapping[str, Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` into ``model`` strictly; any missing, unexpected or mis-shaped key is a
    :class:`CheckpointError` that lists them (never a silent partial load)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        name = getattr(model, "model_name", type(model).__name__)
        parts = [f"{source} does not fit model {name}"]
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        ):
            if keys:
                more = f" (+{len(keys) - 8} more)" if len(keys) > 8 else ""
                parts.append(f"{len(keys)} {label}: {', '.join(keys[:8])}{more}")
        parts.append("is it a checkpoint of another model, class count or in_chans?")
        raise CheckpointError("; ".join(parts))
    model.load_state_dict(state, strict=True)


def adapt_input_conv(weight: Tensor, in_chans: int) -> Tensor:
    """Stem weights trained on RGB for ``in_chans`` channels: summed for 1 channel, else
    tiled and rescaled so that activations keep their scale (as timm does)."""
    if weight.shape[1] == in_chans:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // weight.shape[1])
    w = weight.repeat(1, reps, 1, 1)[:, :in_chans]
    return w * (weight.shape[1] / in_chans)


def fetch_published(entry: ModelEntry, library: str) -> dict[str, Tensor]:
    """Published ImageNet weights of the same network, through torchvision's or timm's API."""
    ref = entry.cfg.torchvision if library == "torchvision" else entry.cfg.timm
    if ref is None:
        raise CheckpointError(f"{library} has no published weights for {entry.name}")
    try:
        if library == "torchvision":
            import torchvision.models as tvm

            weights = tvm.get_model_weights(ref).DEFAULT
            return dict(weights.get_state_dict(progress=True))
        import timm

        return dict(timm.create_model(ref, pretrained=True).state_dict())
    except (OSError, RuntimeError, ImportError) as e:
        raise CheckpointError(
            f"could not fetch {library} weights for {entry.name} ({ref}): {_first_line(e)}. "
            f"Without a network, download the file elsewhere and pass its path as pretrained="
        ) from None


def _prefixes(spec: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return (spec,) if isinstance(spec, str) else tuple(spec or ())


def load_pretrained(model: nn.Module, source: str, entry: ModelEntry) -> None:
    """Load published or local weights into a freshly built ``model``."""
    if source in ("torchvision", "timm"):
        state = fetch_published(entry, source)
    else:
        state = extract_state_dict(read_checkpoint(source))
    filter_fn = getattr(sys.modules[entry.fn.__module__], "checkpoint_filter_fn", None)
    own = model.state_dict()
    if filter_fn is not None and not set(state) <= set(own):
        state = filter_fn(state, model)
    # files saved before PyTorch 0.4.1 have no BatchNorm counters; torch's own loader accepts that
    for k, v in own.items():
        if k.endswith("num_batches_tracked"):
            state.setdefault(k, v)
    cfg = entry.cfg
    for prefix in _prefixes(cfg.first_conv):
        key = f"{prefix}.weight"
        if key in state and key in own:
            state[key] = adapt_input_conv(state[key], own[key].shape[1])
    head = [k for k in state if any(k.startswith(p + ".") for p in _prefixes(cfg.classifier))]
    body_fits = all(  # only then is "another class count" the whole story
        k in state and state[k].shape == v.shape for k, v in own.items() if k not in head
    ) and all(k in own for k in state if k not in head)
    if body_fits and any(k in own and own[k].shape != state[k].shape for k in head):
        warnings.warn(
            f"pretrained classifier has another class count; {', '.join(_prefixes(cfg.classifier))} "
            f"left freshly initialised for num_classes={getattr(model, 'num_classes', '?')}",
            stacklevel=3,
        )
        for k in head:
            if k in own:
                state[k] = own[k]
    load_weights(model, state, source=f"pretrained weights {source!r}")
