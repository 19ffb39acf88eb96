"""Checkpoints under faults and bad input: refused pickles, truncated files, other models,
full disks, NaN losses. Each ends with one clear line (exit 2) or a correct run."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from faultkit import (
    STEPS_PER_EPOCH,
    assert_same_run,
    cnnzoo,
    epoch_of,
    only_run,
    poisoned,
    write_tiny_config,
)

import cnnzoo as zoo
import cnnzoo.engine.trainer as trainer
from cnnzoo.cli import main
from cnnzoo.config import config_hash, load_config
from cnnzoo.engine import load_checkpoint, load_trained, save_checkpoint
from cnnzoo.engine.checkpoint import FORMAT_VERSION, latest_run
from cnnzoo.errors import CheckpointError

SRC = Path(zoo.__file__).resolve().parent


def one_line_error(capsys, code: int, *expected: str) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("cnnzoo "), err
    for text in expected:
        assert text in err[0], err[0]
    return err[0]


def copy_run(run: Path, work: Path, stamp: str = "20260101-000000") -> Path:
    dest = work / "tiny" / stamp
    shutil.copytree(run, dest)
    return dest


# ---- weights_only everywhere --------------------------------------------------------------


def test_every_torch_load_in_the_package_is_weights_only():
    loads, bare_pickle = [], []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            name = f"{getattr(owner, 'id', '?')}.{node.func.attr}"
            if name == "torch.load":
                kw = {k.arg: k.value for k in node.keywords}
                ok = (
                    isinstance(kw.get("weights_only"), ast.Constant)
                    and kw["weights_only"].value is True
                )
                loads.append((f"{path.name}:{node.lineno}", ok))
            if name in ("pickle.load", "pickle.loads"):
                bare_pickle.append(f"{path.name}:{node.lineno}")
    assert loads, "no torch.load found: has the package moved?"
    assert all(ok for _, ok in loads), [where for where, ok in loads if not ok]
    assert not bare_pickle, f"unrestricted pickle loads: {bare_pickle}"


class Payload:
    """Runs code when unpickled: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_needing_pickled_objects_is_refused_everywhere(reference, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    run = copy_run(reference, tmp_path / "runs")
    evil = load_checkpoint(run / "checkpoints" / "last.pt")
    evil["history"].append(Payload(marker))
    for name in ("last.pt", "best.pt"):
        torch.save(evil, run / "checkpoints" / name)
    plain = tmp_path / "weights.pt"
    torch.save({"model": evil["model"], "extra": Payload(marker)}, plain)
    cfg = write_tiny_config(tmp_path)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (8, 8), 128).save(image)

    with pytest.raises(CheckpointError, match="refused to load .*pickled Python objects"):
        load_trained(run)
    one_line_error(capsys, main(["test", str(run)]), "refused to load", "best.pt")
    one_line_error(capsys, main(["predict", str(run), str(image)]), "refused to load")
    one_line_error(
        capsys,
        main(["train", str(cfg), "--resume", str(run), "--quiet"]),
        "refused to load",
        "last.pt",
    )
    one_line_error(
        capsys,
        main(
            [
                "train",
                str(cfg),
                "--cfg-options",
                f"model.pretrained={plain}",
                "--quiet",
                "--work-dir",
                str(tmp_path / "w"),
            ]
        ),
        "refused to load",
        str(plain),
    )
    assert not marker.exists(), "a checkpoint ran code"


# ---- truncated checkpoints, versions, config hash -----------------------------------------


@pytest.mark.parametrize("damage", ["half", "empty", "garbage", "no-end-record"])
def test_a_damaged_last_is_never_taken_as_the_latest(reference, tmp_path, capsys, damage):
    work = tmp_path / "runs"
    older = copy_run(reference, work, "20260101-000000")
    newer = copy_run(reference, work, "20260102-000000")
    last = newer / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(
        {
            "half": data[: len(data) // 2],
            "empty": b"",
            "garbage": b"\x80\x02}q\x00" * 64,
            "no-end-record": data[:-22],
        }[damage]
    )
    with pytest.raises(CheckpointError, match="corrupt or truncated|empty"):
        load_checkpoint(last)
    assert latest_run(work / "tiny") == older
    assert "passing over" in capsys.readouterr().out
    cfg = write_tiny_config(tmp_path)
    one_line_error(capsys, main(["train", str(cfg), "--resume", str(newer), "--quiet"]), str(last))


def test_checkpoints_carry_format_version_and_config_hash(reference, tmp_path):
    ckpt = load_checkpoint(reference / "checkpoints" / "last.pt")
    assert ckpt["format_version"] == FORMAT_VERSION
    assert ckpt["config_hash"] == config_hash(load_config(reference / "config.yaml"))
    future = tmp_path / "future.pt"
    save_checkpoint({**ckpt, "format_version": FORMAT_VERSION + 1}, future)
    with pytest.raises(CheckpointError, match="newer than this cnnzoo understands.*upgrade"):
        load_trained(future)


# ---- checkpoints of other models ----------------------------------------------------------


@pytest.mark.parametrize(
    "options, expected",
    [
        (
            ["loss.type=mse", "model.num_classes=1", "checkpoint.monitor=val/mae"],
            "shape mismatches: fc.weight: checkpoint (10, 84) vs model (1, 84)",
        ),
        (
            ["data.in_chans=3", "model.in_chans=3"],
            "c1.weight: checkpoint (6, 1, 5, 5) vs model (6, 3, 5, 5)",
        ),
        (["model.type=resnet20"], "missing keys: conv1.weight"),
    ],
    ids=["class-count", "in-chans", "model"],
)
def test_resuming_with_another_model_lists_the_mismatched_keys(
    reference, tmp_path, capsys, options, expected
):
    run = copy_run(reference, tmp_path / "runs")
    before = (run / "checkpoints" / "last.pt").read_bytes()
    cfg = write_tiny_config(tmp_path)
    code = main(["train", str(cfg), "--resume", str(run), "--quiet", "--cfg-options", *options])
    one_line_error(capsys, code, "does not fit model", expected)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_pretrained_weights_of_another_model_are_refused_with_the_keys(tmp_path, capsys):
    path = tmp_path / "resnet20.pt"
    torch.save(zoo.create_model("resnet20", num_classes=10, in_chans=1).state_dict(), path)
    with pytest.raises(
        CheckpointError, match=r"missing keys: c1\.weight.*unexpected keys: conv1\.weight"
    ):
        zoo.create_model("lenet5", pretrained=str(path))
    cfg = write_tiny_config(tmp_path)
    code = main(
        [
            "train",
            str(cfg),
            "--cfg-options",
            f"model.pretrained={path}",
            "--work-dir",
            str(tmp_path / "w"),
        ]
    )
    one_line_error(capsys, code, "does not fit model lenet5", "missing keys")


@pytest.mark.parametrize("library", ["torchvision", "timm"])
def test_foreign_checkpoints_with_missing_keys_are_refused_not_partly_loaded(tmp_path, library):
    foreign = (
        torchvision.models.resnet18(num_classes=1000)
        if library == "torchvision"
        else timm.create_model("resnet18", pretrained=False)
    ).state_dict()
    full = tmp_path / "full.pt"
    torch.save(foreign, full)
    model = zoo.create_model(
        "resnet18", num_classes=1000, pretrained=str(full)
    )  # the whole file loads
    assert torch.equal(next(iter(model.state_dict().values())), next(iter(foreign.values())))
    dropped = [k for k in foreign if k.startswith("layer4.1.")]
    cut = tmp_path / "cut.pt"
    torch.save({k: v for k, v in foreign.items() if k not in dropped}, cut)
    counters = [
        k for k in dropped if k.endswith("num_batches_tracked")
    ]  # (pre-0.4.1 files lack them)
    with pytest.raises(
        CheckpointError, match=rf"{len(dropped) - len(counters)} missing keys: .*layer4\.1\."
    ):
        zoo.create_model("resnet18", num_classes=1000, pretrained=str(cut))


# ---- full disk, unwritable folders ------------------------------------------------------------


def test_full_disk_stops_with_one_line_and_keeps_the_previous_checkpoint(reference, tmp_path):
    cfg = write_tiny_config(tmp_path)
    args = ["train", str(cfg), "--work-dir", str(tmp_path / "runs"), "--quiet"]
    done = cnnzoo(args, tmp_path / "cache", fault="full:2")
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert (
        err[-1].startswith("cnnzoo train: error: could not write checkpoint")
        and "intact" in err[-1]
    ), err
    run = only_run(tmp_path / "runs")
    assert epoch_of(run) == 1  # the previous checkpoint, whole
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    done = cnnzoo(args + ["--resume"], tmp_path / "cache")  # space is back: resume
    assert done.returncode == 0, done.stderr
    assert_same_run(reference, run)


def test_unwritable_work_dir_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the work dir should be")
    cfg = write_tiny_config(tmp_path)
    code = main(["train", str(cfg), "--work-dir", str(blocker), "--quiet"])
    one_line_error(capsys, code, "cannot create run directory", str(blocker))


# ---- NaN and Inf losses -------------------------------------------------------------------------


def poison_step(monkeypatch, epoch: int, step: int, value: float) -> None:
    monkeypatch.setattr(trainer, "build_data", poisoned(trainer.build_data, epoch, step, value))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_loss_stops_naming_epoch_and_step_and_keeps_last_good(
    tmp_path, capsys, monkeypatch, value
):
    poison_step(monkeypatch, 2, 3, value)
    cfg = write_tiny_config(tmp_path, train_cfg=dict(max_epochs=2))
    code = main(["train", str(cfg), "--work-dir", str(tmp_path / "runs"), "--quiet"])
    line = one_line_error(
        capsys, code, f"epoch 2, step 3/{STEPS_PER_EPOCH}", "last good checkpoint", "(epoch 1)"
    )
    assert "nan" in line.lower() or "inf" in line.lower()
    ckpt = load_checkpoint(only_run(tmp_path / "runs") / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_nan_policy_skip_skips_the_step_lowers_the_lr_and_finishes(tmp_path, capsys, monkeypatch):
    poison_step(monkeypatch, 2, 3, float("nan"))
    cfg = write_tiny_config(
        tmp_path, nan_policy="skip", param_scheduler=None, train_cfg=dict(max_epochs=2)
    )
    assert main(["train", str(cfg), "--work-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    assert "step skipped, learning rate halved" in capsys.readouterr().out
    ckpt = load_checkpoint(only_run(tmp_path / "runs") / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 2 * STEPS_PER_EPOCH - 1
    assert [row["lr"] for row in ckpt["history"]] == pytest.approx([0.003, 0.0015])
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
