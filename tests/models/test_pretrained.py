"""Pretrained weights that adapt (as timm's do), with a report of what was loaded, adapted and
skipped; Hugging Face Hub names; timm's feature_info accessors and default_cfg as a mapping.
Every file is written here: nothing is downloaded."""

import json
import sys
import warnings

import pytest
import timm
import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.errors import CheckpointError, ConfigError, MissingExtraError
from cnnzoo.models import LoadReport, get_model_entry, parse_hub_name, published_weights
from zoo_helpers import randomize_all


@pytest.fixture(scope="module")
def imagenet_resnet18(tmp_path_factory):
    """A randomised torchvision ResNet-18 (1000 classes, RGB, 7x7 stem) saved in its layout."""
    torch.manual_seed(0)
    source = randomize_all(torchvision.models.resnet18()).eval()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(source.state_dict(), path)
    return source, path


def _body(model: nn.Module) -> nn.Module:
    """torchvision's ResNet up to the last stage: what our forward_features computes."""
    return nn.Sequential(*list(model.children())[:-2])


def _quiet_create(name: str, **kwargs) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cnnzoo.create_model(name, **kwargs).eval()


def test_another_class_count_loads_the_body_and_reports_a_new_head(imagenet_resnet18):
    source, path = imagenet_resnet18
    with pytest.warns(UserWarning, match=r"fc\.weight, fc\.bias \(new classifier"):
        model = cnnzoo.create_model("resnet18", num_classes=10, pretrained=str(path)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), _body(source)(x))
    report = model.pretrained_report
    assert set(report.skipped) == {"fc.weight", "fc.bias"}
    assert all("num_classes=10" in why for why in report.skipped.values())
    assert report.adapted == {} and report.unused == {}
    own = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    assert sorted(report.loaded) == sorted(k for k in own if not k.startswith("fc."))


def test_one_channel_adapts_the_stem_so_a_grey_image_equals_its_rgb_copy(imagenet_resnet18):
    source, path = imagenet_resnet18
    model = _quiet_create("resnet18", num_classes=10, in_chans=1, pretrained=str(path))
    grey = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            model.forward_features(grey), _body(source)(grey.expand(-1, 3, -1, -1))
        )
    assert model.pretrained_report.adapted == {"conv1.weight": "3->1 channels summed"}
    assert "conv1.weight" not in model.pretrained_report.loaded


def test_a_cifar_stem_variant_takes_all_but_the_stem_when_not_strict(imagenet_resnet18):
    source, path = imagenet_resnet18
    model = _quiet_create(
        "resnet18", stem="cifar", num_classes=10, pretrained=str(path), pretrained_strict=False
    )
    report = model.pretrained_report
    assert set(report.skipped) == {"conv1.weight", "fc.weight", "fc.bias"}
    assert "another stem: 7x7 kernel in the source, 3x3 here" in report.skipped["conv1.weight"]
    ours, theirs = model.state_dict(), source.state_dict()
    for key in report.loaded:
        assert torch.equal(ours[key], theirs[key]), key
    assert len(report.loaded) == len(
        [k for k in ours if not k.endswith("num_batches_tracked")]
    ) - len(report.skipped)
    assert model.conv1.weight.shape == (64, 3, 3, 3)


def test_strict_loading_refuses_in_one_line_listing_every_mismatch(imagenet_resnet18):
    _, path = imagenet_resnet18
    with pytest.raises(CheckpointError) as caught:
        cnnzoo.create_model("resnet18", stem="cifar", num_classes=10, pretrained=str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert "3 shape mismatches: conv1.weight: checkpoint (64, 3, 7, 7) vs model (64, 3, 3, 3)" in (
        message
    )
    assert "fc.weight" in message


def test_weights_of_a_deeper_net_load_what_fits_and_list_the_unused(tmp_path):
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pth")
    model = _quiet_create(
        "resnet18", num_classes=10, pretrained=str(tmp_path / "r34.pth"), pretrained_strict=False
    )
    report = model.pretrained_report
    assert report.unused and all(k.startswith(("layer1.2.", "layer2.", "layer3.", "layer4."))
                                 for k in report.unused)  # fmt: skip
    assert "layer1.2.conv1.weight" in report.unused
    assert set(report.skipped) == {"fc.weight", "fc.bias"}


def test_the_report_reads_in_a_few_lines_and_saves_as_json(imagenet_resnet18, tmp_path):
    _, path = imagenet_resnet18
    model = _quiet_create("resnet18", num_classes=10, in_chans=1, pretrained=str(path))
    lines = model.pretrained_report.lines()
    assert lines[0].endswith("99 tensors loaded, 1 adapted, 2 left as initialised, 0 unused")
    assert lines[1:] == [
        "  adapted: conv1.weight (3->1 channels summed)",
        "  left as initialised: fc.weight, fc.bias "
        "(new classifier: another class count, num_classes=10)",
    ]
    saved = json.loads(model.pretrained_report.save(tmp_path / "pretrained.json").read_text())
    assert LoadReport(**{**saved, "loaded": tuple(saved["loaded"])}) == model.pretrained_report


def test_safetensors_files_load(imagenet_resnet18, tmp_path):
    source, _ = imagenet_resnet18
    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "w.safetensors"
    )
    model = _quiet_create("resnet18", pretrained=str(tmp_path / "w.safetensors"))
    assert torch.equal(model.fc.weight, source.fc.weight)
    assert not model.pretrained_report.skipped


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("hf-hub:timm/resnet18.a1_in1k", ("timm/resnet18.a1_in1k", None)),
        ("hf-hub:me/my-net@v1.0", ("me/my-net", "v1.0")),
    ],
)
def test_hub_names_parse(spec, expected):
    assert parse_hub_name(spec) == expected


@pytest.mark.parametrize(
    "spec", ["hf-hub:resnet18", "hf-hub:a/b/c", "hf-hub:/x", "hf-hub:a/b@", "hf-hub:a/../b"]
)
def test_malformed_hub_names_are_refused_in_one_line(spec):
    with pytest.raises(
        ConfigError, match="is not a Hugging Face Hub name: write hf-hub:OWNER/NAME"
    ):
        parse_hub_name(spec)


def test_a_hub_name_offline_is_one_clear_error(monkeypatch, tmp_path):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConfigError, match=r"could not download hf-hub:timm/lenet\.x.*offline"):
        cnnzoo.create_model("lenet5", pretrained="hf-hub:timm/lenet.x")


def test_a_hub_name_without_huggingface_hub_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(
        MissingExtraError, match=r'needs huggingface_hub: pip install "cnnzoo\[hub\]"'
    ):
        cnnzoo.create_model("lenet5", pretrained="hf-hub:timm/lenet.x")


def test_published_weights_name_their_source():
    assert published_weights(get_model_entry("resnet18")) == {
        "torchvision": "resnet18",
        "timm": "resnet18",
        "hf-hub": "hf-hub:" + timm.models.get_pretrained_cfg("resnet18").hf_hub_id,
    }
    assert published_weights(get_model_entry("googlenet")) == {"torchvision": "googlenet"}
    assert published_weights(get_model_entry("lenet5")) == {}


def test_feature_info_gives_timms_channels_and_reductions():
    ours = cnnzoo.create_model("resnet50", features_only=True, out_indices=(1, 2, 3))
    theirs = timm.create_model("resnet50", features_only=True, out_indices=(2, 3, 4))
    assert ours.feature_info.channels() == theirs.feature_info.channels() == [512, 1024, 2048]
    assert ours.feature_info.reduction() == theirs.feature_info.reduction() == [8, 16, 32]
    assert ours.feature_info.channels(-1) == 2048
    assert ours.feature_info.module_name() == ["layer2", "layer3", "layer4"]


def test_default_cfg_reads_like_a_mapping():
    cfg = cnnzoo.create_model("resnet20", num_classes=7, in_chans=1).default_cfg
    assert cfg["input_size"] == (1, 32, 32)
    assert cfg.get("num_classes") == 7 and cfg.get("crop_pct", 0.875) == 0.875
    assert "mean" in cfg and "nope" not in cfg
    assert dict(cfg)["first_conv"] == "conv1" and list(cfg.keys())[:2] == ["paper", "input_size"]
    with pytest.raises(KeyError):
        cfg["extra_key"]


def test_models_pretrained_lists_only_models_with_weights_and_their_sources(capsys):
    assert main(["models", "--pretrained", "mobilenet_v2_0*"]) == 0
    out = capsys.readouterr().out
    assert "timm:mobilenetv2_050  hf-hub:timm/mobilenetv2_050." in out
    assert "mobilenet_v2_075" not in out  # no published weights
    assert main(["models", "--pretrained", "lenet5"]) == 2
    assert "no registered model with published weights" in capsys.readouterr().err


def _offline(monkeypatch):
    """No network: name resolution fails at once, and no library may start downloading."""

    def unreachable(address, timeout=None):
        raise OSError(-2, "Name or service not known")

    def no_download(*args, **kwargs):
        raise AssertionError("a download was tried although the host is unreachable")

    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("socket.create_connection", unreachable)
    monkeypatch.setattr(timm, "create_model", no_download)
    monkeypatch.setattr("huggingface_hub.hf_hub_download", no_download)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: "/nonexistent-torch-hub")


@pytest.mark.parametrize(
    ("source", "error", "host"),
    [
        ("timm", CheckpointError, "huggingface.co"),
        ("torchvision", CheckpointError, "download.pytorch.org"),
        ("hf-hub:timm/resnet18.a1_in1k", ConfigError, "huggingface.co"),
    ],
)
def test_offline_published_weights_fail_at_once_in_one_line(
    monkeypatch, tmp_path, source, error, host
):
    """Offline, timm's download retried for 51 s and printed 22 lines before its error."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    _offline(monkeypatch)
    with pytest.raises(error, match=rf"{host} is unreachable.*model\.pretrained=PATH") as caught:
        cnnzoo.create_model("resnet18", pretrained=source)
    assert "\n" not in str(caught.value)


def test_weights_in_the_local_cache_need_no_network(monkeypatch):
    _offline(monkeypatch)
    monkeypatch.setattr("cnnzoo.models._pretrained._in_hub_cache", lambda *a, **k: True)
    weights = dict(timm.models.resnet18().state_dict())
    model = type("Model", (), {"state_dict": lambda self: weights})()
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: model)
    assert cnnzoo.create_model("resnet18", pretrained="timm").fc.out_features == 1000
