"""The first decoding of a large ImageFolder tree says how far it has got, on stderr; a small
or quick one says nothing."""

from __future__ import annotations

import re

from datafiles import make_imagefolder

import cnnzoo.data.imagefolder as imagefolder
from cnnzoo.data import read_dataset


def test_a_small_tree_decodes_quietly(tmp_path, capsys):
    make_imagefolder(tmp_path / "tree", per_class=5)
    read_dataset("imagefolder", tmp_path / "tree")
    assert capsys.readouterr().err == ""


def test_a_large_tree_reports_its_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(imagefolder, "PROGRESS_MIN_IMAGES", 5)  # 10 train images count as large
    monkeypatch.setattr(imagefolder, "PROGRESS_AFTER_S", 0.0)
    make_imagefolder(tmp_path / "tree", per_class=5, splits=("train",))
    src = read_dataset("imagefolder", tmp_path / "tree")
    assert len(src.train) == 10
    lines = capsys.readouterr().err.splitlines()
    train = tmp_path / "tree" / "train"
    pattern = re.compile(rf"decoding {re.escape(str(train))}: (\d+)/10 images \((\d+)%\)")
    counts = [int(pattern.fullmatch(line).group(1)) for line in lines]
    assert counts == list(range(1, 11))  # a line per tenth: every image of ten
    assert lines[-1].endswith("10/10 images (100%)")
    # read again: the cache holds the decoded tree, nothing is decoded, nothing is said
    read_dataset("imagefolder", tmp_path / "tree")
    assert capsys.readouterr().err == ""


def test_lines_come_at_tenths_and_at_the_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(imagefolder, "PROGRESS_MIN_IMAGES", 1)
    monkeypatch.setattr(imagefolder, "PROGRESS_AFTER_S", 0.0)
    progress = imagefolder.Progress(tmp_path, 1000)
    for done in range(1, 1001):
        progress.tick(done)
    percents = [line.rsplit("(", 1)[1] for line in capsys.readouterr().err.splitlines()]
    assert percents == [f"{p}%)" for p in range(10, 101, 10)]
