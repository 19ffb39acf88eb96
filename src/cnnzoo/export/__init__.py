"""Deployment: BatchNorm folding, ONNX / TorchScript export checked against PyTorch, and
loading an exported file back for ``predict``."""

from cnnzoo.export.core import (
    FORMATS,
    ExportedModel,
    ExportReport,
    export_model,
    is_exported,
    load_exported,
    read_sidecar,
    sidecar_path,
)
from cnnzoo.export.fold import conv_bn_pairs, fold_batchnorm, fold_conv_bn

__all__ = [
    "FORMATS",
    "ExportReport",
    "ExportedModel",
    "conv_bn_pairs",
    "export_model",
    "fold_batchnorm",
    "fold_conv_bn",
    "is_exported",
    "load_exported",
    "read_sidecar",
    "sidecar_path",
]
