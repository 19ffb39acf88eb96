"""Optional dependencies: a feature whose extra is not installed says so in one line naming
the extra (``pip install "cnnzoo[export]"``), and the README lists every extra."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.errors import MissingExtraError
from cnnzoo.export import export_model
from cnnzoo.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("module", EXTRAS["export"])
def test_onnx_export_without_the_export_extra_is_one_line(module, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    assert main(["export", str(tmp_path), "--format", "onnx"]) == 2
    err = _one_error_line(capsys)
    assert f"needs {module}" in err and 'pip install "cnnzoo[export]"' in err
    with pytest.raises(MissingExtraError, match=r'pip install "cnnzoo\[export\]"'):
        export_model(cnnzoo.create_model("lenet5"), torch.randn(2, 1, 32, 32), tmp_path / "m.onnx")


def test_explain_without_captum_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "captum", None)
    assert main(["explain", str(tmp_path), str(tmp_path / "x.png")]) == 2
    assert 'needs captum: pip install "cnnzoo[explain]"' in _one_error_line(capsys)


def test_hub_and_safetensors_without_the_hub_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(MissingExtraError, match=r'huggingface_hub: pip install "cnnzoo\[hub\]"'):
        cnnzoo.create_model("lenet5", pretrained="hf-hub:timm/lenet.x")
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"\0" * 16)
    with pytest.raises(MissingExtraError, match=r'safetensors: pip install "cnnzoo\[hub\]"'):
        cnnzoo.create_model("lenet5", pretrained=str(weights))


def test_the_extras_are_the_packages_and_the_readme_lists_them():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        packages = [re.split(r"[<>=\[ ]", p)[0].replace("-", "_") for p in declared[extra]]
        assert sorted(packages) == sorted(modules)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Optional extras", 1)[1].split("\n## ", 1)[0]
    for extra in EXTRAS:
        assert f'pip install "cnnzoo[{extra}]"' in section
