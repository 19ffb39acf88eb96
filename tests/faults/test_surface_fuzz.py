"""Property-based tests of what cnnzoo reads back from disk (issue 21): run directories under
``cnnzoo runs``, shard indexes, export sidecars, statistics caches and lock files. Each file
is written by hypothesis, from damaged versions of what cnnzoo writes to arbitrary JSON and
bytes. Every case ends in a result or in cnnzoo's own one-line error, never in another
exception, a hang or a write outside the run.

In CI each test draws a fixed set of examples; ``HYPOTHESIS_PROFILE=fuzz`` (tests/fuzzing.py)
explores 50 times as many. The outcome counts of a run are printed at the end of the module
(``-s`` shows them).
"""

from __future__ import annotations

import collections
import itertools
import json
import os
from pathlib import Path

import pytest
from faultkit import export_sidecar, write_torchscript
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnzoo.cli import main
from cnnzoo.config import dump_config, load_config
from cnnzoo.data.shards import FORMAT, INDEX, read_shard_index
from cnnzoo.data.stats import ChannelStats, cached_channel_stats
from cnnzoo.errors import CnnzooError
from cnnzoo.export.core import load_exported, sidecar_path
from cnnzoo.rundir import LOCK, run_lock
from fuzzing import examples

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=examples(40))
OUTCOMES: collections.Counter = collections.Counter()
CASE = itertools.count()

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mutated(valid: dict) -> st.SearchStrategy[dict]:
    """``valid`` with fields dropped, replaced by any JSON value, or added."""
    keys = sorted(valid)
    return st.builds(
        lambda drop, replace, extra: {
            **{k: v for k, v in valid.items() if k not in drop},
            **replace,
            **extra,
        },
        st.sets(st.sampled_from(keys), max_size=2),
        st.dictionaries(st.sampled_from(keys), JSON, max_size=3),
        st.dictionaries(st.text(max_size=6), JSON, max_size=2),
    )


def _text(value) -> str:
    return json.dumps(value, allow_nan=True)


CONTENT = st.one_of(st.binary(max_size=200), JSON.map(lambda v: _text(v).encode()))


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    yield
    for (surface, outcome), n in sorted(OUTCOMES.items()):
        print(f"surface fuzz: {surface}: {outcome}: {n}")


def _case_dir(tmp_path: Path) -> Path:
    folder = tmp_path / f"case{next(CASE)}"
    folder.mkdir()
    return folder


# --- run directories under `cnnzoo runs` ----------------------------------------------------

RUN_FILES = ["summary.json", "metrics.csv", "config.yaml", "status.json", "speed.json"]


@FUZZ
@given(damaged=st.dictionaries(st.sampled_from(RUN_FILES), CONTENT, min_size=1, max_size=3))
def test_cnnzoo_runs_shows_every_damaged_run_or_one_line(tmp_path, capsys, monkeypatch, damaged):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    run = _case_dir(tmp_path) / "runs" / "cfg" / "1"
    (run / "checkpoints").mkdir(parents=True)
    dump_config(load_config(None), run / "config.yaml")
    (run / "metrics.csv").write_text("epoch,val/top1,time\n1,50.0,2.0\n")
    (run / "summary.json").write_text(_text(dict(model="lenet5", epochs=1, train_time_s=2.0)))
    for name, content in damaged.items():
        (run / name).write_bytes(content)
    code = main(["runs", str(run.parent.parent), "--format", "json"])
    captured = capsys.readouterr()
    if code == 0:
        rows = json.loads(captured.out)  # stdout stays pure JSON, whatever the damage
        assert [Path(r["run"]) for r in rows] in ([run], [])
        OUTCOMES["runs", "table"] += 1
    else:
        assert code == 2 and len(captured.err.strip().splitlines()) == 1, captured.err
        assert captured.err.startswith("cnnzoo runs: error: ")
        OUTCOMES["runs", "one line"] += 1


# --- shard indexes --------------------------------------------------------------------------

VALID_INDEX = dict(
    format=FORMAT,
    classes=["a", "b"],
    splits={"train": [{"file": "a.tar", "samples": 2}]},
)


@FUZZ
@given(index=st.one_of(_mutated(VALID_INDEX), JSON))
@example(index=VALID_INDEX)
def test_a_shard_index_is_read_or_refused_in_one_line(tmp_path, index):
    root = _case_dir(tmp_path)
    (root / "a.tar").write_bytes(b"")
    (root / INDEX).write_text(_text(index))
    try:
        read_shard_index(root)
        OUTCOMES["shard index", "read"] += 1
    except CnnzooError as e:
        assert "\n" not in str(e)
        OUTCOMES["shard index", "one line"] += 1


# --- export sidecars ------------------------------------------------------------------------

VALID_SIDECAR = export_sidecar(28)


@pytest.fixture(scope="module")
def torchscript_model(tmp_path_factory) -> Path:
    return write_torchscript(tmp_path_factory.mktemp("export"), 28)


@FUZZ
@given(sidecar=st.one_of(_mutated(VALID_SIDECAR), JSON))
@example(sidecar=VALID_SIDECAR)
@example(sidecar={**VALID_SIDECAR, "format": []})  # was TypeError: unhashable type: 'list'
def test_an_export_sidecar_is_checked_or_refused_in_one_line(torchscript_model, sidecar):
    sidecar_path(torchscript_model).write_text(_text(sidecar))
    try:
        _, meta = load_exported(torchscript_model)
        assert meta["in_chans"] == len(meta["mean"]) == len(meta["std"])
        assert meta["num_classes"] == len(meta["class_names"])
        OUTCOMES["export sidecar", "accepted"] += 1
    except CnnzooError as e:
        assert "\n" not in str(e)
        OUTCOMES["export sidecar", "one line"] += 1


# --- statistics caches ----------------------------------------------------------------------

TRUE_STATS = ChannelStats((0.5,), (0.25,), ((0.0625,),))


@pytest.mark.filterwarnings("ignore:.*computing the statistics again")
@FUZZ
@given(
    content=st.one_of(
        _mutated(dict(mean=[0.5], std=[0.25], cov=[[0.0625]])).map(_text),
        JSON.map(_text),
        st.text(max_size=40),
    )
)
@example(content=_text(dict(mean=[0.4], std=[0.2], cov=[[0.04]])))
def test_a_statistics_cache_is_used_only_when_it_validates(tmp_path, content):
    cache = _case_dir(tmp_path) / "stats.json"
    cache.write_text(content)
    stats = cached_channel_stats(lambda: TRUE_STATS, cache)
    used_cache = stats != TRUE_STATS
    if used_cache:  # what came from the cache is what a computation could give
        assert len(stats.mean) == len(stats.std) == len(stats.cov) >= 1
        assert all(isinstance(v, float) and v == v for v in (*stats.mean, *stats.std))
        assert all(s >= 0 for s in stats.std)
    OUTCOMES["statistics cache", "used" if used_cache else "recomputed"] += 1


# --- lock files -----------------------------------------------------------------------------

LOCK_KINDS = ["none", "file", "empty file", "folder", "fifo", "link to a file", "dangling link"]


@FUZZ
@given(kind=st.sampled_from(LOCK_KINDS), content=st.binary(max_size=64))
def test_a_lock_file_of_any_kind_is_taken_or_refused_and_nothing_else_is_written(
    tmp_path, kind, content
):
    folder = _case_dir(tmp_path)
    run, outside = folder / "run", folder / "precious.txt"
    run.mkdir()
    outside.write_bytes(b"keep me")
    lock = run / LOCK
    if kind == "file":
        lock.write_bytes(content)
    elif kind == "empty file":
        lock.write_bytes(b"")
    elif kind == "folder":
        lock.mkdir()
    elif kind == "fifo":
        os.mkfifo(lock)
    elif kind == "link to a file":
        lock.symlink_to(outside)
    elif kind == "dangling link":
        lock.symlink_to(folder / "nowhere")
    try:
        with run_lock(run):
            assert lock.is_file() and not lock.is_symlink()
        assert not lock.exists()  # a finished run leaves no lock behind
        OUTCOMES["lock file", "taken"] += 1
    except CnnzooError as e:
        assert "\n" not in str(e) and kind in ("folder", "fifo", "link to a file", "dangling link")
        OUTCOMES["lock file", "one line"] += 1
    assert outside.read_bytes() == b"keep me"
    assert not (folder / "nowhere").exists()
