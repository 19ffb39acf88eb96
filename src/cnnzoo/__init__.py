"""cnnzoo: the classic image-classification networks, exact to their papers.

Everything here is imported on first use (PEP 562): ``import cnnzoo`` costs nothing until a
model or the training API is asked for, so ``cnnzoo --version`` and ``cnnzoo --help`` answer
without importing torch.
"""

import importlib

__version__ = "0.1.0"

_MODEL_API = (
    "ClassifierModel",
    "FeatureExtractor",
    "ModelCfg",
    "create_model",
    "get_model_entry",
    "is_model",
    "list_families",
    "list_models",
    "register_model",
    "reparameterize_model",
)
_API = ("Callback", "TrainResult", "load_config", "load_run", "train")
_DATA_API = ("DataBundle", "from_datasets")


def __getattr__(name: str):
    """The model API (:mod:`cnnzoo.models`), the training API (:mod:`cnnzoo.api`), the data
    bundle of one's own datasets (:mod:`cnnzoo.data`) and the subpackages (``cnnzoo.layers``,
    ...), imported on first use."""
    if name in _MODEL_API:
        return getattr(importlib.import_module("cnnzoo.models"), name)
    if name in _API:
        return getattr(importlib.import_module("cnnzoo.api"), name)
    if name in _DATA_API:
        return getattr(importlib.import_module("cnnzoo.data"), name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'cnnzoo' has no attribute {name!r}")


__all__ = sorted([*_MODEL_API, *_API, *_DATA_API, "__version__"])
