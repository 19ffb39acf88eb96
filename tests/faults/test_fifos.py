"""A FIFO where cnnzoo expects a file is refused at once: a plain open() of one blocks until a
writer comes, so each of these hung forever (issue 21). Every reader of a file from disk goes
through :func:`cnnzoo.fileio.open_regular`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from cnnzoo.analysis import runs as runs_table
from cnnzoo.cli import main
from cnnzoo.config import dump_config, load_config
from cnnzoo.data.images import read_file
from cnnzoo.errors import DataError
from cnnzoo.fileio import NotRegularFile, open_regular, read_regular_text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "data"))
from datafiles import make_jpeg_folder  # noqa: E402

pytestmark = pytest.mark.timeout(60)  # a hang fails here instead of stalling the suite


def test_open_regular_refuses_a_fifo_and_a_device_and_reads_a_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(NotRegularFile, match="not a regular file"):
            open_regular(path)
    (tmp_path / "file.txt").write_text("text")
    assert read_regular_text(tmp_path / "file.txt") == "text"
    with open_regular(tmp_path / "file.txt") as f:
        assert f.read() == b"text"


def _run(folder: Path) -> Path:
    run = folder / "runs" / "exp" / "1"
    (run / "checkpoints").mkdir(parents=True)
    dump_config(load_config(None), run / "config.yaml")
    (run / "metrics.csv").write_text("epoch,val/top1\n1,50.0\n")
    return run


@pytest.mark.parametrize("name", ["summary.json", "metrics.csv", runs_table.SPEED_FILE])
def test_cnnzoo_runs_goes_on_past_a_fifo_in_a_run(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    run = _run(tmp_path)
    (run / name).unlink(missing_ok=True)
    os.mkfifo(run / name)
    assert main(["runs", str(tmp_path / "runs"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["model"] == "lenet5"


def test_a_fifo_where_an_image_should_be_is_one_line(tmp_path):
    make_jpeg_folder(tmp_path, per_class=2)
    image = next((tmp_path / "train").rglob("*.jpg"))
    image.unlink()
    os.mkfifo(image)
    with pytest.raises(DataError, match=f"cannot read image {image}: not a regular file"):
        read_file(image)
