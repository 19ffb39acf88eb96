"""Export a model to ONNX or TorchScript, check the file against PyTorch, and load it back.

Every export is written with a JSON sidecar ``<file>.json`` holding what ``predict`` needs
(class names, mean/std, image size, channels) and the measured largest difference from
PyTorch, so the exported file works on its own. The model is serialised and checked in
memory; the two files are then written beside their targets and renamed over them together,
so a full disk leaves any earlier export whole and no temporary file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from cnnzoo.errors import CheckpointError, ConfigError, InputShapeError, WriteError
from cnnzoo.export.fold import conv_bn_pairs, fold_batchnorm
from cnnzoo.extras import EXTRAS, require
from cnnzoo.fileio import read_regular_text
from cnnzoo.models import reparameterize_model

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
ONNX_OPSET = 17  # the TorchScript-based exporter; the dynamo exporter starts at 18
DYNAMO_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "images", "logits"
SIDECAR_VERSION = 1
REL_TOL = 1e-4  # an export "matches" when max |export - PyTorch| <= REL_TOL * max |PyTorch|


@dataclass
class ExportReport:
    """What :func:`export_model` did and how closely the exported file reproduces PyTorch."""

    path: Path
    sidecar: Path
    format: str
    exporter: str
    max_abs_diff: float  # largest |exported - PyTorch| over the check batch
    output_scale: float  # largest |PyTorch output| over the check batch
    check_batch: int
    reparameterized: bool
    folded_bn: list[tuple[str, str]] = field(default_factory=list)
    num_params: int = 0  # of the exported network
    num_params_trained: int = 0  # of the network as given
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.max_abs_diff <= REL_TOL * max(self.output_scale, 1e-30)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(path=str(self.path), sidecar=str(self.sidecar), matches=self.matches)
        return d


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the metadata of the exported file ``path`` lives: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """The sidecar of ``path`` if it is a cnnzoo export sidecar, else None."""
    side = sidecar_path(path)
    try:
        data = json.loads(read_regular_text(side))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("cnnzoo_export") == SIDECAR_VERSION else None


def is_exported(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file written by :func:`export_model` (it has our sidecar)."""
    return Path(path).is_file() and read_sidecar(path) is not None


def _check_target(path: Path, fmt: str) -> None:
    """Refuse a path of the wrong kind, and never overwrite a file that is not an export."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if path.suffix != FORMATS[fmt]:
        raise ConfigError(f"{fmt} exports are written to '{FORMATS[fmt]}' files, got {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give the file to write")
    for p in (path, sidecar_path(path)):
        if p.exists() and read_sidecar(path) is None:
            raise ConfigError(
                f"{p} exists and is not a cnnzoo export; refusing to overwrite it (choose another output)"
            )


def _strip_input_check(model: nn.Module) -> None:
    """Remove the builder's input-check pre-hook: it is Python, the exported graph can't hold it,
    and the exported file's fixed input shape does that job."""
    for key, hook in list(model._forward_pre_hooks.items()):
        if getattr(
            hook, "__module__", ""
        ) == "cnnzoo.models._builder" and "_input_check" in getattr(hook, "__qualname__", ""):
            del model._forward_pre_hooks[key]


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _max_diff(a: Tensor, b: Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


def _forward(model: nn.Module, x: Tensor) -> Tensor:
    with torch.inference_mode():
        out = model(x)
    if not isinstance(out, Tensor):
        raise ConfigError(
            f"export takes a model whose forward returns one tensor; got {type(out).__name__}"
        )
    return out.float()


@contextlib.contextmanager
def _quiet_output():
    """Silence file descriptors 1 and 2. When the TorchScript-based ONNX exporter meets an op
    it cannot convert, its C++ logger dumps the whole IR graph to stdout, even with logging
    off (torch reads its "log enabled" flag as the function object, which is always true)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            for fd, copy_of in zip((1, 2), saved, strict=True):
                os.dup2(copy_of, fd)
                os.close(copy_of)


def _export_onnx(model: nn.Module, example: Tensor) -> tuple[bytes, str]:
    """``model`` as ONNX bytes with a dynamic batch axis, and the exporter used.

    The TorchScript-based exporter (opset 17) is tried first: it is quick and handles the whole
    zoo but one op (adaptive average pooling to a size that does not divide its input, e.g.
    AlexNet below 224x224), which the torch.export-based (dynamo) exporter takes instead.
    """
    try:
        buffer = io.BytesIO()
        with _quiet_output():
            torch.onnx.export(
                model,
                (example,),
                buffer,
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        return buffer.getvalue(), f"torch.onnx TorchScript-based exporter, opset {ONNX_OPSET}"
    except torch.onnx.errors.OnnxExporterError:
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=DYNAMO_OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
        # in memory, the weights are part of the model (one file; protobuf's limit is 2 GB)
        data = program.model_proto.SerializeToString()
        return data, f"torch.onnx dynamo exporter, opset {DYNAMO_OPSET}"


def _export_torchscript(model: nn.Module, example: Tensor) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.trace(model, example, check_trace=False), buffer)
    return buffer.getvalue(), "torch.jit.trace"


def _write_together(files: dict[Path, bytes]) -> None:
    """Write each file to a temporary beside it (flushed, fsynced), then rename them all over
    their targets. A failed write (a full disk) raises :class:`WriteError` before any target
    is touched, and no temporary file is left."""
    temps: list[tuple[Path, Path]] = []
    target = next(iter(files))
    try:
        for target, data in files.items():
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            temps.append((Path(tmp), target))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it private; an export is meant to be shared
        for tmp, target in temps:
            os.replace(tmp, target)
    except OSError as e:
        raise WriteError(
            f"could not write {target}: {e.strerror or e}; any earlier export there is intact. "
            "Free disk space or choose another --output"
        ) from None
    finally:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)


def export_model(
    model: nn.Module,
    example_input: Tensor,
    path: str | os.PathLike,
    format: str = "onnx",
    reparameterize: bool = False,
    fold_bn: bool = True,
    *,
    meta: dict | None = None,
    check_input: Tensor | None = None,
) -> ExportReport:
    """Export ``model`` (in eval mode; the model given is left untouched) to ``path``.

    ``reparameterize`` fuses re-parameterisable blocks (RepVGG) first; ``fold_bn`` folds every
    BatchNorm that directly follows a conv into it, and keeps the fold only if the outputs
    agree. ``example_input`` (batch >= 2, so that the batch axis stays dynamic) fixes the
    exported image size. The file is then run (onnxruntime on CPU for ONNX, ``torch.jit.load``
    for TorchScript) on ``check_input`` (default: ``example_input`` plus one more image, so a
    second batch size is exercised) and compared with the original model. ``meta`` gives
    class_names / mean / std / model_name for the sidecar (default: the model's own config).
    """
    path = Path(path)
    _check_target(path, format)
    if format == "onnx":
        require(*EXTRAS["export"], purpose="ONNX export")
    if not isinstance(example_input, Tensor) or example_input.dim() != 4 or len(example_input) < 2:
        raise InputShapeError(
            "example_input must be an image batch (N, C, H, W) with N >= 2 (so the batch axis can be dynamic)"
        )
    example_input = example_input.detach().float().cpu()
    if check_input is None:
        extra = torch.randn(
            (1, *example_input.shape[1:]), generator=torch.Generator().manual_seed(0)
        )
        check_input = torch.cat([example_input, extra * example_input.std() + example_input.mean()])
    check_input = check_input.detach().float().cpu()
    if check_input.shape[1:] != example_input.shape[1:]:
        raise InputShapeError(
            f"check_input images are {tuple(check_input.shape[1:])}, example_input images {tuple(example_input.shape[1:])}"
        )

    deployed = copy.deepcopy(model).cpu().float().eval()
    reference = _forward(deployed, check_input)  # with the input-check hook: clear shape errors
    sidecar = _sidecar_meta(model, example_input, reference, meta)
    _strip_input_check(deployed)
    notes: list[str] = []
    num_trained = _num_params(deployed)
    if reparameterize:
        reparameterize_model(deployed)
        if _num_params(deployed) == num_trained:
            notes.append("reparameterize: no re-parameterisable blocks in this model")
    folded: list[tuple[str, str]] = []
    if fold_bn:
        pairs = conv_bn_pairs(deployed)
        saved = _saved_pairs(deployed, pairs)
        folded = fold_batchnorm(deployed, pairs)
        diff = _max_diff(_forward(deployed, check_input), reference)
        if diff > REL_TOL * max(reference.abs().max().item(), 1e-30):
            notes.append(f"BatchNorm folding changed outputs by {diff:.3g}; exported unfolded")
            _unfold(deployed, saved)
            folded = []

    with warnings.catch_warnings():
        # deprecation notices and tracer warnings: the numerical check below is what decides
        warnings.simplefilter("ignore")
        export = _export_onnx if format == "onnx" else _export_torchscript
        data, exporter = export(deployed, example_input)
        output = ExportedModel(path, format, data=data)(check_input)
    report = ExportReport(
        path=path,
        sidecar=sidecar_path(path),
        format=format,
        exporter=exporter,
        max_abs_diff=_max_diff(output, reference),
        output_scale=reference.abs().max().item(),
        check_batch=len(check_input),
        reparameterized=reparameterize,
        folded_bn=folded,
        num_params=_num_params(deployed),
        num_params_trained=num_trained,
        notes=notes,
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"cannot create folder {path.parent}: {e.strerror or e}") from None
    _write_together({path: data, report.sidecar: _sidecar_bytes(report, sidecar)})
    return report


def _saved_pairs(model: nn.Module, pairs: list[tuple[str, str]]) -> list[tuple]:
    """What :func:`_unfold` needs to undo folding ``pairs``: the BN modules, the conv weights."""
    saved = []
    for conv_name, bn_name in pairs:
        conv = model.get_submodule(conv_name)
        bias = None if conv.bias is None else conv.bias.detach().clone()
        saved.append(
            (conv, conv.weight.detach().clone(), bias, bn_name, model.get_submodule(bn_name))
        )
    return saved


@torch.no_grad()
def _unfold(model: nn.Module, saved: list[tuple]) -> None:
    """Undo :func:`fold_batchnorm`: put the BatchNorm modules back, restore the conv weights."""
    for conv, weight, bias, bn_name, bn in saved:
        conv.weight.copy_(weight)
        conv.bias = None if bias is None else nn.Parameter(bias)
        parent, _, attr = bn_name.rpartition(".")
        setattr(model.get_submodule(parent), attr, bn)


def _sidecar_meta(model: nn.Module, example: Tensor, reference: Tensor, meta: dict | None) -> dict:
    meta = dict(meta or {})
    cfg = getattr(model, "default_cfg", None)
    num_classes = reference.shape[1] if reference.dim() == 2 else 1
    in_chans = example.shape[1]
    mean, std = meta.get("mean"), meta.get("std")
    if (mean is None or std is None) and cfg is not None:
        # the variant's defaults, averaged over channels if the model was built for other in_chans
        mean, std = cfg.mean, cfg.std
        if len(mean) != in_chans:
            mean = [sum(mean) / len(mean)] * in_chans
            std = [sum(std) / len(std)] * in_chans
    if mean is None or std is None or len(mean) != in_chans or len(std) != in_chans:
        raise ConfigError(
            f"the sidecar needs the input mean/std ({in_chans} values each); pass meta=dict(mean=..., std=...)"
        )
    names = meta.get("class_names") or [str(i) for i in range(num_classes)]
    return dict(
        model_name=meta.get("model_name", getattr(model, "model_name", type(model).__name__)),
        num_classes=num_classes,
        class_names=list(names),
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
        image_size=list(example.shape[2:]),
        in_chans=in_chans,
    )


def _sidecar_bytes(report: ExportReport, meta: dict) -> bytes:
    data = dict(
        cnnzoo_export=SIDECAR_VERSION,
        file=report.path.name,
        format=report.format,
        exporter=report.exporter,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        **meta,
        max_abs_diff=report.max_abs_diff,
        output_scale=report.output_scale,
        reparameterized=report.reparameterized,
        folded_bn=len(report.folded_bn),
        num_params=report.num_params,
        torch_version=torch.__version__,
    )
    return json.dumps(data, indent=2).encode()


class ExportedModel:
    """An exported file as a callable: ``images (N, C, H, W) float32 -> logits`` on the CPU.
    With ``data``, the file's bytes are taken from memory instead of ``path``."""

    def __init__(
        self,
        path: Path,
        format: str,
        image_shape: tuple[int, ...] | None = None,
        *,
        data: bytes | None = None,
    ) -> None:
        self.path, self.format, self.image_shape = path, format, image_shape
        source = str(path) if data is None else data
        if format == "onnx":
            require("onnxruntime", purpose="running an ONNX export")
            import onnxruntime as ort

            try:
                self._session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
                raise CheckpointError(f"{path} is not a readable ONNX model: {e}") from None
            self._input = self._session.get_inputs()[0].name
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated"
                    self._module = torch.jit.load(
                        source if data is None else io.BytesIO(data), map_location="cpu"
                    ).eval()
            except (RuntimeError, ValueError) as e:
                raise CheckpointError(f"{path} is not a readable TorchScript model: {e}") from None

    def __call__(self, images: Tensor) -> Tensor:
        if self.image_shape is not None and tuple(images.shape[1:]) != self.image_shape:
            raise InputShapeError(
                f"{self.path.name} takes images shaped {self.image_shape}; got {tuple(images.shape[1:])}"
            )
        images = images.detach().float().cpu()
        if self.format == "onnx":
            return torch.from_numpy(self._session.run(None, {self._input: images.numpy()})[0])
        # the plain executor: no profiling runs and re-optimisation on the first calls
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return self._module(images)


def load_exported(path: str | os.PathLike) -> tuple[ExportedModel, dict]:
    """An exported model as a callable (images -> logits) and the metadata from its sidecar:
    class_names, mean, std, image_size, in_chans, num_classes, model_name, max_abs_diff, ..."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    meta = read_sidecar(path)
    if meta is None:
        raise CheckpointError(
            f"{path} has no cnnzoo sidecar {sidecar_path(path).name} (class names, mean/std); "
            f"export it with `cnnzoo export`"
        )
    _check_sidecar(meta, sidecar_path(path))
    shape = (meta["in_chans"], *meta["image_size"])
    return ExportedModel(path, meta["format"], shape), meta


def _check_sidecar(meta: dict, side: Path) -> None:
    """The sidecar's fields that predicting needs, each of its type and consistent (the file
    is read back from disk, so it is untrusted like everything there)."""

    def positive_int(x) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and 0 < x <= 1 << 20

    def numbers(x) -> bool:
        return (
            isinstance(x, list)
            and len(x) == meta.get("in_chans")
            and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in x
            )
        )

    checks = {
        "format": (lambda x: isinstance(x, str) and x in FORMATS, f"one of {', '.join(FORMATS)}"),
        "in_chans": (positive_int, "a positive integer"),
        "image_size": (
            lambda x: isinstance(x, list) and len(x) == 2 and all(map(positive_int, x)),
            "[height, width]",
        ),
        "num_classes": (positive_int, "a positive integer"),
        "class_names": (
            lambda x: (
                isinstance(x, list)
                and len(x) == meta.get("num_classes")
                and all(isinstance(c, str) for c in x)
            ),
            "a list of num_classes names",
        ),
        "mean": (numbers, "a list of in_chans numbers"),
        "std": (
            lambda x: numbers(x) and all(v > 0 for v in x),
            "a list of in_chans positive numbers",
        ),
    }
    for key, (ok, what) in checks.items():
        if key not in meta:
            raise CheckpointError(
                f"{side} lacks {key!r}; export the model again with `cnnzoo export`"
            )
        if not ok(meta[key]):
            raise CheckpointError(
                f"{side}: {key} must be {what}, got {str(meta[key])[:60]}; export the model again "
                "with `cnnzoo export`"
            )
