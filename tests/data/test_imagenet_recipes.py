"""Every ImageNet recipe (configs/imagenet/) trains end to end for a few steps on a small
ImageFolder of full-size JPEGs written here: the real config, the real streaming transforms
(full-image decode, per-sample RandomResizedCrop + flip, resize + centre crop), the recipe's
optimizer, schedule, loss, EMA. Two recipes train on tar shards made from the folder as well
(crop + flip, and CutMix after a 176 crop): shards change only the data side, which
tests/data/test_stream.py covers further (Mixup on streamed batches included).

Shrunk for CPU time with --cfg-options, and only these: 2 classes instead of 1000 (so
data.type=imagefolder: data.type=imagenet insists on 1000 classes), one step of one epoch (no
warm-up) on batches of 4 (fewer make BatchNorm's gradients explode on 1x1 feature maps), no
TensorBoard, no PNG plots (tests/engine covers the reports), no workers (test_stream.py runs
them), every crop scaled to 32/224 of the recipe's (a model's smallest input at least: AlexNet
63, MLP-Mixer 224), and AMP off: bf16 autocast on a CPU slows depthwise and grouped
convolutions (1.7-2.2x a step here, far more on CPUs without bf16 instructions; see
cnnzoo.engine.cpu_kernels; a GPU's are fine). Measured with one thread (as CI runs): 74 s of
CPU (user + system) for this file and test_stream.py together, 1:44 of wall time, much of it
writing VGG-16-BN's and AlexNet's checkpoints (their 4096-wide classifiers: about 1 GB with the
momentum)."""

from __future__ import annotations

import json

import pytest
from datafiles import make_jpeg_folder

import cnnzoo
from cnnzoo.analysis import plots
from cnnzoo.config import list_configs, load_config
from cnnzoo.data.shards import write_shards
from cnnzoo.models import get_model_entry

RECIPES = [c for c in list_configs() if c.startswith("imagenet/")]
ON_SHARDS = (
    "imagenet/resnet50_sgd-step_8xb32_90e_imagenet.py",
    "imagenet/shufflenet_v2_x1_0_sgd-cosine_8xb128_600e_imagenet.py",
)
RUNS = [(n, "folder") for n in RECIPES] + [(n, "shards") for n in ON_SHARDS]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    make_jpeg_folder(root / "folder", per_class=2, splits=("train", "val"))
    write_shards(root / "folder", root / "shards", shard_size=2)
    return root


def shrunk(name: str, root: str, fmt: str, work_dir: str) -> dict:
    cfg = load_config(name)
    size = max(32, *get_model_entry(cfg.model.type).cfg.min_input_size)
    scale = size / cfg.data.image_size
    options = {
        "data.type": "imagefolder",
        "model.num_classes": 2,
        "data.root": root,
        "data.format": fmt,
        "data.num_workers": 0,
        "data.image_size": size,
        "data.resize": round(cfg.data.resize * scale),
        "data.train.pipeline.0.size": round(cfg.data.train.pipeline[0].size * scale),
        "data.train.batch_size": 4,
        "data.val.batch_size": 4,
        "data.test.batch_size": 4,
        "train_cfg.max_epochs": 1,
        "amp.enabled": False,
        "log.tensorboard": False,
        "work_dir": work_dir,
        "device": "cpu",
    }
    if "warmup_epochs" in cfg.param_scheduler:
        options["param_scheduler.warmup_epochs"] = 0  # must end before max_epochs
    return options


@pytest.fixture
def _no_plots(monkeypatch):
    """curves.png and confusion.png cost seconds of matplotlib a run; not drawn here."""
    monkeypatch.setattr(plots, "plot_training_curves", lambda *a, **k: None)
    monkeypatch.setattr(plots, "plot_confusion", lambda *a, **k: None)


@pytest.mark.parametrize(("name", "fmt"), RUNS)
def test_every_imagenet_recipe_trains_a_few_steps(name, fmt, images, tmp_path, _no_plots):
    root = images / fmt
    result = cnnzoo.train(load_config(name, shrunk(name, str(root), fmt, str(tmp_path))))
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert (
        summary["epochs"] == 1
        and summary["global_batch_size"] == 4
        and 0 <= result.metrics["val/top1"] <= 100
    )


def test_the_recipes_cover_the_seed_networks():
    models = {load_config(n).model.type for n in RECIPES}
    assert models == {
        "alexnet", "vgg16_bn", "googlenet", "resnet50", "resnext50_32x4d", "densenet121",
        "mobilenet_v2", "shufflenet_v2_x1_0", "efficientnet_b0", "repvgg_a0", "mixer_s16_224",
    }  # fmt: skip
    for name in RECIPES:
        cfg = load_config(name)
        assert cfg.data.type == "imagenet" and cfg.data.loader == "stream"
        assert cfg.model.num_classes == 1000 and cfg.amp.enabled
        text = (cnnzoo.config.configs_dir() / name).read_text()
        assert "Reported:" in text and "Not run here." in text, name
