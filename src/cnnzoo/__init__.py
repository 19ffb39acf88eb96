"""cnnzoo: the classic image-classification networks, exact to their papers."""

from cnnzoo.models import (
    ClassifierModel,
    FeatureExtractor,
    ModelCfg,
    create_model,
    get_model_entry,
    is_model,
    list_families,
    list_models,
    register_model,
    reparameterize_model,
)

__version__ = "0.1.0"

_API = ("Callback", "TrainResult", "load_config", "load_run", "train")


def __getattr__(name: str):
    """The training API (:mod:`cnnzoo.api`), imported on first use: ``import cnnzoo`` stays light."""
    if name in _API:
        from cnnzoo import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnnzoo' has no attribute {name!r}")


__all__ = [
    "Callback",
    "ClassifierModel",
    "FeatureExtractor",
    "ModelCfg",
    "TrainResult",
    "__version__",
    "create_model",
    "get_model_entry",
    "is_model",
    "list_families",
    "list_models",
    "load_config",
    "load_run",
    "register_model",
    "reparameterize_model",
    "train",
]
