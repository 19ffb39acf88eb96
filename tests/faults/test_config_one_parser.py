"""One parser for data configs: the YAML/JSON a user gives is read once, by cnnzoo, and the
object validated is the one that trains. These are the shapes that ran code when mmengine
re-read a checked file after rewriting its raw text (issue 19), and variants of them; each
must load cleanly or end in one line, and never run code."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmengine.config import Config
from PIL import Image

import cnnzoo.commands.train as train_command
import cnnzoo.config
from cnnzoo import schema
from cnnzoo.cli import main
from cnnzoo.config import load_config
from cnnzoo.config.reader import merge, read_config
from cnnzoo.errors import ConfigError
from fuzzing import examples

QUICKSTART_BASE = "cnnzoo::quickstart_lenet5_digits.py"
REAL_VALIDATE = cnnzoo.config.validate_config


def _evil_py(folder: Path, marker: Path) -> Path:
    """A .py config that writes ``marker`` when it runs."""
    path = folder / "evil.py"
    path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    return path


def _dump(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))  # JSON text is YAML too
    return path


def _one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_base_through_file_dirname_is_refused_not_rewritten(tmp_path, capsys, suffix):
    """A literal '{{ fileDirname }}' folder holds a harmless decoy; the real ./up.* bases on a
    .py file. mmengine's rewrite would follow the real one after cnnzoo checked the decoy."""
    marker = tmp_path / "marker"
    _evil_py(tmp_path, marker)
    decoy = tmp_path / "{{ fileDirname }}"
    decoy.mkdir()
    _dump(decoy / f"up{suffix}", {"_base_": [QUICKSTART_BASE]})
    _dump(tmp_path / f"up{suffix}", {"_base_": ["./evil.py"]})
    top = _dump(tmp_path / f"top{suffix}", {"_base_": [f"{{{{ fileDirname }}}}/up{suffix}"]})
    err = _one_line(capsys, main(["config", str(top)]))
    assert "no mmengine {{ }} substitution" in err
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_base_through_an_environment_variable_is_refused(tmp_path, capsys, suffix, monkeypatch):
    monkeypatch.delenv("CNNZOO_UNSET_VAR", raising=False)
    marker = tmp_path / "marker"
    _evil_py(tmp_path, marker)
    _dump(tmp_path / f"real{suffix}", {"_base_": ["./evil.py"]})
    _dump(tmp_path / f"{{{{$CNNZOO_UNSET_VAR:real}}}}{suffix}", {"_base_": [QUICKSTART_BASE]})
    top = _dump(tmp_path / f"top{suffix}", {"_base_": [f"{{{{$CNNZOO_UNSET_VAR:real}}}}{suffix}"]})
    err = _one_line(capsys, main(["train", str(top)]))
    assert "CNNZOO_UNSET_VAR" in err and "substitution" in err
    assert not marker.exists()


@pytest.mark.parametrize(
    "value",
    [
        "{{$CNNZOO_UNSET_VAR:evil\\.json|x}}",  # the default is also used as a regular expression
        "{{$CNNZOO_UNSET_VAR:.*}}",
        "{{ fileBasename }}",
        "{{ fileExtname }}x",
        "pre {{\n_base_ }} post",
    ],
)
def test_any_substitution_in_a_value_is_refused(tmp_path, capsys, value):
    marker = tmp_path / "marker"
    _evil_py(tmp_path, marker)
    top = _dump(tmp_path / "top.json", {"_base_": [QUICKSTART_BASE], "work_dir": value})
    err = _one_line(capsys, main(["config", str(top)]))
    assert "work_dir holds" in err
    assert not marker.exists()


@pytest.mark.parametrize("with_variable", [True, False])
def test_a_folder_name_cannot_write_lines_into_a_config(tmp_path, capsys, with_variable):
    """A YAML with no _base_ in a folder whose name holds a quote and line breaks: substituting
    {{ fileDirname }} into the raw text used to write a _base_ line naming a .py file."""
    marker = tmp_path / "marker"
    folder = tmp_path / "a'\n_base_: ['evil.py']\nx: '"
    folder.mkdir()
    _evil_py(folder, marker)
    text = f"_base_: ['{QUICKSTART_BASE}']\n"
    if with_variable:
        text += "work_dir: '{{ fileDirname }}/runs'\n"
    (folder / "top.yaml").write_text(text)
    code = main(["config", str(folder / "top.yaml")])
    if with_variable:
        _one_line(capsys, code)
    else:
        assert code == 0  # the folder's name is only a name: the config loads as written
        assert "work_dir: runs" in capsys.readouterr().out
    assert not marker.exists()


def test_a_data_config_never_reaches_mmengines_reader(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a data config was given to Config.fromfile")

    monkeypatch.setattr(Config, "fromfile", staticmethod(refuse))
    (tmp_path / "base.yaml").write_text(f"_base_: ['{QUICKSTART_BASE}']\nseed: 3\n")
    (tmp_path / "top.json").write_text(json.dumps({"_base_": ["base.yaml"], "seed": 4}))
    assert load_config(tmp_path / "top.json").seed == 4


@pytest.mark.parametrize(
    ("name", "text", "key"),
    [
        ("dup.yaml", "seed: 1\nseed: 2\n", "'seed'"),
        ("nested.yaml", "optimizer:\n  lr: 0.1\n  lr: 0.2\n", "'lr'"),
        ("dup.json", '{"seed": 1, "seed": 2}', "'seed'"),
        ("nested.json", '{"data": {"type": "digits", "type": "mnist"}}', "'type'"),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path, capsys, name, text, key):
    (tmp_path / name).write_text(text)
    err = _one_line(capsys, main(["config", str(tmp_path / name)]))
    assert f"key {key} is given twice" in err


def test_yaml_merge_keys_may_still_override(tmp_path):
    (tmp_path / "a.yaml").write_text(
        f"_base_: ['{QUICKSTART_BASE}']\nbase: &b {{lr: 0.1, type: SGD}}\n"
        "optimizer:\n  <<: *b\n  lr: 0.2\n  _delete_: true\n"
    )
    with pytest.raises(ConfigError, match="unknown config key 'base'"):
        load_config(tmp_path / "a.yaml")  # parsed (no duplicate refused), then validated


def test_python_configs_base_on_shipped_and_data_configs_without_patching_mmengine(tmp_path):
    before = Config.__dict__["_get_cfg_path"]
    (tmp_path / "part.yaml").write_text(f"_base_: ['{QUICKSTART_BASE}']\noptimizer: {{lr: 0.05}}\n")
    (tmp_path / "exp.py").write_text(
        "_base_ = ['./part.yaml']\nseed = _base_.seed + 7\nmodel = dict(drop_rate=0.25)\n"
    )
    (tmp_path / "top.py").write_text("_base_ = ['./exp.py']\n")
    cfg = load_config(tmp_path / "top.py")
    assert (cfg.seed, cfg.model.drop_rate, cfg.model.type, cfg.optimizer.lr) == (
        7,
        0.25,
        "lenet5",
        0.05,
    )
    assert Config.__dict__["_get_cfg_path"] is before


def test_bases_of_one_file_may_not_share_keys(tmp_path):
    (tmp_path / "a.yaml").write_text("seed: 1\n")
    (tmp_path / "b.yaml").write_text("seed: 2\n")
    (tmp_path / "top.yaml").write_text("_base_: [a.yaml, b.yaml]\n")
    with pytest.raises(ConfigError, match="bases both set seed"):
        read_config(tmp_path / "top.yaml")


def test_nan_and_unknown_monitors_are_refused_with_the_key_and_what_to_do():
    with pytest.raises(ConfigError, match=r"model.drop_rate must be a finite number, got nan"):
        load_config(None, ["model.drop_rate=nan"])
    with pytest.raises(
        ConfigError, match=r"early_stopping.monitor='val/bogus' is not a metric.*val/top1"
    ):
        load_config(None, ["early_stopping.monitor=val/bogus"])
    with pytest.raises(ConfigError, match=r"checkpoint.monitor='val/top5x'"):
        load_config(None, ["checkpoint.monitor=val/top5x"])
    with pytest.raises(ConfigError, match=r"ema.decay must be a number in \(0, 1\)"):
        load_config(None, ["ema.decay=inf"])
    assert load_config(None, ["ema.decay=0.9", "checkpoint.monitor=val_ema/top5"]).ema.decay == 0.9


# --- the merge, against mmengine's own on plain files -------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d"])
LEAVES = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.text("xy", max_size=2))
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)
DICTS = st.dictionaries(KEYS, VALUES, max_size=4)


def _with_deletes(draw, value, base):
    """``value`` with ``_delete_=True`` on some dicts that replace a dict of ``base``."""
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        v = _with_deletes(draw, v, base.get(k) if isinstance(base, dict) else None)
        if isinstance(v, dict) and isinstance(base, dict) and isinstance(base.get(k), dict):
            if draw(st.booleans()):
                v = {**v, "_delete_": True}
        out[k] = v
    return out


@st.composite
def trees(draw):
    """Two bases that share no top-level key, and a child on top of them."""
    first = draw(DICTS)
    second = {k: v for k, v in draw(DICTS).items() if k not in first}
    return first, second, _with_deletes(draw, draw(DICTS), {**first, **second})


def _no_delete(value):
    if isinstance(value, dict):
        return {k: _no_delete(v) for k, v in value.items() if k != "_delete_"}
    if isinstance(value, list):
        return [_no_delete(v) for v in value]
    return value


@pytest.mark.fuzz
@settings(max_examples=examples(60))
@given(tree=trees(), suffixes=st.tuples(*[st.sampled_from([".yaml", ".json"])] * 3))
def test_the_merge_is_mmengines_on_plain_files(tmp_path_factory, tree, suffixes):
    folder = tmp_path_factory.mktemp("tree")
    first, second, child = tree
    names = [f"first{suffixes[0]}", f"second{suffixes[1]}", f"child{suffixes[2]}"]
    _dump(folder / names[0], first)
    _dump(folder / names[1], second)
    _dump(folder / names[2], {"_base_": names[:2], **child})
    try:
        theirs = Config.fromfile(str(folder / names[2])).to_dict()
    except TypeError:  # a dict over a value of the base without _delete_: both refuse it
        with pytest.raises(ConfigError, match="add _delete_=True"):
            read_config(folder / names[2])
        return
    assert read_config(folder / names[2]) == _no_delete(theirs)


@pytest.mark.fuzz
@settings(max_examples=examples(40))
@given(
    seed=st.integers(0, 2**32 - 1),
    patience=st.one_of(st.none(), st.integers(0, 50)),
    lr=st.floats(1e-5, 1.0),
    batch=st.integers(1, 256),
    delete_loss=st.booleans(),
)
def test_the_validated_object_is_the_one_train_receives(
    tmp_path_factory, seed, patience, lr, batch, delete_loss
):
    folder = tmp_path_factory.mktemp("cfg")
    (folder / "base.json").write_text(
        json.dumps({"_base_": [QUICKSTART_BASE], "optimizer": {"lr": lr}})
    )
    child = {"_base_": ["base.json"], "seed": seed, "data": {"train": {"batch_size": batch}}}
    if delete_loss:
        child["loss"] = {"_delete_": True, "type": "cross_entropy", "label_smoothing": 0.1}
    (folder / "top.yaml").write_text(json.dumps(child))
    options = [] if patience is None else ["--cfg-options", f"early_stopping.patience={patience}"]
    received, validated = [], []

    def spy(cfg):
        REAL_VALIDATE(cfg)
        validated.append(cfg)

    with pytest.MonkeyPatch.context() as patch:  # undone after each example
        patch.setattr(cnnzoo.config, "validate_config", spy)
        patch.setattr(train_command, "train", lambda cfg, **kw: received.append(cfg))
        assert main(["train", str(folder / "top.yaml"), *options]) == 0
    assert received[0] is validated[0]
    cfg = received[0]
    assert (cfg.seed, cfg.optimizer.lr, cfg.data.train.batch_size) == (seed, lr, batch)
    assert cfg.loss.label_smoothing == (0.1 if delete_loss else 0.0)
    assert (cfg.early_stopping is None) == (patience is None)
    assert set(cfg) == set(schema.TOP_LEVEL)


def test_merge_refuses_a_dict_over_a_value_unless_deleted():
    with pytest.raises(ConfigError, match="add _delete_=True"):
        merge({"early_stopping": {"patience": 3}}, {"early_stopping": None}, where="x")
    assert merge({"e": {"_delete_": True, "p": 3}}, {"e": None}, where="x") == {"e": {"p": 3}}


def test_external_bases_stay_refused_unless_allowed(tmp_path, monkeypatch):
    (tmp_path / "outside.yaml").write_text(f"_base_: ['{QUICKSTART_BASE}']\nseed: 5\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "top.yaml").write_text("_base_: ['../outside.yaml']\n")
    monkeypatch.delenv("CNNZOO_ALLOW_EXTERNAL_BASE", raising=False)
    with pytest.raises(ConfigError, match="outside the config's folder"):
        load_config(inner / "top.yaml")
    monkeypatch.setenv("CNNZOO_ALLOW_EXTERNAL_BASE", "1")
    assert load_config(inner / "top.yaml").seed == 5
    assert os.environ["CNNZOO_ALLOW_EXTERNAL_BASE"] == "1"


def test_each_file_of_a_config_tree_is_read_once(tmp_path, monkeypatch):
    """One parser, one read: neither cnnzoo nor mmengine opens a config file a second time
    (a file that changed between two reads could be validated in one form and run in another)."""
    import builtins
    import pathlib

    (tmp_path / "base.yaml").write_text(f"_base_: ['{QUICKSTART_BASE}']\nseed: 3\n")
    (tmp_path / "mid.json").write_text(json.dumps({"_base_": ["base.yaml"], "seed": 4}))
    (tmp_path / "top.py").write_text("_base_ = ['./mid.json']\nseed = _base_.seed + 1\n")
    reads: list[str] = []
    real_open, real_read_text = builtins.open, pathlib.Path.read_text

    def counting_open(file, *args, **kwargs):
        reads.append(str(file))
        return real_open(file, *args, **kwargs)

    def counting_read_text(self, *args, **kwargs):
        reads.append(str(self))
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    monkeypatch.setattr(pathlib.Path, "read_text", counting_read_text)
    assert load_config(tmp_path / "top.py").seed == 5
    ours = [r for r in reads if r.startswith(str(tmp_path))]
    assert sorted(ours) == sorted(str(tmp_path / n) for n in ("base.yaml", "mid.json", "top.py"))


@pytest.mark.parametrize("where", ["config", "base"])
def test_a_fifo_config_is_refused_without_blocking(tmp_path, capsys, where):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    target = fifo
    if where == "base":
        target = tmp_path / "top.yaml"
        target.write_text("_base_: [fifo.yaml]\n")
    err = _one_line(capsys, main(["config", str(target)]))
    assert "not a regular file" in err


@pytest.mark.parametrize("length", [300, 5000])
@pytest.mark.parametrize(
    "argv",
    [["config", "{p}"], ["train", "{p}"], ["train", "--resume", "{p}"], ["runs", "{p}"]],
    ids=["config", "train", "resume", "runs"],
)
def test_a_path_too_long_for_the_file_system_is_one_line(tmp_path, capsys, argv, length):
    path = str(tmp_path / ("p" * length))
    err = _one_line(capsys, main([a.format(p=path) for a in argv]))
    assert f"a path of {len(path):,} characters is too long" in err


@pytest.mark.parametrize("length", [300, 5000])
@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "{run}", "{p}"],
        ["predict", "{run}", "{image}", "--output", "{p}.csv"],
        ["test", "{p}"],
        ["export", "{run}", "--output", "{p}.pt"],
    ],
    ids=["predict image", "predict output", "test", "export output"],
)
def test_a_path_too_long_in_a_command_on_a_run_is_one_line(
    reference, tmp_path, capsys, argv, length
):
    image = tmp_path / "digit.png"
    Image.new("L", (32, 32)).save(image)
    path = str(tmp_path / ("p" * length))
    given = [a.format(p=path, run=reference, image=image) for a in argv]
    err = _one_line(capsys, main(given))
    assert "too long" in err, err


def test_a_long_data_root_names_a_report_the_file_system_takes(reference, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    root = tmp_path / ("d" * 250)  # the digits ship with scikit-learn: any root tests them
    root.mkdir()
    assert main(["test", str(run), "--data", str(root)]) == 0, capsys.readouterr().err
    (report,) = run.glob("test_report-*.json")
    assert len(report.name) < 80 and report.name.startswith("test_report-" + "d" * 40 + "-")
