"""Loading weights: safe reads, key mapping from torchvision/timm, adaptation, strict checks.

Every read uses ``torch.load(..., weights_only=True)`` (or safetensors, which holds tensors
only): a file that needs arbitrary pickled objects is refused. A family whose parameter
names differ from torchvision's or timm's defines ``checkpoint_filter_fn(state_dict, model)
-> state_dict`` in its module; it is applied to every foreign checkpoint before loading.
Pretrained weights adapt as timm's do (the stem to another ``in_chans``, a new classifier
for another ``num_classes``) and say what they did in a :class:`LoadReport`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import socket
import sys
import urllib.parse
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import CheckpointError, ConfigError
from cnnzoo.extras import require
from cnnzoo.fileio import atomic_write
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
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
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


def _read_safetensors(path: Path) -> dict:
    require("safetensors", purpose=f"reading the safetensors file {path}")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated: {_first_line(e)}"
        ) from None


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
    refuse_complex(state, source)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = _shape_mismatches(own, state)
    if missing or unexpected or shapes:
        raise _misfit(model, source, missing, unexpected, shapes)
    model.load_state_dict(state, strict=True)


def refuse_complex(state: Mapping[str, Tensor], source: str) -> None:
    """Complex-valued tensors cannot load into a real model: torch would keep the real part
    with only a warning. Refuse them in one line instead."""
    keys = [k for k, v in state.items() if isinstance(v, Tensor) and v.is_complex()]
    if keys:
        raise CheckpointError(
            f"{source} holds complex-valued weights ({len(keys)} tensor(s), e.g. {keys[0]}); "
            "the networks here are real-valued: give a checkpoint of real weights"
        )


def _shape_mismatches(own: Mapping[str, Tensor], state: Mapping[str, Tensor]) -> list[str]:
    return [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]


def _misfit(
    model: nn.Module, source: str, missing: list[str], unexpected: list[str], shapes: list[str]
) -> CheckpointError:
    """One line naming every key that keeps ``source`` from loading into ``model``."""
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
    return CheckpointError("; ".join(parts))


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


def _how_adapted(source_chans: int, in_chans: int) -> str:
    if in_chans == 1:
        return f"{source_chans}->1 channels summed"
    return f"{source_chans}->{in_chans} channels tiled, scaled by {source_chans}/{in_chans}"


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
PROBE_TIMEOUT_S = 5.0


def require_network(url: str, what: str, error: type[Exception] = CheckpointError) -> None:
    """Fail in one line, at once, when ``url``'s host cannot be reached: offline, torchvision's
    and timm's downloads retry for about a minute and print a screen of retries first. Behind a
    proxy the direct connection says nothing, so no probe is made."""
    if any(os.environ.get(v) for v in PROXY_VARIABLES):
        return
    host = urllib.parse.urlsplit(url).hostname or url
    try:
        socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise error(
            f"cannot download {what}: {host} is unreachable ({e.strerror or e}); without a "
            "network, download the weights elsewhere and pass the file as model.pretrained=PATH"
        ) from None


def _in_torch_hub_cache(url: str) -> bool:
    return (
        Path(torch.hub.get_dir()) / "checkpoints" / Path(urllib.parse.urlsplit(url).path).name
    ).is_file()


def _in_hub_cache(repo_id: str, revision: str | None = None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(
        isinstance(try_to_load_from_cache(repo_id, name, revision=revision), str)
        for name in HUB_FILES
    )


def _timm_source(ref: str) -> tuple[str, bool]:
    """Where timm downloads ``ref``'s weights from, and whether they are in a local cache."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(ref)
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        from huggingface_hub.constants import ENDPOINT

        repo_id, _, revision = hub_id.partition("@")
        return ENDPOINT, _in_hub_cache(repo_id, revision or None)
    url = getattr(cfg, "url", None) or ""
    return url, bool(url) and _in_torch_hub_cache(url)


def fetch_published(entry: ModelEntry, library: str) -> dict[str, Tensor]:
    """Published ImageNet weights of the same network, through torchvision's or timm's API."""
    ref = entry.cfg.torchvision if library == "torchvision" else entry.cfg.timm
    if ref is None:
        raise CheckpointError(f"{library} has no published weights for {entry.name}")
    what = f"{library} weights for {entry.name} ({ref})"
    try:
        if library == "torchvision":
            import torchvision.models as tvm

            weights = tvm.get_model_weights(ref).DEFAULT
            if not _in_torch_hub_cache(weights.url):
                require_network(weights.url, what)
            return dict(weights.get_state_dict(progress=True))
        import timm

        source, cached = _timm_source(ref)
        if not cached:
            require_network(source, what)
        return dict(timm.create_model(ref, pretrained=True).state_dict())
    except (OSError, RuntimeError, ImportError) as e:
        raise CheckpointError(
            f"could not fetch {what}: {_first_line(e)}. "
            f"Without a network, download the file elsewhere and pass its path as pretrained="
        ) from None


HF_HUB = "hf-hub:"
_HUB_NAME = re.compile(r"hf-hub:([A-Za-z0-9][\w.-]*)/([\w.-]+)(?:@([\w./-]+))?")
HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm's Hub repositories hold


def parse_hub_name(spec: str) -> tuple[str, str | None]:
    """``'hf-hub:owner/name[@revision]'`` -> (``'owner/name'``, revision or None)."""
    match = _HUB_NAME.fullmatch(spec)
    if match is None or ".." in spec:
        raise ConfigError(
            f"{spec!r} is not a Hugging Face Hub name: write hf-hub:OWNER/NAME or "
            f"hf-hub:OWNER/NAME@REVISION, e.g. hf-hub:timm/resnet18.a1_in1k"
        )
    owner, name, revision = match.groups()
    return f"{owner}/{name}", revision


def fetch_hub(spec: str) -> dict[str, Tensor]:
    """The weights of a Hugging Face Hub repository (timm's layout: ``model.safetensors`` or
    ``pytorch_model.bin``), downloaded into the Hub's cache by ``huggingface_hub``."""
    repo_id, revision = parse_hub_name(spec)
    require("huggingface_hub", purpose=f"loading {spec} from the Hugging Face Hub")
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError

    if not constants.HF_HUB_OFFLINE and not _in_hub_cache(repo_id, revision):
        require_network(constants.ENDPOINT, spec, ConfigError)
    for filename in HUB_FILES:
        try:
            path = hf_hub_download(repo_id, filename, revision=revision)
        except RemoteEntryNotFoundError:
            continue
        except (OSError, HfHubHTTPError, ValueError) as e:
            raise ConfigError(
                f"could not download {spec} from the Hugging Face Hub ({_first_line(e)[:160]}); "
                f"offline or no such repository? Download {' or '.join(HUB_FILES)} elsewhere "
                f"and pass its path"
            ) from None
        return extract_state_dict(read_checkpoint(path))
    raise ConfigError(f"{spec}: the repository has neither {' nor '.join(HUB_FILES)}")


def published_weights(entry: ModelEntry) -> dict[str, str]:
    """Where published weights of ``entry`` come from: ``{'torchvision': name, 'timm': name,
    'hf-hub': 'hf-hub:timm/...'}`` (the Hub name is timm's default tag, known when timm is
    installed)."""
    out = {}
    if entry.cfg.torchvision:
        out["torchvision"] = entry.cfg.torchvision
    if entry.cfg.timm:
        out["timm"] = entry.cfg.timm
        try:
            from timm.models import get_pretrained_cfg
        except ImportError:
            return out
        hub_id = getattr(get_pretrained_cfg(entry.cfg.timm), "hf_hub_id", None)
        if hub_id:
            out["hf-hub"] = HF_HUB + hub_id
    return out


def fetch_weights(source: str, entry: ModelEntry) -> dict[str, Tensor]:
    """The state_dict named by ``source``: ``'torchvision'``, ``'timm'``, ``'hf-hub:...'`` or
    the path of a checkpoint file."""
    if source in ("torchvision", "timm"):
        return fetch_published(entry, source)
    if source.startswith(HF_HUB):
        return fetch_hub(source)
    return extract_state_dict(read_checkpoint(source))


@dataclass(frozen=True)
class LoadReport:
    """What loading pretrained weights did, tensor by tensor (BatchNorm counters aside).

    loaded: model tensors taken as they were; adapted: tensor -> how (the stem conv for
    another ``in_chans``); skipped: model tensors left as initialised -> why (a new classifier,
    a shape mismatch, missing in the source); unused: source tensors this model has no place
    for -> why.
    """

    source: str
    loaded: tuple[str, ...]
    adapted: dict[str, str]
    skipped: dict[str, str]
    unused: dict[str, str]

    def lines(self) -> list[str]:
        """A few lines for people: the counts, then per kind the tensors grouped by reason."""
        out = [
            f"pretrained weights {self.source}: {len(self.loaded)} tensors loaded, "
            f"{len(self.adapted)} adapted, {len(self.skipped)} left as initialised, "
            f"{len(self.unused)} unused"
        ]
        for label, table in (
            ("adapted", self.adapted),
            ("left as initialised", self.skipped),
            ("unused", self.unused),
        ):
            if table:
                out.append(f"  {label}: {_by_reason(table)}")
        return out

    def left_out(self) -> str:
        """One line on the model tensors left as initialised ('' when none)."""
        return f"left as initialised: {_by_reason(self.skipped)}" if self.skipped else ""

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"loaded": list(self.loaded)}

    def save(self, path: str | Path) -> Path:
        """Write the report as JSON (atomically)."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        return atomic_write(path, lambda f: f.write(text), binary=False)


def _by_reason(table: Mapping[str, str], shown: int = 4) -> str:
    """``'a, b (why); c (why 2)'``: keys grouped by reason, at most ``shown`` named per group."""
    groups: dict[str, list[str]] = {}
    for key, why in table.items():
        groups.setdefault(why, []).append(key)
    return "; ".join(
        ", ".join(keys[:shown])
        + (f" +{len(keys) - shown} more" if len(keys) > shown else "")
        + f" ({why})"
        for why, keys in groups.items()
    )


def _prefixes(spec: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return (spec,) if isinstance(spec, str) else tuple(spec or ())


def _why_misfit(source: Tensor, own: Tensor, stem: bool) -> str:
    s, m = tuple(source.shape), tuple(own.shape)
    if stem and len(s) == len(m) == 4 and s[0] == m[0] and s[2:] != m[2:]:
        return f"another stem: {s[2]}x{s[3]} kernel in the source, {m[2]}x{m[3]} here; not resized"
    return f"shape mismatch: {s} in the source, {m} here"


def load_pretrained(
    model: nn.Module, source: str, entry: ModelEntry, *, strict: bool = True
) -> LoadReport:
    """Load published or local weights into a freshly built ``model``, adapting what can be
    adapted as timm does: the stem conv(s) to another ``in_chans``, a new classifier for
    another ``num_classes``. ``strict``: anything else that does not fit (a missing, unexpected
    or mis-shaped tensor) is a :class:`CheckpointError` naming them all; otherwise what fits
    by name and shape is loaded and the rest left as initialised. Returns the report."""
    state = fetch_weights(source, entry)
    filter_fn = getattr(sys.modules[entry.fn.__module__], "checkpoint_filter_fn", None)
    own = model.state_dict()
    if filter_fn is not None and not set(state) <= set(own):
        state = filter_fn(state, model)
    # files saved before PyTorch 0.4.1 have no BatchNorm counters; torch's own loader accepts that
    counters = {k for k in own if k.endswith("num_batches_tracked")}
    for k in counters:
        state.setdefault(k, own[k])
    adapted = {}
    stems = [f"{prefix}.weight" for prefix in _prefixes(entry.cfg.first_conv)]
    for key in stems:
        if key in state and key in own and state[key].dim() == own[key].dim() == 4:
            s, m = state[key].shape, own[key].shape
            if s[1] != m[1] and (s[0], *s[2:]) == (m[0], *m[2:]):
                state[key] = adapt_input_conv(state[key], m[1])
                adapted[key] = _how_adapted(s[1], m[1])
    head = _prefixes(entry.cfg.classifier)
    in_head = lambda key: any(key.startswith(p + ".") for p in head)  # noqa: E731
    fits = {k for k, v in own.items() if k in state and state[k].shape == v.shape}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misfits = [k for k in own if k in state and k not in fits]
    if strict and any(not in_head(k) for k in (*missing, *unexpected, *misfits)):
        raise _misfit(
            model,
            f"pretrained weights {source!r}",
            missing,
            unexpected,
            _shape_mismatches(own, state),
        )
    classes = getattr(model, "num_classes", "?")
    skipped = {
        k: f"new classifier: another class count, num_classes={classes}"
        if in_head(k)
        else (_why_misfit(state[k], own[k], k in stems) if k in state else "missing in the source")
        for k in own
        if k not in fits
    }
    unused = {
        k: "classifier this model does not have" if in_head(k) else "not in this model"
        for k in unexpected
    }
    refuse_complex(state, f"pretrained weights {source!r}")
    model.load_state_dict({k: state[k] for k in fits}, strict=False)
    return LoadReport(
        source=source,
        loaded=tuple(k for k in own if k in fits and k not in adapted and k not in counters),
        adapted=adapted,
        skipped={k: v for k, v in skipped.items() if k not in counters},
        unused=unused,
    )
