"""cnnzoo.rundir owns the run directory: its paths, the one test of what a run is, the latest
run of a config, new runs and resume configs; no other module spells a run's file names."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import cnnzoo
from cnnzoo import rundir
from cnnzoo.errors import CheckpointError, CnnzooError, TrainingError

SRC = Path(cnnzoo.__file__).resolve().parent

# a run's file names, where a string literal holds them (prose in docstrings is not checked)
FILE_NAMES = re.compile(
    r"(?<![\w.-])(config\.yaml|metrics\.csv|summary\.json|summary\.md|status\.json"
    r"|train\.log|train\.lock|last\.pt|best\.pt|curves\.png|confusion\.png|speed\.json"
    r"|test_report)(?![\w])"
    r"|(?<![\w.-])(config\.resume-|checkpoints/)"
)
WHOLE_NAMES = {"checkpoints", "tb"}  # common words: only a literal that is just the name
# literals that name someone else's file, not a run's: torch.hub keeps downloads in
# <hub dir>/checkpoints/, where published weights are looked for before going online
NOT_RUN_FILES = {("models/_pretrained.py", "checkpoints")}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings or other bare string statements."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def run_file_literals(path: Path) -> list[tuple[int, str]]:
    """(line, literal) of each string literal in ``path`` that spells a run's file name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in skip:
            continue
        if node.value in WHOLE_NAMES or FILE_NAMES.search(node.value):
            found.append((node.lineno, node.value))
    return found


def test_no_module_but_rundir_spells_a_run_file_name():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "rundir.py" or rel.startswith("_configs/"):
            continue
        offenders += [
            f"{rel}:{line}: {text!r}"
            for line, text in run_file_literals(path)
            if (rel, text) not in NOT_RUN_FILES
        ]
    assert not offenders, "ask cnnzoo.rundir instead of spelling:\n" + "\n".join(offenders)


def test_the_literal_check_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""A docstring may say summary.json."""\n'
        'A = run / "checkpoints" / "last.pt"\n'
        'B = f"{run}/config.resume-{n}.yaml"\n'
        'C = run / "tb"\n'
        'E = "config.resume-1.yaml"\n'
        'D = "checkpoints are kept"  # prose\n'
    )
    lines = [line for line, _ in run_file_literals(bad)]
    assert sorted(lines) == [2, 2, 3, 4, 5]


def test_rundir_is_a_low_layer():
    tree = ast.parse((SRC / "rundir.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    ours = {m for m in imported if m.split(".")[0] == "cnnzoo"}
    assert ours <= {"cnnzoo.errors", "cnnzoo.fileio"}, ours
    others = {m.split(".")[0] for m in imported - ours} - {"__future__"}
    assert others <= sys.stdlib_module_names, others


def test_paths_of_a_run(tmp_path):
    run = rundir.paths(tmp_path)
    assert run.config == tmp_path / "config.yaml"
    assert run.resume_config(3) == tmp_path / "config.resume-3.yaml"
    assert run.last == tmp_path / "checkpoints" / "last.pt"
    assert run.best == tmp_path / "checkpoints" / "best.pt"
    assert (run.metrics.name, run.summary.name, run.summary_md.name) == (
        "metrics.csv",
        "summary.json",
        "summary.md",
    )
    assert (run.status.name, run.log.name, run.lock.name) == (
        "status.json",
        "train.log",
        "train.lock",
    )
    assert (run.curves.name, run.confusion.name, run.tensorboard.name) == (
        "curves.png",
        "confusion.png",
        "tb",
    )
    assert run.test_report() == tmp_path / "test_report"
    assert run.test_report("other-1") == tmp_path / "test_report-other-1"


def test_a_run_directory_is_one_that_holds_checkpoints(tmp_path):
    made = rundir.create(tmp_path / "tiny")
    assert made.parent == tmp_path / "tiny" and rundir.is_run_dir(made)
    again = rundir.create(tmp_path / "tiny")
    assert again != made  # the same second: a new name
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.yaml").write_text("seed: 0\n")
    assert not rundir.is_run_dir(tmp_path / "plain")
    assert not rundir.is_run_dir(tmp_path / "missing")
    assert rundir.find_runs(tmp_path) == sorted([made, again])


def test_create_names_an_unwritable_parent_in_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(TrainingError, match="cannot create run directory"):
        rundir.create(tmp_path / "file")


def test_the_config_a_run_trains_with_and_the_next_resume_name(tmp_path):
    run = rundir.paths(rundir.create(tmp_path))
    assert rundir.config_file(run.root) is None
    assert rundir.next_resume_config(run.root) == run.resume_config(1)
    run.config.write_text("seed: 0\n")
    assert rundir.config_file(run.root) == run.config
    run.resume_config(2).write_text("seed: 2\n")
    run.resume_config(10).write_text("seed: 10\n")
    (run.root / "config.resume-0.yaml").write_text("")  # not a name the trainer writes
    assert rundir.config_file(run.root) == run.resume_config(10)  # by number, not by text
    assert rundir.next_resume_config(run.root) == run.resume_config(1)
    run.resume_config(1).write_text("seed: 1\n")
    assert rundir.next_resume_config(run.root) == run.resume_config(3)
    assert rundir.is_config_name("config.resume-10.yaml") and rundir.is_config_name("config.yaml")
    assert not rundir.is_config_name("config.resume-0.yaml")


def test_a_run_without_its_config_says_what_to_do(tmp_path):
    run = rundir.create(tmp_path)
    with pytest.raises(CheckpointError, match="holds no config.yaml"):
        rundir.require_config(run)
    (run / "config.py").write_text("seed = 0\n")  # a run of cnnzoo before 0.1: not read
    with pytest.raises(CheckpointError, match="config.py, the run format of cnnzoo before 0.1"):
        rundir.require_config(run)


def test_the_checkpoint_of_a_run_is_best_then_last(tmp_path):
    run = rundir.paths(rundir.create(tmp_path))
    with pytest.raises(CheckpointError, match="holds no checkpoints/best.pt or last.pt"):
        rundir.checkpoint(run.root)
    run.last.write_bytes(b"")
    assert rundir.checkpoint(run.root) == run.last
    run.best.write_bytes(b"")
    assert rundir.checkpoint(run.root) == run.best
    assert rundir.checkpoint(run.last) == run.last
    assert rundir.run_dir_of(run.last) == run.root and rundir.run_dir_of(run.root) == run.root
    with pytest.raises(CheckpointError, match="neither a run directory nor a checkpoint"):
        rundir.checkpoint(tmp_path / "missing")


def test_the_latest_run_passes_over_one_whose_last_checkpoint_fails(tmp_path, capsys):
    parent = tmp_path / "tiny"
    old, new, newest = (parent / n for n in ("20260101-000000", "20260102-000000", "x"))
    for run in (old, new):
        rundir.paths(run).checkpoints.mkdir(parents=True)
        rundir.paths(run).last.write_bytes(b"ok" if run == old else b"bad")
    newest.mkdir()  # not a run: no checkpoints/

    def check(path: Path) -> None:
        if path.read_bytes() == b"bad":
            raise CheckpointError(f"{path} is bad")

    assert rundir.latest_run(parent) == new  # nothing checked
    assert rundir.latest_run(parent, check=check) == old
    assert "passing over" in capsys.readouterr().out
    rundir.paths(old).last.write_bytes(b"bad")
    assert rundir.latest_run(parent, check=check) is None
    assert rundir.latest_run(tmp_path / "none") is None
    assert issubclass(CheckpointError, CnnzooError)
