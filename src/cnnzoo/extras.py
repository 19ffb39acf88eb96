"""The optional dependencies, grouped as the package's extras (``pip install "cnnzoo[export]"``).

A feature that needs one calls :func:`require` first: when a module is missing, the user gets
one line naming the feature, the modules and the extra that installs them, not the traceback
of an import deep inside another library.
"""

from __future__ import annotations

import importlib

from cnnzoo.errors import MissingExtraError

# the extras of pyproject.toml's [project.optional-dependencies], by import name
EXTRAS = {
    "export": ("onnx", "onnxruntime", "onnxscript"),
    "explain": ("captum",),
    "hub": ("huggingface_hub", "safetensors"),
}
EXTRA_OF = {module: extra for extra, modules in EXTRAS.items() for module in modules}


def install_hint(extra: str) -> str:
    return f'pip install "cnnzoo[{extra}]"'


def require(*modules: str, purpose: str) -> None:
    """Raise :class:`MissingExtraError` when any of ``modules`` (of one extra) cannot be
    imported: "``purpose`` needs onnx, onnxscript: pip install "cnnzoo[export]""."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        extra = EXTRA_OF[missing[0]]
        raise MissingExtraError(f"{purpose} needs {', '.join(missing)}: {install_hint(extra)}")
