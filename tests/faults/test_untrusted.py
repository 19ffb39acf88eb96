"""Files from someone else are data: a checkpoint, a run directory, a YAML or JSON config can
not run code, exhaust memory or end in a traceback. Each case asserts exit status 2 and one
line (the ``cli`` fixture), that the planted code did not run, and that nothing was lost."""

from __future__ import annotations

import errno
import json
import shutil
import sys

import pytest
import torch
from faultkit import TINY, write_tiny_config

from cnnzoo.config import config_data, load_config, parse_cfg_options
from cnnzoo.engine import load_checkpoint
from cnnzoo.errors import CheckpointError, ConfigError
from cnnzoo.fileio import atomic_write

CODE = "__import__('pathlib').Path({marker!r}).touch()"


@pytest.fixture
def marker(tmp_path):
    """A file that planted code would create; every case asserts it was never made."""
    path = tmp_path / "code-ran"
    yield path
    assert not path.exists(), "code from a data file ran"


def _copy_run(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    return run


def _tamper(path, **changes):
    ckpt = torch.load(path, weights_only=True)
    ckpt.update(changes)
    torch.save(ckpt, path)


# ---- checkpoints and run directories: the config is data ---------------------------------


def test_checkpoints_store_the_config_as_plain_data(reference):
    ckpt = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["format_version"] == 2 and isinstance(ckpt["config"], dict)
    assert ckpt["config"] == config_data(load_config(reference / "config.yaml"))
    assert not (reference / "config.py").exists()


@pytest.mark.parametrize("command", ["test", "export", "predict"])
def test_code_in_a_checkpoint_config_never_runs(cli, reference, tmp_path, marker, command):
    """A checkpoint of format 1 (the config as .py text) is refused by its format number: its
    text is never parsed, let alone run."""
    run = _copy_run(reference, tmp_path)
    text = "model = dict(type='lenet5')\n" + CODE.format(marker=str(marker)) + "\n"
    _tamper(run / "checkpoints" / "best.pt", format_version=1, config=text)
    extra = [str(tmp_path / "x.png")] if command == "predict" else []
    outcome, err = cli([command, str(run), *extra])
    assert outcome == "error"
    assert "checkpoint format 1," in err and str(run / "checkpoints" / "best.pt") in err


@pytest.mark.parametrize("command", ["test", "export", "predict"])
def test_config_text_in_a_current_checkpoint_never_runs(cli, reference, tmp_path, marker, command):
    run = _copy_run(reference, tmp_path)
    text = "model = dict(type='lenet5')\n" + CODE.format(marker=str(marker)) + "\n"
    _tamper(run / "checkpoints" / "best.pt", config=text)
    extra = [str(tmp_path / "x.png")] if command == "predict" else []
    outcome, err = cli([command, str(run), *extra])
    assert outcome == "error"
    assert "config should be" in err and str(run / "checkpoints" / "best.pt") in err


def test_an_old_run_directory_config_py_is_never_read(cli, reference, tmp_path, marker):
    """cnnzoo before 0.1 kept config.py in a run; it is neither run nor parsed: the resume
    says in one line that the run's format is not read and what to do."""
    run = _copy_run(reference, tmp_path)
    (run / "config.yaml").unlink()
    (run / "config.py").write_text("seed = 0\n" + CODE.format(marker=str(marker)) + "\n")
    outcome, err = cli(["train", str(run), "--resume", str(run)])
    assert outcome == "error" and "config.py" in err and "train it again" in err


def test_errors_in_a_checkpoint_config_name_the_checkpoint(cli, reference, tmp_path):
    run = _copy_run(reference, tmp_path)
    bad = dict(config_data(load_config(reference / "config.yaml")), seed=-5)
    _tamper(run / "checkpoints" / "best.pt", config=bad)
    outcome, err = cli(["test", str(run)])
    assert outcome == "error"
    assert f"the config in checkpoint {run / 'checkpoints' / 'best.pt'}: seed" in err
    assert "/tmp" not in err.replace(str(tmp_path), "")  # no temporary file is named


# ---- checkpoint schema --------------------------------------------------------------------

DAMAGE = [
    ("format_version", "2"),
    ("format_version", None),
    ("model_name", 5),
    ("model_kwargs", [1]),
    ("model", {"conv.weight": 1.0}),
    ("optimizer", {"state": 3}),
    ("optimizer", {"state": {}, "param_groups": "x"}),
    ("scheduler", [1]),
    ("epoch", -1),
    ("epoch", "3"),
    ("global_step", 1.5),
    ("rng", {"torch": 1}),
    ("best", {"monitor": 1}),
    ("history", [{"epoch": [1]}]),
    ("history", "x"),
    ("config", 5),
    ("config", {"model": object.__name__, "x": {1: 2}}),
    ("data_meta", {"dataset": "digits"}),
    ("data_meta", None),
    ("partial", {"step": "3"}),
    ("world_size", 0),
]


@pytest.mark.parametrize(("field", "value"), DAMAGE, ids=[f"{f}={v!r}" for f, v in DAMAGE])
def test_damaged_checkpoint_fields_are_named(reference, tmp_path, field, value):
    run = _copy_run(reference, tmp_path)
    path = run / "checkpoints" / "last.pt"
    _tamper(path, **{field: value})
    with pytest.raises(CheckpointError, match=rf"is damaged or not a cnnzoo checkpoint: {field} "):
        load_checkpoint(path)


def test_damaged_checkpoint_via_cli_is_one_line(cli, reference, tmp_path):
    run = _copy_run(reference, tmp_path)
    _tamper(run / "checkpoints" / "best.pt", data_meta={"dataset": 3})
    before = (run / "metrics.csv").read_bytes()
    outcome, err = cli(["test", str(run)])
    assert outcome == "error" and "data_meta should be" in err
    assert (run / "metrics.csv").read_bytes() == before


# ---- resuming with another optimizer -------------------------------------------------------


def test_resume_with_another_optimizer_starts_its_state_fresh(reference, tmp_path, capsys):
    from cnnzoo.engine.trainer import train

    run = _copy_run(reference, tmp_path)
    cfg = load_config(
        run / "config.yaml",
        ["optimizer.type=SGD", "optimizer.momentum=0.9", "train_cfg.max_epochs=4"],
    )
    assert train(cfg, resume=run, quiet=True) == run
    out = capsys.readouterr().out
    assert "trained with Adam, this config uses SGD" in out and "starts fresh" in out
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 4


# ---- YAML and JSON configs: plain data end to end ------------------------------------------


def _yaml(path, text):
    path.write_text(text)
    return path


def test_custom_imports_in_yaml_is_refused_before_import(cli, tmp_path, marker, monkeypatch):
    (tmp_path / "evilmod.py").write_text(CODE.format(marker=str(marker)) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    base = write_tiny_config(tmp_path)
    cfg = _yaml(
        tmp_path / "x.yaml", f"_base_: [{base.name}]\ncustom_imports: {{imports: [evilmod]}}\n"
    )
    outcome, err = cli(["train", str(cfg)])
    assert outcome == "error" and "custom_imports is refused" in err
    assert "evilmod" not in sys.modules


def test_custom_imports_in_a_yaml_base_is_refused(tmp_path, marker, monkeypatch):
    (tmp_path / "evilmod2.py").write_text(CODE.format(marker=str(marker)) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _yaml(tmp_path / "base.yaml", "custom_imports: {imports: [evilmod2]}\n")
    cfg = _yaml(tmp_path / "x.yaml", "_base_: [base.yaml]\n")
    with pytest.raises(ConfigError, match="custom_imports is refused"):
        load_config(cfg)


def test_a_py_base_of_a_yaml_config_is_refused_unrun(cli, tmp_path, marker):
    (tmp_path / "base.py").write_text(CODE.format(marker=str(marker)) + "\n")
    cfg = _yaml(tmp_path / "x.yaml", "_base_: [base.py]\n")
    outcome, err = cli(["train", str(cfg)])
    assert outcome == "error" and "would run as code" in err


@pytest.mark.parametrize("base", ["../outside.json", "/etc/outside.json", "sub/../../outside.json"])
def test_bases_may_not_climb_out_of_the_config_folder(tmp_path, base, monkeypatch):
    (tmp_path / "outside.json").write_text(json.dumps(TINY))
    folder = tmp_path / "configs"
    (folder / "sub").mkdir(parents=True)
    cfg = _yaml(folder / "x.yaml", f"_base_: ['{base}']\n")
    with pytest.raises(ConfigError, match="outside the config's folder"):
        load_config(cfg)
    if not base.startswith("/"):  # the user may opt in
        monkeypatch.setenv("CNNZOO_ALLOW_EXTERNAL_BASE", "1")
        assert load_config(cfg).model.type == "lenet5"


def test_bases_inside_the_folder_tree_are_fine(tmp_path):
    write_tiny_config(tmp_path / "parts")
    cfg = _yaml(tmp_path / "x.yaml", "_base_: [parts/tiny.json]\nseed: 3\n")
    assert load_config(cfg).seed == 3


def test_package_bases_are_refused_from_yaml(tmp_path):
    cfg = _yaml(tmp_path / "x.yaml", "_base_: ['mmengine::foo.yaml']\n")
    with pytest.raises(ConfigError, match="names a package config"):
        load_config(cfg)


def test_a_base_cycle_is_reported_by_name_at_once(cli, tmp_path):
    _yaml(tmp_path / "a.yaml", "_base_: [b.yaml]\n")
    _yaml(tmp_path / "b.yaml", "_base_: [c.yaml]\n")
    _yaml(tmp_path / "c.yaml", "_base_: [a.yaml]\n")
    outcome, err = cli(["train", str(tmp_path / "a.yaml")])
    assert outcome == "error" and "_base_ cycle: a.yaml -> b.yaml -> c.yaml -> a.yaml" in err


def test_a_py_base_cycle_is_one_line(cli, tmp_path):
    (tmp_path / "a.py").write_text("_base_ = ['b.py']\n")
    (tmp_path / "b.py").write_text("_base_ = ['a.py']\n")
    outcome, err = cli(["train", str(tmp_path / "a.py")])
    assert outcome == "error" and "a.py" in err


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.timeout(120)  # a hang guard: expanding the 10^9 values would never end
def test_billion_laughs_ends_fast_with_an_error(cli, tmp_path):
    """The reader stops counting at 100,000 values (the message says so) instead of
    expanding all 10^9; how fast that is on this machine is not what is tested."""
    cfg = _yaml(tmp_path / "laughs.yaml", BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 1024
    outcome, err = cli(["train", str(cfg)])
    assert outcome == "error" and "more than 100,000 values" in err


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", "[" * 5000 + "]" * 5000),
        ("deep.yaml", "a: " + "[" * 200 + "]" * 200),
        ("list.yaml", "- 1\n- 2\n"),
        ("keys.yaml", "1: 2\n"),
        ("big.json", json.dumps({"seed": 0, "pad": "x" * (2 << 20)})),
        ("latin1.yaml", "seed: 0 # \xe9"),
        ("base.yaml", "_base_: 3\n"),
    ],
)
def test_malformed_data_configs_are_one_line(cli, tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1" if "latin1" in name else "utf-8"))
    outcome, _ = cli(["train", str(path)])
    assert outcome == "error"


# ---- --cfg-options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        "optimizer.lr=f(a,b)",
        "data.train.pipeline=[dict(type=RandomCrop,size=32)]",
        "seed=" + "[" * 50 + "]" * 50,
        "seed=((1,2)",
        "seed=)(",
    ],
)
def test_cfg_options_that_made_the_parser_recurse_are_one_line(cli, tmp_path, option):
    outcome, _ = cli(["train", "--cfg-options", option])
    assert outcome == "error"


def test_cfg_option_values_parse_like_mmengine():
    assert parse_cfg_options(["a=1", "b=x,y", "c=[1,(2,3)]", "d='q'", "e=None", "f=TRUE"]) == [
        ("a", 1), ("b", ["x", "y"]), ("c", [1, (2, 3)]), ("d", "q"), ("e", None), ("f", True)
    ]  # fmt: skip


# ---- config values with ranges --------------------------------------------------------------

BAD_VALUES = [
    ("seed=-1", "seed must be an integer in"),
    ("seed=99999999999999999999999", "seed must be an integer in"),
    ("data.split_seed=-3", "split_seed"),
    ("data.train.batch_size=100000000000", "batch_size must be an integer in"),
    ("train_cfg.max_epochs=10000000000", "max_epochs"),
    ("data.num_workers=100000", "num_workers"),
    ("data.test.tta_translate=-1", "tta_translate"),
    ("data.test.tta_translate=32", "tta_translate=32 must be smaller than the images"),
    ("optimizer.weight_decay=50", "weight_decay must be a number in"),
    ("optimizer.weight_decay=nan", "weight_decay"),
    ("optimizer.weight_decay=None", "weight_decay"),  # found by the fuzz profile
    ("optimizer.momentum=abc", "momentum"),
    ("param_scheduler.type=StepLR param_scheduler.step_size=0", "step_size"),
    ("param_scheduler.type=OneCycleLR param_scheduler.pct_start=1.5", "pct_start"),
    ("param_scheduler.type=ReduceLROnPlateau param_scheduler.factor=1.0", "factor"),
    ("param_scheduler.type=ReduceLROnPlateau param_scheduler.factor=2", "factor"),
    ("param_scheduler.min_lr=5", "min_lr=5 is above optimizer.lr"),
    ("data.root=[None]", "data.root must be None"),
    ("data.root=3", "data.root must be None"),
    ("data.mean=[0.5,0.5,0.5]", "data.mean has 3 value"),
    ("model.pretrained=nowhere.pt", "no such checkpoint file"),
    ("model.pretrained=[1]", "model.pretrained must be"),
    ("early_stopping.patience=-2", "patience"),
    ("lookahead.k=0", "lookahead.k"),
    ("clip_grad.norm_type=0", "clip_grad.norm_type must be"),
    ("clip_grad.foreach=True", "unknown config key"),
]


@pytest.mark.parametrize(("options", "pattern"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_out_of_range_values_are_refused_before_training(options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, options.split(" "))


def test_a_pretrained_file_that_is_not_a_checkpoint_is_refused(cli, tmp_path):
    (tmp_path / "weights.pt").write_text("not a checkpoint")
    outcome, err = cli(["train", "--cfg-options", f"model.pretrained={tmp_path / 'weights.pt'}"])
    assert outcome == "error" and "is not a PyTorch checkpoint" in err


def test_json_config_with_a_list_root_is_one_line(cli, tmp_path):
    """Found by the project's own hypothesis test: ``data.root: [None]`` crashed."""
    data = dict(TINY["data"], root=[None])
    path = write_tiny_config(tmp_path, data=data)
    outcome, err = cli(["train", str(path)])
    assert outcome == "error" and "data.root" in err


# ---- reports written atomically ------------------------------------------------------------


def test_a_full_disk_while_writing_the_test_report_keeps_the_old_one(
    cli, reference, tmp_path, monkeypatch
):
    run = _copy_run(reference, tmp_path)
    assert cli(["test", str(run)])[0] == "ran"
    before = (run / "test_report.json").read_bytes()
    assert json.loads(before)["samples"] > 0

    def full(path, write, **kwargs):
        def failing(f):
            write(f)
            raise OSError(errno.ENOSPC, "No space left on device")

        return atomic_write(path, failing, **kwargs)

    import cnnzoo.commands.test as commands

    monkeypatch.setattr(commands, "atomic_write", full)
    outcome, err = cli(["test", str(run)])
    assert outcome == "error" and "cannot write the test report" in err
    assert (run / "test_report.json").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
