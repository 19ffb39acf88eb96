"""``cnnzoo predict`` on folders and globs with --output, ``cnnzoo runs``, ``cnnzoo configs``
and ``cnnzoo study``'s arguments, on a tiny run trained on the fake data."""

import csv
import io
import json
import re

import pytest
import torch
from fakes import FakeBundle
from PIL import Image

import cnnzoo.engine.trainer as trainer
from cnnzoo.cli import main

CONFIG = """
model = dict(type='lenet5', num_classes=10, in_chans=1, act='relu')
data = dict(type='digits', val_split=0.25, image_size=28, train=dict(batch_size=16, pipeline=[]),
            val=dict(batch_size=64), test=dict(batch_size=64, tta_flip=False))
optimizer = dict(type='SGD', lr=0.05, momentum=0.9)
train_cfg = dict(max_epochs=1)
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run (1 epoch of LeNet-5 on the fake data) and a folder of digit images."""
    tmp = tmp_path_factory.mktemp("trained")
    mp = pytest.MonkeyPatch()
    mp.setenv("CNNZOO_CACHE", str(tmp / "cache"))
    mp.setattr(trainer, "build_data", lambda *a, **k: FakeBundle(0))
    (tmp / "tiny.py").write_text(CONFIG)
    args = ["train", str(tmp / "tiny.py"), "--work-dir", str(tmp / "runs"), "--quiet",
            "--cfg-options", "train_cfg.max_epochs=1", "device=cpu", "log.tensorboard=False"]  # fmt: skip
    assert main(args) == 0
    mp.undo()
    images = tmp / "images"
    (images / "sub").mkdir(parents=True)
    for i, where in enumerate(["a.png", "b.png", "sub/c.png"]):
        pixels = (torch.rand(28, 28, generator=torch.Generator().manual_seed(i)) * 255).byte()
        Image.fromarray(pixels.numpy(), mode="L").save(images / where)
    (images / "notes.txt").write_text("not an image")
    return next((tmp / "runs" / "tiny").iterdir()), images


def _one_line_error(capsys, code, needle):
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err


def test_predict_takes_folders_and_globs_and_writes_csv_and_json(trained, tmp_path, capsys):
    run, images = trained
    out_csv, out_json = tmp_path / "p.csv", tmp_path / "p.json"
    assert main(["predict", str(run), str(images), "--topk", "2", "--output", str(out_csv)]) == 0
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    names = [str(images / n) for n in ("a.png", "b.png", "sub/c.png")]  # sorted, to any depth
    assert [r["image"] for r in rows] == [n for n in names for _ in range(2)]
    assert [r["rank"] for r in rows[:2]] == ["1", "2"]
    assert float(rows[0]["probability"]) >= float(rows[1]["probability"])
    assert str(out_csv) in capsys.readouterr().out
    glob = str(images / "*.png")  # quoted: predict expands it itself
    assert main(["predict", str(run), glob, "--output", str(out_json), "--batch-size", "1"]) == 0
    data = json.loads(out_json.read_text())
    assert [d["image"] for d in data] == names[:2]
    assert len(data[0]["top"]) == 5 and data[0]["top"][0]["class"].startswith("c")
    assert sum(t["probability"] for t in data[0]["top"]) <= 1.0 + 1e-6
    # the same image gives the same answer whether named alone, in a folder or by a glob
    rows_by_image = {r["image"]: r for r in rows if r["rank"] == "1"}
    assert data[0]["top"][0]["class"] == rows_by_image[names[0]]["class"]


def test_predict_reports_a_missing_image_in_one_line(trained, tmp_path, capsys):
    run, images = trained
    missing = tmp_path / "nope.png"
    _one_line_error(capsys, main(["predict", str(run), str(images / "a.png"), str(missing)]),
                    f"{missing}: no such image file or folder")  # fmt: skip
    _one_line_error(capsys, main(["predict", str(run), str(tmp_path / "*.jpg")]),
                    "no file matches this pattern")  # fmt: skip
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, main(["predict", str(run), str(tmp_path / "empty")]),
                    "holds no image files")  # fmt: skip
    _one_line_error(capsys, main(["predict", str(run), str(images), "--output", "p.txt"]),
                    "give a .csv or .json file name")  # fmt: skip


def test_runs_table_of_a_real_run(trained, tmp_path, capsys):
    run, _ = trained
    root = str(run.parent.parent)
    assert main(["runs", root, "--format", "json", "--sort", "test_top1", "--desc"]) == 0
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)  # stdout holds the JSON alone; the count is on stderr
    assert captured.err.strip() == "1 of 1 run(s)"
    assert row["model"] == "lenet5" and row["epochs"] == 1 and row["params"] == 61_706
    assert row["test_top1"] is not None and row["images_per_s"] > 0
    assert row["run"] == str(run)
    table = tmp_path / "t.csv"
    assert main(["runs", root, "--format", "csv", "--output", str(table),
                 "--plot", str(tmp_path / "charts")]) == 0  # fmt: skip
    assert next(csv.DictReader(io.StringIO(table.read_text())))["model"] == "lenet5"
    assert (tmp_path / "charts" / "curves.png").stat().st_size > 0
    assert (tmp_path / "charts" / "pareto_macs.png").stat().st_size > 0
    assert not (tmp_path / "charts" / "pareto_latency.png").exists()  # no latency measured
    capsys.readouterr()
    assert main(["runs", root, "--where", "test_top1>100"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 of 1 run(s)")
    _one_line_error(capsys, main(["runs", str(tmp_path)]), "no run directory")
    _one_line_error(capsys, main(["runs", root, "--sort", "speed"]), "unknown runs column")


def test_configs_lists_the_shipped_configs(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^quickstart_lenet5_digits +The offline quick start", out, re.M)
    assert "speedrun/cifar10_94" in out and "resnet20_b128_164e_cifar10" in out
    assert "_base_" not in out
    assert main(["configs", "speedrun/*"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["speedrun/cifar10_94", "speedrun/mnist_99"]
    _one_line_error(capsys, main(["configs", "nothing*"]), "no shipped config matches")


def test_study_arguments_are_checked_before_any_work(tmp_path, capsys):
    _one_line_error(capsys, main(["study", "efficient-cnn", "--data", str(tmp_path)]),
                    "holds no train/ folder")  # fmt: skip
    _one_line_error(capsys, main(["study", "efficient-cnn", "--models", "vgg*"]),
                    "no network of this study matches")  # fmt: skip
    with pytest.raises(SystemExit):
        main(["study", "efficient-cnn", "--budget", "huge"])
