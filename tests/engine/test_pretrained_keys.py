"""The config keys for weights to start from are live: ``load_from`` (mmengine's key) and
``model.pretrained`` load into the run's model, ``model.pretrained_strict`` decides whether
weights that do not fit are refused, and the run keeps the report of what was loaded."""

import json

import pytest
import torch

import cnnzoo
from cnnzoo.engine import load_checkpoint, train
from cnnzoo.errors import CheckpointError, ConfigError


@pytest.fixture
def lenet_weights(tmp_path):
    """LeNet-5 weights for 5 classes (the runs have 10) without ``c3.bias``."""
    torch.manual_seed(1)
    state = cnnzoo.create_model("lenet5", act="relu", num_classes=5).state_dict()
    del state["c3.bias"]
    torch.save(state, tmp_path / "lenet5.pt")
    return state, tmp_path / "lenet5.pt"


@pytest.mark.parametrize("key", ["load_from", "model.pretrained"])
def test_weights_to_start_from_load_what_fits_when_not_strict(
    key, lenet_weights, fake_data, make_cfg, capsys
):
    state, path = lenet_weights
    cfg = make_cfg(**{key: str(path), "model.pretrained_strict": False, "train_cfg.max_epochs": 1})
    cfg.optimizer.lr = 0.0  # the run ends with the weights it started from
    with pytest.warns(UserWarning, match=r"left as initialised: c3\.bias \(missing"):
        run_dir = train(cfg, quiet=True)
    report = json.loads((run_dir / "pretrained.json").read_text())
    assert report["skipped"] == {
        "c3.bias": "missing in the source",
        "fc.weight": "new classifier: another class count, num_classes=10",
        "fc.bias": "new classifier: another class count, num_classes=10",
    }
    assert "7 tensors loaded, 0 adapted, 3 left as initialised" in capsys.readouterr().out
    trained = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    for k in report["loaded"]:
        assert torch.equal(trained[k], state[k]), k


def test_strict_weights_that_do_not_fit_stop_the_run_before_it_starts(
    lenet_weights, fake_data, make_cfg, tmp_path
):
    _, path = lenet_weights
    with pytest.raises(CheckpointError, match=r"1 missing keys: c3\.bias"):
        train(make_cfg(load_from=str(path)), quiet=True)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"model.pretrained_strict": "no"}, "model.pretrained_strict must be True"),
        ({"load_from": "nowhere.pt"}, "load_from='nowhere.pt': no such checkpoint file"),
        ({"load_from": "hf-hub:resnet18"}, "load_from: 'hf-hub:resnet18' is not a Hugging Face"),
        ({"load_from": "timm", "model.pretrained": "torchvision"}, "set one of them"),
    ],
)
def test_malformed_weight_keys_are_one_clear_error(options, message, make_cfg):
    with pytest.raises(ConfigError, match=message):
        make_cfg(**options)
