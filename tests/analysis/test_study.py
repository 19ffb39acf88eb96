"""Studies: the class-balanced subset, and a one-network study trained end to end."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from datafiles import make_imagefolder  # noqa: E402

from cnnzoo.analysis import study as st  # noqa: E402
from cnnzoo.errors import ConfigError, DataError, UnknownNameError  # noqa: E402

CLASSES = ("cat", "dog", "frog")


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cifar"
    make_imagefolder(root, classes=CLASSES, per_class=7, sizes=((32, 32),))
    return root


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))


def test_subset_is_class_balanced_seeded_and_disjoint(source, tmp_path):
    budget = st.Budget(1, 3, 2, 4, "test")
    a = st.make_subset(source, tmp_path / "a", budget)
    for split, n in (("train", 3), ("val", 2), ("test", 4)):
        for name in CLASSES:
            assert len(list((a / split / name).iterdir())) == n
    train, val = set(_files(a / "train")), set(_files(a / "val"))
    assert not train & val  # validation images are never trained on
    assert _files(st.make_subset(source, tmp_path / "b", budget)) == _files(a)
    assert _files(st.make_subset(source, tmp_path / "c", budget, seed=1)) != _files(a)
    linked = next((a / "train" / "cat").iterdir())
    assert linked.resolve().parent == (source / "train" / "cat").resolve()
    # the same choice is kept; another budget replaces it
    stamp = (a / "subset.json").stat().st_mtime_ns
    st.make_subset(source, a, budget)
    assert (a / "subset.json").stat().st_mtime_ns == stamp
    st.make_subset(source, a, st.Budget(1, None, 1, None, "all"))
    assert len(list((a / "train" / "dog").iterdir())) == 6
    assert len(list((a / "test" / "dog").iterdir())) == 7


def test_subset_errors(source, tmp_path):
    with pytest.raises(DataError, match="too few images"):
        st.make_subset(source, tmp_path / "x", st.Budget(1, 3, 7, 2, "no train left"))
    make_imagefolder(tmp_path / "no-test", classes=CLASSES, splits=("train",))
    with pytest.raises(DataError, match="no test/ folder"):
        st.make_subset(tmp_path / "no-test", tmp_path / "y", st.Budget(1, 1, 1, 1, ""))


def test_names_and_selection():
    study = st.get_study("efficient-cnn")
    assert len(study.members) >= 10
    assert [m.model for m in st.select_members(study, ["shufflenet*"])] == [
        "shufflenet_v1_g3",
        "shufflenet_v2_x1_0",
    ]
    with pytest.raises(ConfigError, match="no network of this study matches"):
        st.select_members(study, ["vgg*"])
    with pytest.raises(UnknownNameError):
        st.get_study("efficient")
    with pytest.raises(UnknownNameError):
        st.get_budget("huge")


def test_every_network_of_the_study_has_a_valid_config(tmp_path):
    study = st.get_study("efficient-cnn")
    for member in study.members:
        cfg = st.member_config(study, member, data=tmp_path, epochs=3, work_dir=tmp_path)
        assert (cfg.model.type, cfg.train_cfg.max_epochs, cfg.data.root) == (
            member.model,
            3,
            str(tmp_path),
        )
        # the one recipe: the same optimizer, schedule and augmentation for every network
        assert cfg.optimizer.lr == 0.05 and cfg.data.image_size == 32
        assert [op["type"] for op in cfg.data.train.pipeline] == [
            "RandomCrop",
            "RandomHorizontalFlip",
        ]


def test_a_study_trains_measures_and_tabulates_then_resumes_without_retraining(
    source, tmp_path, monkeypatch
):
    tiny = st.Study("tiny", st.STUDIES["efficient-cnn"].recipe, (st.Member("squeezenet1_1"),), "x")
    monkeypatch.setitem(st.STUDIES, "tiny", tiny)
    lines = []
    out = st.run_study("tiny", "smoke", data=source, work_dir=tmp_path / "w",
                       cfg_options=["model.num_classes=3", "log.interval=1"], command="cnnzoo study tiny",
                       say=lines.append)  # fmt: skip
    assert out == tmp_path / "w" / "tiny-smoke"
    (row,) = json.loads((out / "table.json").read_text())
    assert row["model"] == "squeezenet1_1" and row["epochs"] == 1
    assert row["test_top1"] is not None and row["latency_ms"] > 0 and row["images_per_s"] > 0
    assert row["macs"] > 0 and row["run"].startswith("runs/squeezenet1_1_imagefolder/")
    md = (out / "table.md").read_text()
    assert "budget `smoke`" in md and "command: `cnnzoo study tiny`" in md
    for name in ("table.csv", "curves.png", "pareto_macs.png", "pareto_latency.png"):
        assert (out / name).stat().st_size > 0
    runs = list((out / "runs").glob("*/*"))
    # again: the finished network is kept; another budget trains anew
    again = []
    st.run_study("tiny", "smoke", data=source, work_dir=tmp_path / "w",
                 cfg_options=["model.num_classes=3", "log.interval=1"], say=again.append)  # fmt: skip
    assert "trained already" in again[0] and list((out / "runs").glob("*/*")) == runs
    with pytest.raises(ConfigError, match="--epochs"):
        st.run_study("tiny", "smoke", data=source, work_dir=tmp_path / "w", epochs=0)


def test_a_study_latency_keeps_its_spread_and_warns_when_too_wide(tmp_path, monkeypatch):
    from cnnzoo.analysis import runs as runs_table
    from cnnzoo.analysis import speed
    from cnnzoo.config import load_config

    monkeypatch.setattr(speed, "spread", lambda times: 0.3)  # as on a busy machine
    cfg = load_config("quickstart_lenet5_digits")
    with pytest.warns(UserWarning, match=r"lenet5 CPU latency ±30%.*delete .*speed\.json"):
        st.measure_latency(cfg, tmp_path)
    measured = json.loads((tmp_path / runs_table.SPEED_FILE).read_text())
    assert measured["repeats"] == st.LATENCY_REPEATS and measured["latency_spread"] == 0.3
    row = dict.fromkeys(runs_table.COLUMNS) | dict(run="r", latency_ms=2.5, latency_spread=0.3)
    assert "| 2.5 ±30% |" in runs_table.format_runs([row], "md")
