"""The runs table's config, overrides and learning-rate columns, and the run's origin.json
(how it was started and resumed) they are read from."""

import csv
import io
import json
import os

import pytest

from cnnzoo import rundir
from cnnzoo.analysis import runs as rt
from cnnzoo.cli import main

START = ["train_cfg.max_epochs=2", "optimizer.lr=0.005"]


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A quick-start run started with START and resumed with one more epoch, by the CLI."""
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "runs"
    assert main(["train", "--work-dir", str(work), "--quiet", "--cfg-options", *START]) == 0
    (run,) = (work / "quickstart_lenet5_digits").iterdir()
    more = ["train_cfg.max_epochs=3"]
    assert main(["train", "--resume", str(run), "--quiet", "--cfg-options", *more]) == 0
    return run


def test_a_run_records_the_options_of_its_start_and_of_each_resume(trained):
    record = json.loads((trained / rundir.ORIGIN).read_text())
    assert record == {
        "format": 1,
        "config": "quickstart_lenet5_digits",
        "overrides": START,
        "resumes": [["train_cfg.max_epochs=3"]],
    }
    assert rundir.read_origin(trained) == {k: v for k, v in record.items() if k != "format"}


def test_the_table_shows_config_overrides_and_both_rates_in_every_format(trained, capsys):
    metrics = list(csv.DictReader(io.StringIO((trained / rundir.METRICS).read_text())))
    last_lr = float(metrics[-1]["lr"])
    assert len(metrics) == 3 and 0 < last_lr < 0.005
    both = "train_cfg.max_epochs=2 optimizer.lr=0.005 | resume: train_cfg.max_epochs=3"

    assert main(["runs", str(trained.parent), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["config"] == "quickstart_lenet5_digits"
    assert (row["lr"], row["last_lr"]) == (0.005, pytest.approx(last_lr, rel=1e-5))
    assert row["overrides"] == both

    assert main(["runs", str(trained.parent), "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert (row["config"], row["lr"], row["overrides"]) == (
        "quickstart_lenet5_digits",
        "0.005",
        both,
    )

    assert main(["runs", str(trained.parent)]) == 0
    table = capsys.readouterr().out
    header = table.splitlines()[0]
    assert "| config |" in header and "| lr | last lr | overrides |" in header
    assert "| quickstart_lenet5_digits |" in table and f"| 0.005 | {last_lr:.3g} |" in table
    assert "| train_cfg.max_epochs=2 optimizer.lr=0.005 \\| res…" in table  # cut, escaped


def test_a_run_started_without_options_says_none(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "runs" / "mine" / "1"
    (run / rundir.CHECKPOINTS).mkdir(parents=True)
    rundir.record_origin(run, "mine", [], resumed=False)
    row = rt.read_run(run)
    assert row["overrides"] == "" and row["config"] == "mine"
    assert "| none |" in rt.format_runs([row], "md")


def test_an_older_run_without_a_record_keeps_its_folder_name_and_rates(tmp_path, monkeypatch):
    from test_runs_table import make_run

    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    run = make_run(tmp_path / "runs" / "lenet_digits", "20260101-000000")
    row = rt.read_run(run)
    assert row["config"] == "lenet_digits" and row["overrides"] is None
    assert (row["lr"], row["last_lr"]) == (3e-3, 0.1)  # config.yaml, metrics.csv's last epoch
    assert row["problems"] == []
    md = rt.format_runs([row], "md")
    assert "| 0.003 | 0.1 | n/a |" in md


def test_a_resume_of_a_run_without_a_record_starts_one(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    rundir.record_origin(run, "cfg", ["seed=1"], resumed=True)
    assert rundir.read_origin(run) == {"config": "cfg", "overrides": None, "resumes": [["seed=1"]]}
    assert rt.overrides_text(rundir.read_origin(run)) == "? | resume: seed=1"


DAMAGED = {
    "not JSON": b"{not json",
    "not UTF-8": b"\xff\xfe{}",
    "a list": b"[]",
    "another format": json.dumps({"format": 2, "config": "x", "resumes": []}).encode(),
    "config a number": json.dumps({"format": 1, "config": 3, "resumes": []}).encode(),
    "config too long": json.dumps({"format": 1, "config": "x" * 300, "resumes": []}).encode(),
    "overrides of numbers": json.dumps(
        {"format": 1, "config": "x", "overrides": [1, 2], "resumes": []}
    ).encode(),
    "resumes not lists": json.dumps(
        {"format": 1, "config": "x", "overrides": [], "resumes": ["a=1"]}
    ).encode(),
    "deep": b"[" * 100_000,
    "huge": b" " * (rundir.MAX_ORIGIN_BYTES + 10) + b"{}",
}


@pytest.mark.parametrize("damage", [*DAMAGED, "FIFO", "link to a device", "folder"])
def test_a_damaged_record_leaves_its_cells_unknown_and_is_named(tmp_path, monkeypatch, damage):
    from test_runs_table import make_run

    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    run = make_run(tmp_path / "runs" / "cfg", "1", test_top1=90.0)
    path = run / rundir.ORIGIN
    if damage == "FIFO":
        os.mkfifo(path)
    elif damage == "link to a device":
        path.symlink_to("/dev/zero")
    elif damage == "folder":
        path.mkdir()
    else:
        path.write_bytes(DAMAGED[damage])
    row = rt.read_run(run)
    assert (row["config"], row["overrides"]) == ("cfg", None)  # the folder's name; unknown
    assert row["test_top1"] == 90.0 and row["lr"] == 3e-3  # the rest of the row is read
    assert len(row["problems"]) == 1 and row["problems"][0].startswith("origin.json: ")
    assert "| n/a |" in rt.format_runs([row], "md")
    # a resume of such a run starts a new record beside no trace of the damaged one
    if damage not in ("FIFO", "folder"):
        rundir.record_origin(run, "cfg", ["seed=2"], resumed=True)
        assert rundir.read_origin(run)["resumes"] == [["seed=2"]]


def test_lr_columns_sort_and_filter(tmp_path, monkeypatch):
    from test_runs_table import make_run

    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    rows = [
        rt.read_run(make_run(tmp_path / "runs" / "a", "1", test_top1=50.0)),
        rt.read_run(make_run(tmp_path / "runs" / "b", "1", test_top1=60.0)),
    ]
    rows[1]["lr"] = 0.5
    assert [r["config"] for r in rt.sort_runs(rows, "-lr")] == ["b", "a"]
    assert [r["config"] for r in rt.filter_runs(rows, where=["lr>0.1"])] == ["b"]
    assert [r["config"] for r in rt.filter_runs(rows, match=["config=a"])] == ["a"]
