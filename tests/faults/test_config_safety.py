"""YAML and JSON configs are plain data (the safe choice for configs from elsewhere);
.py configs are code and run as code, as in mmengine."""

from __future__ import annotations

import json

import pytest

from cnnzoo.config import load_config
from cnnzoo.errors import ConfigError

TAGGED = '!!python/object/apply:os.system ["touch {marker}"]'


@pytest.mark.parametrize("where", ["file", "base"])
def test_yaml_configs_cannot_run_code(tmp_path, where):
    marker = tmp_path / "code-ran"
    evil = f"optimizer: {TAGGED.format(marker=marker)}\n"
    if where == "file":
        path = tmp_path / "evil.yaml"
        path.write_text(evil)
    else:
        (tmp_path / "base.yaml").write_text(evil)
        path = tmp_path / "child.yaml"
        path.write_text("_base_: ['./base.yaml']\ntrain_cfg: {max_epochs: 1}\n")
    with pytest.raises(
        ConfigError, match="refused: could not determine a constructor.*plain data only"
    ):
        load_config(path)
    assert not marker.exists()


def test_yaml_and_json_data_configs_load(tmp_path):
    base = load_config(None).to_dict()
    (tmp_path / "a.json").write_text(json.dumps(base))
    (tmp_path / "b.yaml").write_text("_base_: ['./a.json']\noptimizer: {lr: 0.01}\n")
    cfg = load_config(tmp_path / "b.yaml")
    assert cfg.optimizer.lr == 0.01 and cfg.model.type == base["model"]["type"]


def test_python_configs_run_as_code(tmp_path):
    """Documented behaviour (README): a .py config is executed when loaded."""
    marker = tmp_path / "ran"
    path = tmp_path / "code.py"
    path.write_text(
        f"_base_ = ['{load_config(None).filename}']\nimport pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    )
    load_config(path)
    assert marker.exists()
