"""Model names as people read them: sorted by the numbers in them, and "did you mean" that
offers the common networks first."""

import pytest

import cnnzoo
from cnnzoo.errors import UnknownNameError, natural_key
from cnnzoo.models._registry import COMMON_MODELS


def test_names_sort_naturally():
    names = cnnzoo.list_models("resnet[0-9]*")
    assert names.index("resnet14") < names.index("resnet18") < names.index("resnet101")
    assert names == sorted(names, key=natural_key)
    assert sorted(["vgg19_bn", "vgg11", "vgg110", "vgg19"], key=natural_key) == [
        "vgg11",
        "vgg19",
        "vgg19_bn",
        "vgg110",
    ]


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("resnet", ["resnet18", "resnet50"]),
        ("resnt50", ["resnet50"]),
        ("mobilenet", ["mobilenet_v2"]),
        ("vgg", ["vgg16"]),
    ],
)
def test_did_you_mean_offers_the_common_names_first(typed, first):
    with pytest.raises(UnknownNameError) as err:
        cnnzoo.create_model(typed)
    offered = str(err.value).split("did you mean: ")[1].rstrip("?").split(", ")
    assert offered[: len(first)] == first


def test_the_common_names_are_registered():
    assert all(cnnzoo.models.is_model(name) for name in COMMON_MODELS)
