"""Weights and export sidecars read back from disk are untrusted (issue 21): a checkpoint whose
weights are NaN, infinite or complex, a sidecar that lacks fields or holds the wrong types, a
pretrained file that is not a file at all, and an output folder that cannot be made. Each was
accepted silently or a traceback; each is one line and exit 2 now."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from faultkit import export_sidecar, write_tiny_config, write_torchscript
from PIL import Image

from cnnzoo import create_model
from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.export.core import load_exported, sidecar_path


def _one_line(capsys, code: int, command: str, needle: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"cnnzoo {command}: error: "), lines
    assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "digit.png"
    Image.fromarray((torch.rand(32, 32) * 255).byte().numpy(), mode="L").save(path)
    return path


def _poisoned_run(reference: Path, tmp_path: Path, poison) -> Path:
    """A copy of the reference run whose checkpoints' first weight is replaced by ``poison(w)``."""
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    for path in (run / "checkpoints").glob("*.pt"):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
        ckpt["model"][name] = poison(ckpt["model"][name])
        torch.save(ckpt, path)
    return run


POISONS = {
    "NaN": lambda w: torch.full_like(w, float("nan")),
    "inf": lambda w: torch.full_like(w, float("inf")),
}


@pytest.mark.parametrize("command", ["test", "predict"])
@pytest.mark.parametrize("poison", list(POISONS))
def test_a_checkpoint_of_non_finite_weights_is_refused(
    reference, tmp_path, capsys, image, command, poison
):
    run = _poisoned_run(reference, tmp_path, POISONS[poison])
    argv = [command, str(run)] + ([str(image)] if command == "predict" else [])
    line = _one_line(capsys, main(argv), command, "NaN or infinite weights")
    assert "another checkpoint" in line


@pytest.mark.parametrize("command", ["test", "predict"])
def test_a_checkpoint_of_complex_weights_is_refused_not_cast(
    reference, tmp_path, capsys, image, command
):
    run = _poisoned_run(reference, tmp_path, lambda w: torch.complex(w, w))
    argv = [command, str(run)] + ([str(image)] if command == "predict" else [])
    _one_line(capsys, main(argv), command, "complex-valued weights")


def test_pretrained_weights_from_a_proc_file_are_one_line(cli, tmp_path):
    with pytest.raises(CnnzooError) as e:
        create_model("lenet5", pretrained="/proc/self/mem")
    assert "\n" not in str(e.value) and "/proc/self/mem" in str(e.value)
    config = write_tiny_config(tmp_path)
    outcome, err = cli(["train", str(config), "--cfg-options", "model.pretrained=/proc/self/mem"])
    assert outcome == "error" and "/proc/self/mem" in err, err


def test_explain_into_a_folder_that_cannot_be_made_is_one_line(reference, capsys, image):
    _one_line(
        capsys,
        main(["explain", str(reference), str(image), "--output", "/proc/x"]),
        "explain",
        "/proc/x",
    )


# --- export sidecars ------------------------------------------------------------------------

SIDECAR = export_sidecar(32)
DAMAGED_SIDECARS = {
    "no class_names": ({k: v for k, v in SIDECAR.items() if k != "class_names"}, "class_names"),
    "no mean": ({k: v for k, v in SIDECAR.items() if k != "mean"}, "mean"),
    "class_names not a list": ({**SIDECAR, "class_names": "ab"}, "class_names"),
    "class_names of another length": ({**SIDECAR, "class_names": ["a", "b", "c"]}, "class_names"),
    "a string mean": ({**SIDECAR, "mean": "0.5"}, "mean"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return write_torchscript(tmp_path_factory.mktemp("export"), 32)


def test_the_intact_sidecar_predicts(exported, image, capsys):
    sidecar_path(exported).write_text(json.dumps(SIDECAR))
    assert main(["predict", str(exported), str(image)]) == 0
    assert "digit.png" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("damage", list(DAMAGED_SIDECARS))
def test_predict_on_an_export_with_a_damaged_sidecar_is_one_line(exported, image, capsys, damage):
    sidecar, field = DAMAGED_SIDECARS[damage]
    sidecar_path(exported).write_text(json.dumps(sidecar))
    with pytest.raises(CnnzooError, match=field):
        load_exported(exported)
    _one_line(capsys, main(["predict", str(exported), str(image)]), "predict", field)
