"""What cnnzoo wrote itself is untrusted too (issue 21): run directories, caches and shard
indexes read back from disk, and paths and sizes given on the command line. Each case here
was a traceback; each is one line (or, for a run among others, a note) now."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from cnnzoo.analysis import runs as runs_table
from cnnzoo.cli import main
from cnnzoo.config import dump_config, load_config
from cnnzoo.data.shards import FORMAT, INDEX, iter_shard, read_shard_index
from cnnzoo.data.stats import ChannelStats, cached_channel_stats
from cnnzoo.errors import DataError

DEEP = "[" * 100_000 + "]" * 100_000  # nested past Python's recursion limit


def _one_line(capsys, code: int, command: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cnnzoo {command}: error: "), lines
    return lines[0]


# --- run directories under `cnnzoo runs` ----------------------------------------------------


def _run(root: Path, name: str) -> Path:
    run = root / name / "1"
    (run / "checkpoints").mkdir(parents=True)
    dump_config(load_config(None), run / "config.yaml")
    (run / "metrics.csv").write_text("epoch,val/top1,time\n1,50.0,2.0\n")
    summary = dict(model="lenet5", epochs=1, train_time_s=2.0, train_samples=1000)
    (run / "summary.json").write_text(json.dumps(summary))
    return run


DAMAGE = {
    "deep summary.json": lambda r: (r / "summary.json").write_text(DEEP),
    "deep speed.json": lambda r: (r / runs_table.SPEED_FILE).write_text(DEEP),
    "non-UTF-8 metrics.csv": lambda r: (r / "metrics.csv").write_bytes(b"epoch,val/top1\n1,\xff\n"),
    "200 KB CSV field": lambda r: (r / "metrics.csv").write_text("epoch\n" + "9" * 200_000 + "\n"),
    "sizes that are not integers": lambda r: (r / "config.yaml").write_text(
        (r / "config.yaml").read_text().replace("image_size: 32", "image_size: [a, b]")
    ),
    "an infinite images/s": lambda r: (r / "summary.json").write_text(
        json.dumps(dict(model="lenet5", epochs=1, train_time_s=1e-320, train_samples=1e300))
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_run_keeps_its_row_and_the_table_goes_on(tmp_path, capsys, monkeypatch, damage):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    _run(tmp_path / "runs", "good")
    bad = _run(tmp_path / "runs", "bad")
    if damage == "sizes that are not integers":
        (bad / "summary.json").unlink()  # the costs are then counted from the config
    DAMAGE[damage](bad)
    assert main(["runs", str(tmp_path / "runs"), "--format", "json"]) == 0
    captured = capsys.readouterr()
    rows = {Path(r["run"]).parent.name: r for r in json.loads(captured.out)}  # valid JSON
    assert set(rows) == {"good", "bad"} and rows["good"]["images_per_s"] == 500.0
    if damage in ("sizes that are not integers", "an infinite images/s"):
        assert rows["bad"]["params"] is None or rows["bad"]["images_per_s"] is None
    else:
        assert f"{bad}: damaged: " in captured.err


def test_a_damaged_run_cost_cache_is_rebuilt_with_a_note(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    run = _run(tmp_path / "runs", "costs")
    (run / "summary.json").unlink()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "model_costs.json").write_text(DEEP)
    with pytest.warns(UserWarning, match="model-cost cache .* is damaged .*; its counts are made"):
        assert main(["runs", str(tmp_path / "runs"), "--format", "csv"]) == 0
    assert "61706" in capsys.readouterr().out  # counted again
    assert json.loads((tmp_path / "cache" / "model_costs.json").read_text())["costs"]


def test_a_table_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    _run(tmp_path / "runs", "a")
    code = main(["runs", str(tmp_path / "runs"), "--output", "/proc/cnnzoo-table.md"])
    assert "cannot write the table to /proc/cnnzoo-table.md" in _one_line(capsys, code, "runs")


# --- tar shards -----------------------------------------------------------------------------


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_class_index_of_thousands_of_digits_is_named(tmp_path):
    shard = _tar(tmp_path / "a.tar", {"000.jpg": b"\xff\xd8", "000.cls": b"9" * 5000})
    with pytest.raises(DataError, match=r"000.cls holds '99999.*', not a class index in 0..1"):
        list(iter_shard(shard, 2))


@pytest.mark.parametrize(
    ("samples", "match"),
    [(10**20, "samples. count from 1 to"), (1e20, "samples. count from 1 to"), (0, "from 1 to")],
)
def test_shard_counts_beyond_reason_are_refused(tmp_path, samples, match):
    _tar(tmp_path / "a.tar", {})
    shard = {"file": "a.tar", "samples": samples}
    index = dict(format=FORMAT, classes=["a", "b"], splits={"train": [shard]})
    (tmp_path / INDEX).write_text(json.dumps(index))
    with pytest.raises(DataError, match=match):
        read_shard_index(tmp_path)


def test_a_shard_index_nested_too_deep_is_named(tmp_path):
    (tmp_path / INDEX).write_text(DEEP)
    with pytest.raises(DataError, match="nested too deep"):
        read_shard_index(tmp_path)


# --- the command line -----------------------------------------------------------------------


def test_an_input_size_beyond_reason_is_one_line(capsys):
    code = main(["summary", "lenet5", "--input", "1x99999999999999999999x32"])
    assert "at most 4096 channels and 8192 pixels" in _one_line(capsys, code, "summary")


def test_a_missing_argument_is_one_line_not_the_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["predict", "runs/x"])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "cnnzoo predict: error: the following arguments are required: IMAGE; "
        "see `cnnzoo predict --help`"
    ]


def test_a_deleted_working_directory_is_one_line_before_torch_loads(tmp_path):
    """From a deleted folder, oneMKL's start-up printed FATAL ERROR and the process died."""
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys\n"
        f"os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})\n"
        "from cnnzoo.cli import main\n"
        "code = main(['summary', 'lenet5'])\n"
        "sys.exit(code if 'torch' not in sys.modules else 99)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "cnnzoo: error: the current working directory no longer exists (it was deleted or "
        "moved); cd to an existing folder and run the command again"
    ]


@pytest.mark.parametrize(
    ("cache", "reason"),
    [
        ({"mean": "abc", "std": [0.2], "cov": [[0.04]]}, "one finite number per channel"),
        ({"mean": [0.5], "std": [-1.0], "cov": [[0.04]]}, "negative std"),
        ({"mean": [0.5], "std": [0.2], "cov": [[0.04, 1]]}, "not a square matrix"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_a_statistics_cache_that_does_not_validate_is_recomputed_with_a_note(
    tmp_path, cache, reason
):
    """A string mean was read as a tuple of characters and failed later, far from its cause."""
    file = tmp_path / "stats.json"
    file.write_text(json.dumps(cache))
    true = ChannelStats((0.5,), (0.25,), ((0.0625,),))
    with pytest.warns(UserWarning, match=f"{reason}.*computing the statistics again"):
        assert cached_channel_stats(lambda: true, file) == true
    assert json.loads(file.read_text())["mean"] == [0.5]  # the cache is rewritten
