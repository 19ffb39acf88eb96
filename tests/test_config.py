import json
import re
from pathlib import Path

import pytest
from mmengine.config import Config

from cnnzoo import schema
from cnnzoo.config import (
    config_data,
    config_hash,
    configs_dir,
    dump_config,
    list_configs,
    load_config,
    parse_cfg_options,
    resolve_config_path,
)
from cnnzoo.errors import ConfigError, UnknownNameError
from cnnzoo.models import is_model

BRIEF_KEYS = schema.TOP_LEVEL
DATASETS = schema.DATASETS
# {model}_[setting]_[{gpus}x]b{batch}_{schedule}_{dataset}[-size]
NAME = re.compile(
    r"^(?P<rest>.+?)_((?P<gpus>\d+)x)?b(?P<batch>\d+)_(?P<schedule>\d+x|\d+e|es\d+)_(?P<dataset>[a-z0-9-]+?)(-(?P<size>\d+))?$"
)
CONFIGS = list_configs()
BASE = configs_dir() / "_base_"


def test_configs_are_shipped():
    assert "quickstart_lenet5_digits.py" in CONFIGS
    assert len(CONFIGS) >= 25


@pytest.mark.parametrize("name", CONFIGS)
def test_every_shipped_config_loads_complete_and_named_by_its_recipe(name):
    cfg = load_config(name)
    for key in BRIEF_KEYS:
        assert key in cfg, f"{name} lacks {key}"
    for key in schema.DATA.keys:
        assert key in cfg.data, f"{name} lacks data.{key}"
    for key in ("type", "num_classes", "in_chans"):
        assert key in cfg.model
    assert is_model(cfg.model.type)
    assert cfg.data.type in DATASETS
    assert "max_epochs" in cfg.train_cfg
    if name == "quickstart_lenet5_digits.py" or name.startswith("speedrun/"):
        return  # named by what they are for (issue 4 fixes the speedrun names)
    m = NAME.match(Path(name).stem)
    assert m, f"{name} does not follow {{model}}_[setting]_b{{batch}}_{{schedule}}_{{dataset}}"
    rest = m["rest"]
    assert rest == cfg.model.type or rest.startswith(cfg.model.type + "_"), (
        f"{name}: model is {cfg.model.type}"
    )
    assert int(m["batch"]) == cfg.data.train.batch_size
    if m["gpus"]:  # "8xb32": the LR was set for 8 x 32, and scales with the global batch
        scale = cfg.auto_scale_lr
        assert scale.enable and scale.base_batch_size == int(m["gpus"]) * int(m["batch"])
    assert m["dataset"].replace("-", "_") == cfg.data.type
    if m["size"]:
        assert cfg.data.image_size == int(m["size"])
    schedule = m["schedule"]
    if schedule.endswith("x"):
        assert cfg.train_cfg.max_epochs == 12 * int(schedule[:-1])
    elif schedule.endswith("e"):
        assert cfg.train_cfg.max_epochs == int(schedule[:-1])
    else:
        assert cfg.early_stopping is not None and cfg.early_stopping.patience == int(schedule[2:])


def test_dataset_names_match_the_data_package():
    from cnnzoo.data import DATASETS as readers

    assert set(DATASETS) <= set(readers)


def test_default_runtime_file_matches_the_defaults():
    runtime = Config.fromfile(str(BASE / "default_runtime.py")).to_dict()
    defaults = schema.complete({})  # what a config that sets no runtime key gets
    for key, value in runtime.items():
        assert defaults[key] == value, key


@pytest.mark.parametrize(
    ("name", "epochs", "milestones"),
    [("1x", 12, [8, 11]), ("2x", 24, [16, 22]), ("20e", 20, [16, 19])],
)
def test_mmdet_schedules(name, epochs, milestones):
    cfg = Config.fromfile(str(BASE / "schedules" / f"{name}.py"))
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler.milestones == milestones
    assert cfg.param_scheduler.gamma == 0.1


def test_tutorial_recipe():
    cfg = load_config("alexnet_adam-plateau_b64_es5_cifar10.py")
    assert (
        cfg.optimizer.type == "Adam"
        and cfg.optimizer.lr == 1e-3
        and cfg.optimizer.weight_decay == 1e-4
    )
    assert cfg.param_scheduler.type == "ReduceLROnPlateau"
    assert cfg.early_stopping.patience == 5
    assert cfg.data.train.batch_size == 64 and cfg.data.val_split == 0.1


def test_none_is_the_quickstart_and_names_resolve_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path(None).name == "quickstart_lenet5_digits.py"
    assert load_config(None).model.type == "lenet5"
    path = resolve_config_path("configs/resnet20_b128_164e_cifar10.py")
    assert path == resolve_config_path("resnet20_b128_164e_cifar10")
    with pytest.raises(ConfigError, match="resnet20_b128_164e_cifar10"):
        resolve_config_path("resnet20_b128_146e_cifar10.py")


def test_packaged_config_folder_is_the_repo_folder():
    linked = Path(__import__("cnnzoo").__file__).parent / "_configs"
    assert linked.resolve() == configs_dir().resolve()


def test_overrides_parse_like_mmengine():
    cfg = load_config(
        None,
        [
            "model.drop_rate=0.3",
            "model.act=relu",
            "data.train.pipeline=[]",
            "workflow=[(train,2),(val,1)]",
            "data.mean=(0.5,)",
            "data.std=[0.25]",
            "deterministic=true",
            "data.root=None",
            "optimizer.betas=(0.8,0.99)",
            "train_cfg.max_epochs=3",
        ],
    )
    assert cfg.model.drop_rate == 0.3 and cfg.model.act == "relu"
    assert cfg.data.train.pipeline == []
    assert cfg.workflow == [("train", 2), ("val", 1)]
    assert cfg.data.mean == (0.5,) and cfg.data.std == [0.25]
    assert cfg.deterministic is True and cfg.data.root is None
    assert cfg.optimizer.betas == (0.8, 0.99) and cfg.train_cfg.max_epochs == 3


def test_list_items_are_addressed_by_index():
    cfg = load_config(
        "resnet18_b128_1x_cifar10",
        ["data.train.pipeline.0.type=Cutout", "data.train.pipeline.0.size=8"],
    )
    assert cfg.data.train.pipeline[0] == dict(type="Cutout", size=8)
    with pytest.raises(ConfigError, match="out of range.*2 item"):
        load_config("resnet18_b128_1x_cifar10", ["data.train.pipeline.5.type=Cutout"])
    with pytest.raises(ConfigError, match="index it with a number"):
        load_config("resnet18_b128_1x_cifar10", ["data.train.pipeline.first.type=Cutout"])


def test_mapping_overrides_are_accepted():
    assert load_config(None, {"seed": 7}).seed == 7


@pytest.mark.parametrize(
    ("option", "pattern"),
    [
        ("data.train.batch_sise=3", "data.train.batch_size"),
        ("optimiser.lr=0.1", "optimizer.lr"),
        ("model.widht=3", "takes: .*act"),
        ("early_stopping.patients=3", "early_stopping"),
    ],
)
def test_unknown_keys_name_the_nearest_valid_ones(option, pattern):
    with pytest.raises(
        ConfigError, match=f"unknown config key '{option.split('=')[0]}'.*{pattern}"
    ):
        load_config(None, [option])


def test_malformed_options():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["model.drop_rate"])
    with pytest.raises(ConfigError, match="malformed config key"):
        load_config(None, ["model..drop_rate=1"])
    with pytest.raises(ConfigError, match="unbalanced"):
        load_config(None, ["workflow=[(train,1)"])
    with pytest.raises(ConfigError, match="not a dict"):
        load_config(None, ["seed.value=1"])


@pytest.mark.parametrize(
    ("option", "pattern"),
    [
        ("train_cfg.max_epochs=0", "max_epochs must be an integer in \\[1, "),
        ("train_cfg.max_epochs=2.5", "max_epochs must be an integer in \\[1, "),
        ("optimizer.lr=-0.1", "lr must be a number > 0"),
        ("data.train.batch_size=0", "batch_size must be an integer in \\[1, "),
        ("data.val.batch_size=x", "batch_size must be an integer in \\[1, "),
        ("data.val_split=1.0", "val_split"),
        ("data.train_subset=0", "train_subset must be None or a fraction in \\(0, 1\\]"),
        ("data.train_subset=1.5", "train_subset must be"),
        ("data.train_subset=-100", "train_subset must be"),
        ("data.train_subset=half", "train_subset must be"),
        ("workflow=[(test,1)]", "workflow"),
        ("amp.dtype=float8", "amp.dtype"),
        ("model.num_classes=3", "has 10 classes"),
        ("model.in_chans=3", "set model.in_chans=1"),
        ("data.image_size=16", "at least 28x28"),
        ("loss.label_smoothing=1.5", "label_smoothing"),
    ],
)
def test_bad_values_are_config_errors(option, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [option])


def test_train_subset_is_an_accepted_data_key():
    assert load_config(None, ["data.train_subset=0.25"]).data.train_subset == 0.25
    assert load_config(None, ["data.train_subset=500"]).data.train_subset == 500
    assert load_config(None).data.train_subset is None  # not set: the schema's default


@pytest.mark.parametrize(
    ("option", "suggestion"),
    [
        ("model.type=resnet81", "resnet18"),
        ("data.type=cifar11", "cifar10"),
        ("optimizer.type=SDG", "SGD"),
        ("param_scheduler.type=CosineAnnealing", "CosineAnnealingLR"),
        ("loss.type=cross_entropi", "cross_entropy"),
        ("data.train.pipeline=[]", None),
    ],
)
def test_unknown_names_suggest_the_closest(option, suggestion):
    if suggestion is None:
        load_config(None, [option])
        return
    with pytest.raises(UnknownNameError, match=suggestion):
        load_config(None, [option])


def test_changing_a_type_drops_the_keys_it_does_not_take():
    cfg = load_config(
        "resnet18_b128_1x_cifar10",
        ["param_scheduler.type=CosineAnnealingLR", "param_scheduler.min_lr=0.001"],
    )
    assert "milestones" not in cfg.param_scheduler and cfg.param_scheduler.min_lr == 0.001
    cfg = load_config(None, ["optimizer.type=SGD", "optimizer.momentum=0.9"])
    assert "betas" not in cfg.optimizer and cfg.optimizer.momentum == 0.9
    cfg = load_config(
        None, ["model.act=relu", "model.type=resnet14", "data.in_chans=3", "model.in_chans=3"]
    )
    assert "act" not in cfg.model


def test_none_sections_are_enabled_by_their_keys():
    cfg = load_config(None, ["early_stopping.patience=3", "clip_grad.max_norm=2.0"])
    assert cfg.early_stopping == dict(monitor="val/loss", mode="min", patience=3, min_delta=0.0)
    assert cfg.clip_grad == dict(max_norm=2.0, norm_type=2.0)  # the rest: the schema's defaults


def test_regression_config():
    cfg = load_config("lenet5_mse_b32_20e_digits.py")
    assert cfg.loss == dict(type="mse", aux_weight=0.3) and cfg.model.num_classes == 1
    with pytest.raises(ConfigError, match="num_classes=1"):
        load_config("lenet5_mse_b32_20e_digits.py", ["model.num_classes=10"])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_yaml_and_json_configs_with_bases_and_delete(tmp_path):
    parts = ("models/lenet5.py", "datasets/digits.py", "schedules/1x.py", "default_runtime.py")
    bases = []
    for part in parts:  # the shipped .py parts as data files beside the experiment
        name = part.replace("/", "-").replace(".py", ".json")
        data = {k: v for k, v in Config.fromfile(str(BASE / part)).to_dict().items()}
        _write(tmp_path / name, json.dumps(data))
        bases.append(name)
    yaml_file = _write(
        tmp_path / "exp.yaml",
        "_base_:\n"
        + "".join(f"  - {b}\n" for b in bases)
        + "optimizer:\n  _delete_: true\n  type: Adam\n  lr: 0.002\n",
    )
    cfg = load_config(str(yaml_file))
    assert cfg.optimizer == dict(  # _delete_: the base's keys are gone, the schema's defaults in
        type="Adam",
        lr=0.002,
        weight_decay=0.0,
        fused=None,
        decay_norm_and_bias=True,
        norm_lr_mult=1.0,
        norm_decay_mult=1.0,
    )
    json_file = _write(tmp_path / "exp.json", json.dumps({"_base_": bases, "seed": 3}))
    assert load_config(str(json_file)).seed == 3


def test_standalone_config_gets_runtime_defaults(tmp_path):
    path = _write(
        tmp_path / "mini.py",
        "model = dict(type='lenet5', num_classes=10, in_chans=1)\n"
        "data = dict(type='digits', image_size=32)\n"
        "optimizer = dict(type='SGD', lr=0.1)\n"
        "train_cfg = dict(max_epochs=1)\n",
    )
    cfg = load_config(str(path))
    assert (
        cfg.nan_policy == "stop"
        and cfg.loss.type == "cross_entropy"
        and cfg.data.test.batch_size == 512
    )
    with pytest.raises(ConfigError, match="lacks data, optimizer, train_cfg"):
        load_config(
            str(
                _write(
                    tmp_path / "bad.py", "model = dict(type='lenet5', num_classes=10, in_chans=1)\n"
                )
            )
        )


def test_unknown_top_level_key_in_a_file(tmp_path):
    path = _write(
        tmp_path / "typo.py",
        f"_base_ = ['{configs_dir() / 'quickstart_lenet5_digits.py'}']\nepochs = 3\n",
    )
    with pytest.raises(ConfigError, match="unknown config key 'epochs'"):
        load_config(str(path))


def test_broken_files_are_one_line_errors_naming_the_file(tmp_path):
    syntax = _write(tmp_path / "syntax.py", "model = dict(type='lenet5'\n")
    with pytest.raises(ConfigError, match="syntax.py: syntax error at line") as e:
        load_config(str(syntax))
    assert "\n" not in str(e.value)
    missing = _write(tmp_path / "missing.py", "_base_ = ['./nowhere.py']\n")
    with pytest.raises(ConfigError, match="missing.py.*nowhere.py"):
        load_config(str(missing))
    bad_yaml = _write(tmp_path / "bad.yaml", "model: [1\n")
    with pytest.raises(ConfigError, match="bad.yaml") as e:
        load_config(str(bad_yaml))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="unsupported config format"):
        load_config(str(_write(tmp_path / "exp.toml", "x = 1\n")))


def test_dump_reproduces_the_run_and_keeps_its_hash(tmp_path):
    cfg = load_config(
        "googlenet_b128_30e_cifar10-96", ["model.drop_rate=0.2", "early_stopping.patience=4"]
    )
    run_dir = tmp_path / "run"
    dump_config(cfg, run_dir / "config.yaml")  # what a run directory keeps
    text = (run_dir / "config.yaml").read_text()
    assert "_base_" not in text
    again = load_config(str(run_dir))
    assert config_data(again) == config_data(cfg)  # YAML keeps tuples as lists
    assert config_hash(again) == config_hash(cfg)
    dump_config(cfg, tmp_path / "c.py")
    assert load_config(str(tmp_path / "c.py")).to_dict() == cfg.to_dict()  # tuples too
    for suffix in (".json", ".yaml", ".py"):
        dump_config(cfg, tmp_path / f"c{suffix}")
        assert config_hash(load_config(str(tmp_path / f"c{suffix}"))) == config_hash(cfg)
    assert not list(run_dir.glob("*.tmp"))


def test_config_hash_is_stable_and_sensitive():
    a, b = load_config(None), load_config(None)
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 64
    assert config_hash(load_config(None, ["seed=1"])) != config_hash(a)


def test_parse_cfg_options_keeps_order():
    assert parse_cfg_options(["a.b=1", "a.c=x,y", "d=[1,(2,3)]"]) == [
        ("a.b", 1),
        ("a.c", ["x", "y"]),
        ("d", [1, (2, 3)]),
    ]


def test_a_base_may_name_a_shipped_config(tmp_path):
    """``cnnzoo::NAME`` (mmengine's package::path form) names a shipped config, from .py and
    YAML configs alike; another package's configs stay refused in YAML."""
    (tmp_path / "mine.py").write_text(
        '_base_ = ["cnnzoo::resnet14_adam-plateau_b64_es5_cifar10.py"]\noptimizer = dict(lr=0.002)\n'
    )
    cfg = load_config(tmp_path / "mine.py")
    assert (cfg.model.type, cfg.optimizer.type, cfg.optimizer.lr) == ("resnet14", "Adam", 0.002)
    parts = ["models/lenet5", "datasets/digits", "schedules/20e", "default_runtime"]
    (tmp_path / "mine.yaml").write_text(
        "_base_: [" + ", ".join(f'"cnnzoo::_base_/{p}.py"' for p in parts) + "]\n"
        "train_cfg: {max_epochs: 2}\n"
    )
    cfg = load_config(tmp_path / "mine.yaml")
    assert (cfg.model.type, cfg.data.type, cfg.train_cfg.max_epochs) == ("lenet5", "digits", 2)
    (tmp_path / "missing.py").write_text('_base_ = ["cnnzoo::resnet14_adam.py"]\n')
    with pytest.raises(ConfigError, match="names no shipped config; similar names: resnet14_adam"):
        load_config(tmp_path / "missing.py")
    (tmp_path / "climb.py").write_text('_base_ = ["cnnzoo::../pyproject.toml"]\n')
    with pytest.raises(ConfigError, match="names no shipped config"):
        load_config(tmp_path / "climb.py")
    (tmp_path / "other.yaml").write_text(
        '_base_: ["mmpretrain::resnet/resnet18_8xb16_cifar10.py"]\n'
    )
    with pytest.raises(ConfigError, match="names a package config"):
        load_config(tmp_path / "other.yaml")
