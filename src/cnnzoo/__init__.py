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

__all__ = [
    "ClassifierModel",
    "FeatureExtractor",
    "ModelCfg",
    "__version__",
    "create_model",
    "get_model_entry",
    "is_model",
    "list_families",
    "list_models",
    "register_model",
    "reparameterize_model",
]
