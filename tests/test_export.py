"""Export: BN folding, every registered model to ONNX / TorchScript checked against PyTorch,
the sidecar and predict-from-file, and ``cnnzoo export`` on a real (tiny) run."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from PIL import Image

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.errors import CheckpointError, ConfigError, InputShapeError
from cnnzoo.export import (
    conv_bn_pairs,
    export_model,
    fold_batchnorm,
    is_exported,
    load_exported,
    read_sidecar,
    sidecar_path,
)
from cnnzoo.layers import ConvNormAct
from cnnzoo.models import get_model_entry
from zoo_helpers import randomize_bn

# Models that cannot be exported, with the reason (xfail strict: the list must stay true).
CANNOT_EXPORT: dict[str, str] = {}


def _input_size(name: str) -> int:
    h, w = get_model_entry(name).cfg.min_input_size
    return 32 if max(h, w) <= 32 else max(h, w)


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-4) -> bool:
    return (a - b).abs().max().item() <= rel * b.abs().max().item()


# ---------------------------------------------------------------- BatchNorm folding


class TorchvisionStyleBlock(nn.Module):
    """conv1/bn1 pairs in a hand-written forward, plus BN-before-conv (pre-activation) and a
    conv whose output also feeds the skip: only the first pair may be folded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.bn2 = nn.BatchNorm2d(8)  # pre-activation: BN *before* conv2, not foldable
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=True)
        self.conv3 = nn.Conv2d(8, 8, 1)
        self.bn3 = nn.BatchNorm2d(8)  # conv3's output is also added back: not foldable

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.conv2(torch.relu(self.bn2(y)))
        z = self.conv3(y)
        return self.bn3(z) + z


class ShapeBranching(nn.Module):
    """A root fx cannot trace (control flow on a shape); its children can still be folded."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.block = TorchvisionStyleBlock()
        self.head = ConvNormAct(8, 6, 1, act_layer=None)

    def forward(self, x):
        if x.shape[-1] > 16:
            x = nn.functional.avg_pool2d(x, 2)
        return self.head(self.block(self.stem(x))).mean((2, 3))


def test_fold_batchnorm_folds_only_direct_pairs_and_preserves_outputs():
    model = randomize_bn(ShapeBranching()).eval()
    x = torch.randn(3, 3, 24, 24)
    with torch.no_grad():
        ref = model(x)
    pairs = fold_batchnorm(model)
    assert sorted(pairs) == [
        ("block.conv1", "block.bn1"),
        ("head.conv", "head.bn"),
        ("stem.0", "stem.1"),
    ]
    assert isinstance(model.stem[1], nn.Identity) and isinstance(model.block.bn1, nn.Identity)
    assert isinstance(model.block.bn2, nn.BatchNorm2d) and isinstance(
        model.block.bn3, nn.BatchNorm2d
    )
    assert model.block.conv1.bias is not None
    with torch.no_grad():
        out = model(x)
    assert (out - ref).abs().max().item() < 1e-5 * ref.abs().max().item()


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv1_025", "shufflenet_v2_x0_5", "vgg11_bn"])
def test_fold_batchnorm_on_zoo_models_preserves_outputs(name):
    model = randomize_bn(cnnzoo.create_model(name, num_classes=10)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    pairs = fold_batchnorm(model)
    assert len(pairs) == n_bn  # post-activation nets: every BN follows a conv
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        assert _close(model(x), ref, 1e-5)


def test_fold_batchnorm_skips_pre_activation_bn():
    model = cnnzoo.create_model("preact_resnet18", num_classes=10).eval()
    pairs = conv_bn_pairs(model)
    folded_bns = {bn for _, bn in pairs}
    assert "layer1.0.bn2" in folded_bns  # conv1 -> bn2 inside the pre-activation block
    assert "layer1.0.bn1" not in folded_bns  # bn1 reads the block input, not a conv


def test_fold_batchnorm_needs_eval_mode():
    with pytest.raises(ConfigError, match="eval"):
        fold_batchnorm(ShapeBranching().train())


# ---------------------------------------------------------------- every model, both formats


def _walk_params(names):
    out = []
    for name in names:
        marks = (
            [pytest.mark.xfail(reason=CANNOT_EXPORT[name], strict=True)]
            if name in CANNOT_EXPORT
            else []
        )
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _export_and_check(name: str, fmt: str, path) -> None:
    torch.manual_seed(0)
    model = randomize_bn(cnnzoo.create_model(name, num_classes=10, in_chans=3))
    size = _input_size(name)
    report = export_model(model, torch.randn(2, 3, size, size), path, fmt)
    # checked on a batch size other than the traced one: the batch axis is dynamic
    assert report.check_batch == 3
    assert report.matches, (
        f"max diff {report.max_abs_diff:.3g} at output scale {report.output_scale:.3g}"
    )
    side = read_sidecar(path)
    assert side["model_name"] == name and side["image_size"] == [size, size]
    assert side["num_classes"] == 10 and side["max_abs_diff"] == report.max_abs_diff
    # the walk writes every model of the zoo (VGG is half a gigabyte); pytest would keep them all
    # until the session ends
    for file in path.parent.iterdir():
        file.unlink()


@pytest.mark.slow
@pytest.mark.parametrize("name", _walk_params(cnnzoo.list_models()))
def test_every_model_exports_to_onnx_and_matches_pytorch(name, tmp_path):
    _export_and_check(name, "onnx", tmp_path / "model.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("name", _walk_params(cnnzoo.list_models()))
def test_every_model_exports_to_torchscript_and_matches_pytorch(name, tmp_path):
    _export_and_check(name, "torchscript", tmp_path / "model.pt")


# ---------------------------------------------------------------- RepVGG, sidecar, safety

THIN = (8, 8, 16, 32, 64)  # RepVGG-A0's depths at a fraction of its widths, to keep tests quick


def test_repvgg_reparameterized_export_is_the_fused_plain_network(tmp_path):
    model = cnnzoo.create_model("repvgg_a0", num_classes=10, widths=THIN)
    model = randomize_bn(model).eval()
    fused = export_model(
        model, torch.randn(2, 3, 32, 32), tmp_path / "fused.onnx", reparameterize=True
    )
    assert fused.reparameterized and fused.matches
    assert fused.num_params < fused.num_params_trained  # 1x1 and identity branches are gone
    ops = [n.op_type for n in onnx.load(str(fused.path)).graph.node]
    assert "BatchNormalization" not in ops and "Add" not in ops
    assert ops.count("Conv") == 22  # one 3x3 conv per block: 1 + 2 + 4 + 14 + 1
    assert any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules())


def test_sidecar_lets_the_file_predict_alone(tmp_path):
    model = cnnzoo.create_model("resnet20", num_classes=3).eval()
    meta = dict(class_names=["cat", "dog", "eel"], mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2])
    x = torch.randn(4, 3, 32, 32)
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        report = export_model(model, x[:2], tmp_path / f"m{suffix}", fmt, meta=meta, check_input=x)
        side = json.loads(sidecar_path(report.path).read_text())
        assert side["class_names"] == ["cat", "dog", "eel"] and side["mean"] == [0.5, 0.4, 0.3]
        assert side["image_size"] == [32, 32] and side["in_chans"] == 3
        assert side["model_name"] == "resnet20" and side["max_abs_diff"] == report.max_abs_diff
        assert is_exported(report.path)
        exported, loaded_meta = load_exported(report.path)
        with torch.no_grad():
            assert _close(exported(x), model(x))
        with pytest.raises(InputShapeError, match="3, 32, 32"):
            exported(torch.randn(1, 3, 28, 28))


def test_a_fold_that_changes_outputs_is_undone(tmp_path, monkeypatch):
    import cnnzoo.export.core as core

    def bad_fold(model, pairs):
        fold_batchnorm(model, pairs)
        with torch.no_grad():
            model.get_submodule(pairs[0][0]).weight.mul_(3.0)
        return pairs

    monkeypatch.setattr(core, "fold_batchnorm", bad_fold)
    model = randomize_bn(cnnzoo.create_model("resnet20", num_classes=10)).eval()
    report = export_model(model, torch.randn(2, 3, 32, 32), tmp_path / "m.onnx")
    assert report.folded_bn == [] and "exported unfolded" in report.notes[0]
    assert report.matches and report.num_params == report.num_params_trained


def test_export_leaves_the_given_model_alone(tmp_path):
    model = cnnzoo.create_model("repvgg_a0", num_classes=10, widths=THIN).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_model(model, torch.randn(2, 3, 32, 32), tmp_path / "m.onnx", reparameterize=True)
    assert model.training and model.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(InputShapeError, match="input channel"):  # the input check still works
        model(torch.randn(2, 1, 32, 32))


def test_export_refuses_to_overwrite_other_files_and_bad_paths(tmp_path):
    model = cnnzoo.create_model("lenet5").eval()
    x = torch.randn(2, 1, 32, 32)
    precious = tmp_path / "model.onnx"
    precious.write_bytes(b"not an export")
    with pytest.raises(ConfigError, match="not a cnnzoo export"):
        export_model(model, x, precious)
    assert precious.read_bytes() == b"not an export"
    with pytest.raises(ConfigError, match="'.pt' files"):
        export_model(model, x, tmp_path / "model.onnx", format="torchscript")
    with pytest.raises(ConfigError, match="unknown export format"):
        export_model(model, x, tmp_path / "model.tflite", format="tflite")
    with pytest.raises(InputShapeError, match="N >= 2"):
        export_model(model, x[:1], tmp_path / "one.onnx")
    with pytest.raises(InputShapeError, match="input channel"):
        export_model(model, torch.randn(2, 3, 32, 32), tmp_path / "rgb.onnx")
    again = tmp_path / "again.onnx"
    export_model(model, x, again)
    assert export_model(model, x, again).matches  # an earlier export may be replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "again.onnx",
        "again.onnx.json",
        "model.onnx",
    ]


def test_load_exported_needs_the_sidecar(tmp_path):
    model = cnnzoo.create_model("lenet5").eval()
    report = export_model(model, torch.randn(2, 1, 32, 32), tmp_path / "m.onnx")
    sidecar_path(report.path).unlink()
    with pytest.raises(CheckpointError, match="sidecar"):
        load_exported(report.path)
    assert not is_exported(report.path)


# ---------------------------------------------------------------- cnnzoo export on a run

TINY_RUN = """
_base_ = ["{configs}/_base_/models/lenet5.py", "{configs}/_base_/datasets/digits.py",
          "{configs}/_base_/schedules/adam_20e.py", "{configs}/_base_/default_runtime.py"]
model = dict(act="relu")
data = dict(val_split=0.0, train=dict(batch_size=64))
train_cfg = dict(max_epochs=1)
log = dict(interval=100, tensorboard=False)
device = "cpu"
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One epoch of LeNet-5 on scikit-learn's digits (bundled, no download)."""
    from cnnzoo.config import configs_dir, load_config
    from cnnzoo.engine import train

    root = tmp_path_factory.mktemp("run")
    mp = pytest.MonkeyPatch()
    mp.setenv("CNNZOO_CACHE", str(root / "cache"))
    mp.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    cfg_file = root / "tiny_digits.py"
    cfg_file.write_text(TINY_RUN.format(configs=configs_dir()))
    run_dir = train(load_config(cfg_file, {"work_dir": str(root / "runs")}), quiet=True)
    torch.set_num_threads(threads)
    yield run_dir
    mp.undo()


@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_cli_export_then_predict_from_the_file(tiny_run, tmp_path, capsys, fmt, suffix):
    assert main(["export", str(tiny_run), "--format", fmt]) == 0
    out = capsys.readouterr().out
    path = tiny_run / "export" / f"model{suffix}"
    assert f"to {path}" in out and "digits test images" in out and "matches" in out
    side = json.loads(sidecar_path(path).read_text())
    assert len(side["class_names"]) == 10
    assert side["image_size"] == [32, 32] and side["in_chans"] == 1

    image = tmp_path / "seven.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32)) * 255).astype("uint8")).save(image)
    assert main(["predict", str(tiny_run), str(image), "--topk", "3"]) == 0
    from_run = capsys.readouterr().out
    assert main(["predict", str(path), str(image), "--topk", "3"]) == 0
    from_file = capsys.readouterr().out
    assert from_file == from_run  # same classes and probabilities to 4 decimals


def test_cli_export_output_outside_the_run_and_refusals(tiny_run, tmp_path, capsys):
    out_file = tmp_path / "deploy" / "digits.onnx"
    assert main(["export", str(tiny_run), "--output", str(out_file)]) == 0
    assert out_file.is_file() and sidecar_path(out_file).is_file()
    capsys.readouterr()
    ckpt = tiny_run / "checkpoints" / "last.pt"
    before = ckpt.read_bytes()
    code = main(["export", str(tiny_run), "--format", "torchscript", "--output", str(ckpt)])
    err = capsys.readouterr().err
    assert code == 2 and "not a cnnzoo export" in err and len(err.strip().splitlines()) == 1
    assert ckpt.read_bytes() == before


def test_cli_export_without_the_data_checks_on_random_images(
    tiny_run, tmp_path, capsys, monkeypatch
):
    import cnnzoo.data
    from cnnzoo.errors import DataError

    def missing(*args, **kwargs):
        raise DataError("no digits here")

    monkeypatch.setattr(cnnzoo.data, "build_data", missing)
    out_file = tmp_path / "elsewhere.pt"
    assert (
        main(["export", str(tiny_run), "--format", "torchscript", "--output", str(out_file)]) == 0
    )
    out = capsys.readouterr().out
    assert "8 random images (note: the run's data is not available (no digits here))" in out
    assert out_file.is_file()
