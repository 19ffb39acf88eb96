"""Paths from configs and the command line never make cnnzoo write outside the run
directory the user chose (besides its cache, ``$CNNZOO_CACHE``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from faultkit import write_tiny_config
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.config import dump_config, load_config
from cnnzoo.engine import save_checkpoint
from cnnzoo.engine.callbacks import write_metrics_csv


def tree(root: Path, skip: Path | None = None) -> dict[str, int]:
    """Every file under ``root`` (but ``skip``) with its modification time."""
    return {
        str(p): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and not (skip and skip in p.parents)
    }


def test_train_test_predict_write_only_inside_the_run_directory(tmp_path, monkeypatch, capsys):
    home, cwd, cache = tmp_path / "home", tmp_path / "cwd", tmp_path / "cache"
    for d in (home, cwd):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CNNZOO_CACHE", str(cache))
    monkeypatch.chdir(cwd)
    cfg = write_tiny_config(tmp_path / "cfg", train_cfg=dict(max_epochs=1))
    image = tmp_path / "digit.png"
    Image.new("L", (8, 8), 200).save(image)
    before = tree(tmp_path, skip=cache)

    assert main(["train", str(cfg), "--work-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    run = next((tmp_path / "runs" / "tiny").iterdir())
    assert main(["test", str(run), "--quiet"]) == 0
    assert main(["predict", str(run), str(image)]) == 0
    after = tree(tmp_path, skip=cache)
    changed = [p for p in after if before.get(p) != after[p]]
    outside = [p for p in changed if run not in Path(p).parents]
    assert changed and not outside, outside
    capsys.readouterr()


@pytest.mark.parametrize("name", ["-.json", "..a.json", "config.py"])
def test_config_file_names_cannot_lead_runs_out_of_the_work_dir(cli, tmp_path, name):
    """Run folders are named after the config file (a run's own config.py: after the folder
    two levels up, which for ./config.py is outside any run); each stays in the work dir."""
    cfg = write_tiny_config(tmp_path / "cfgs")
    if name == "config.py":
        dump_config(load_config(cfg), tmp_path / name)  # the cli runs in tmp_path
        arg = name
    else:
        arg = str(cfg.rename(cfg.with_name(name)))
    work = tmp_path / "deep" / "work"
    outcome, err = cli(["train", arg, "--work-dir", str(work), "--quiet"])
    assert outcome == "ran", err
    runs = list((tmp_path / "deep").rglob("checkpoints"))
    assert len(runs) == 1 and runs[0].parent.parent.parent == work, runs


def test_work_dir_with_a_tilde_means_the_home_folder(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    outcome, err = cli(
        ["train", str(write_tiny_config(tmp_path)), "--cfg-options", "work_dir=~/runs", "--quiet"]
    )
    assert outcome == "ran", err
    assert list((tmp_path / "home" / "runs" / "tiny").iterdir())
    assert not (tmp_path / "~").exists()


def test_writes_replace_a_planted_symlink_not_its_target(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    targets = [run / "checkpoints" / "last.pt", run / "metrics.csv", run / "config.yaml"]
    for path in targets:
        path.symlink_to(outside)
    save_checkpoint({"epoch": 1, "w": torch.zeros(2)}, targets[0])
    write_metrics_csv(targets[1], [{"epoch": 1, "val/top1": 50.0}])
    dump_config(load_config(None), targets[2])
    assert outside.read_text() == "precious"
    assert not any(p.is_symlink() for p in targets)


def test_the_data_root_is_only_read(cli, tmp_path):
    root = tmp_path / "data"
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (32, 32), (40 * i, 80, 120)).save(root / split / c / f"{i}.png")
    os.chmod(root, 0o755)
    before = tree(root)
    model = "model.type=lenet5 model.num_classes=2 model.in_chans=3".split()
    outcome, err = cli(["train", "--work-dir", str(tmp_path / "runs"), "--quiet", "--cfg-options",
                        "data.type=imagefolder", f"data.root={root}", *model])  # fmt: skip
    assert outcome == "ran", err
    assert tree(root) == before and sorted(p.name for p in root.iterdir()) == ["test", "train"]
