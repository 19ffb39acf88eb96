"""The model zoo. Importing this package registers every family."""

from cnnzoo.models import (  # noqa: F401  (imported to register their variants)
    airbench,
    alexnet,
    densenet,
    efficientnet,
    googlenet,
    lenet,
    mlp_mixer,
    mobilenetv1,
    mobilenetv2,
    repvgg,
    resnet,
    senet,
    shufflenetv1,
    shufflenetv2,
    squeezenet,
    vgg,
    xception,
)
from cnnzoo.models._base import ClassifierModel
from cnnzoo.models._builder import create_model, model_arguments
from cnnzoo.models._features import FeatureExtractor
from cnnzoo.models._pretrained import (
    LoadReport,
    extract_state_dict,
    load_weights,
    parse_hub_name,
    published_weights,
    read_checkpoint,
)
from cnnzoo.models._registry import (
    ModelCfg,
    get_model_entry,
    is_model,
    list_families,
    list_models,
    register_model,
)
from cnnzoo.models._reparam import reparameterize_model

__all__ = [
    "ClassifierModel",
    "FeatureExtractor",
    "LoadReport",
    "ModelCfg",
    "create_model",
    "extract_state_dict",
    "get_model_entry",
    "is_model",
    "list_families",
    "list_models",
    "load_weights",
    "model_arguments",
    "parse_hub_name",
    "published_weights",
    "read_checkpoint",
    "register_model",
    "reparameterize_model",
]
