"""The runs table: run directories written here in the trainer's own file formats."""

import csv
import io
import json

import numpy as np
import pytest
from matplotlib.image import imread
from matplotlib.text import Text

from cnnzoo.analysis import plots
from cnnzoo.analysis import runs as rt
from cnnzoo.cli import main
from cnnzoo.config import dump_config, load_config
from cnnzoo.errors import ConfigError, DataError

LENET = (61_706, 416_520)  # params, MACs of lenet5 at 1x32x32 (the quick start's input)


def make_run(parent, name, *, model="lenet5", test_top1=None, val=(50.0, 60.0), time_s=10.0,
             samples=1000, summary=True, latency=None, **model_kwargs):  # fmt: skip
    """A run directory as the trainer leaves it: config.yaml, checkpoints/, metrics.csv and,
    once finished, summary.json."""
    run = parent / name
    (run / "checkpoints").mkdir(parents=True)
    options = {"model.type": model, **{f"model.{k}": v for k, v in model_kwargs.items()}}
    dump_config(load_config(None, options), run / "config.yaml")
    lines = ["epoch,lr,train/loss,train/top1,val/loss,val/top1,time"]
    lines += [f"{i},0.1,{2.0 / i},{v - 5},{1.0 / i},{v},{time_s / len(val)}" for i, v in enumerate(val, 1)]  # fmt: skip
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    if summary:
        info = dict(model=model, dataset="digits", params=LENET[0], macs=LENET[1],
                    epochs=len(val), train_time_s=time_s, train_samples=samples,
                    **{"test/top1": test_top1, "test/loss": 0.5})  # fmt: skip
        (run / "summary.json").write_text(json.dumps(info))
    if latency is not None:
        (run / rt.SPEED_FILE).write_text(json.dumps(dict(latency_ms=latency, device="cpu")))
    return run


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "runs"
    make_run(root / "a", "1", test_top1=91.5, val=(70.0, 88.0), latency=2.0)
    make_run(root / "b", "1", test_top1=97.25, val=(80.0, 96.0, 95.0), time_s=30.0, latency=3.5)
    make_run(root / "b", "2", test_top1=42.0, val=(40.0,), time_s=5.0)
    make_run(root / "c" / "deep", "1", summary=False, val=(20.0,))  # stopped before its test
    (root / "not-a-run").mkdir()
    return root


def test_finds_every_run_at_any_depth_and_reads_its_files(runs):
    found = rt.find_runs([runs])
    assert [p.relative_to(runs).as_posix() for p in found] == ["a/1", "b/1", "b/2", "c/deep/1"]
    assert rt.find_runs([runs / "b" / "1"]) == [runs / "b" / "1"]  # a run itself
    row = rt.read_run(runs / "b" / "1")
    assert (row["model"], row["dataset"], row["epochs"]) == ("lenet5", "digits", 3)
    assert (row["best_val_top1"], row["test_top1"], row["latency_ms"]) == (96.0, 97.25, 3.5)
    assert row["images_per_s"] == pytest.approx(1000 * 3 / 30.0)
    assert [h["epoch"] for h in row["history"]] == [1, 2, 3]
    with pytest.raises(DataError, match="no such folder"):
        rt.find_runs([runs / "missing"])


def test_a_run_without_summary_has_its_costs_counted_from_its_config(runs, tmp_path):
    row = rt.read_run(runs / "c" / "deep" / "1")
    assert (row["params"], row["macs"]) == LENET
    assert row["test_top1"] is None and row["epochs"] == 1 and row["images_per_s"] is None
    assert row["train_time_s"] == pytest.approx(10.0)
    cached = json.loads((tmp_path / "cache" / "model_costs.json").read_text())["costs"]
    assert list(cached.values()) == [list(LENET)]
    # model arguments count: a wider classifier has more parameters
    wide = rt.model_costs(dict(type="lenet5", num_classes=100, in_chans=1), (1, 32, 32))
    assert wide[0] > LENET[0]


def test_sort_and_filter(runs):
    rows = rt.read_runs([runs])
    best = rt.sort_runs(rows, "-test_top1")
    assert [r["test_top1"] for r in best] == [97.25, 91.5, 42.0, None]  # unknown last
    assert [r["test_top1"] for r in rt.sort_runs(rows, "test_top1")][:3] == [42.0, 91.5, 97.25]
    assert [r["run"][-3:] for r in rt.sort_runs(rows, "run")] == ["a/1", "b/1", "b/2", "p/1"]
    high = rt.filter_runs(rows, where=["test_top1>=91.5"])
    assert sorted(r["test_top1"] for r in high) == [91.5, 97.25]
    assert len(rt.filter_runs(rows, where=["test_top1 > 91.5", "epochs==3"])) == 1
    assert len(rt.filter_runs(rows, match=["run=*/b/*"])) == 2
    assert rt.filter_runs(rows, match=["model=resnet*"]) == []
    assert len(rt.filter_runs(rows, match=["model=lenet?"])) == 4


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(where=["top1>3"]), "unknown runs column 'top1'"),
        (dict(where=["test_top1 ~ 3"]), "KEY OP NUMBER"),
        (dict(where=["test_top1>high"]), "not a number"),
        (dict(where=["model>3"]), "compares numbers"),
        (dict(match=["model"]), "KEY=PATTERN"),
    ],
)
def test_bad_filters_are_one_line_errors(runs, kw, message):
    with pytest.raises(ConfigError, match=message):
        rt.filter_runs(rt.read_runs([runs]), **kw)


def test_every_format_parses_back(runs):
    rows = rt.sort_runs(rt.read_runs([runs]), "-test_top1")
    data = json.loads(rt.format_runs(rows, "json"))
    assert [d["test_top1"] for d in data] == [97.25, 91.5, 42.0, None]
    assert data[0]["params"] == LENET[0] and list(data[0]) == list(rt.COLUMNS)
    table = list(csv.DictReader(io.StringIO(rt.format_runs(rows, "csv"))))
    assert [r["test_top1"] for r in table] == ["97.25", "91.5", "42.0", ""]
    assert table[0]["macs"] == str(LENET[1]) and table[0]["latency_ms"] == "3.5"
    md = rt.format_runs(rows, "md").splitlines()
    assert len(md) == 2 + len(rows) and all(line.count("|") == len(rt.COLUMNS) + 1 for line in md)
    assert "| lenet5 | digits | 61.71K | 416.52K | 3 | 96.00 | 97.25 |" in md[2]
    with pytest.raises(ConfigError, match="unknown format"):
        rt.format_runs(rows, "html")


def test_pareto_front():
    pts = [(1.0, 50.0), (2.0, 40.0), (3.0, 70.0), (3.0, 60.0), (10.0, 70.0), (20.0, 90.0)]
    assert rt.pareto_front(pts) == [0, 2, 5]


def _image(path):
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100
    return pixels


def test_charts_are_drawn_and_not_blank(runs, tmp_path):
    rows = rt.read_runs([runs])
    curves = plots.plot_curves(rows, tmp_path / "curves.png")
    macs = plots.plot_pareto(rows, tmp_path / "macs.png", "macs")
    latency = plots.plot_pareto(rows, tmp_path / "latency.png", "latency_ms")
    for path in (curves, macs, latency):
        assert np.std(_image(path)) > 0.05
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically
    no_latency = [r for r in rows if r["latency_ms"] is None]
    assert plots.plot_pareto(no_latency, tmp_path / "none.png", "latency_ms") is None
    assert plots.plot_curves([dict(r, history=[]) for r in rows], tmp_path / "c2.png") is None


def test_labels_of_nearby_points_do_not_overlap():
    fig = plots.figure(5, 4)
    ax = fig.subplots()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    names = [f"model_{i}" for i in range(6)]
    points = [5 + 0.01 * i for i in range(6)]
    assert plots.label_points(fig, [plots.Points(ax, names, points, points)])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]  # without leader lines
    assert sorted(t.get_text() for t in ax.texts) == names
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_same_model_runs_are_labelled_apart(runs):
    rows = rt.read_runs([runs])
    labels = {rt.label_of(r, rows) for r in rows}
    assert len(labels) == len(rows)
    assert rt.label_of(rows[0], rows[:1]) == "lenet5"


def test_runs_named_by_relative_and_absolute_folders_are_charted(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(runs)
    out = tmp_path / "charts"
    assert main(["runs", "a", str(runs / "b"), "--plot", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "curves.png",
        "pareto_latency.png",
        "pareto_macs.png",
    ]
    rows = rt.read_runs(["a", runs / "b"])
    assert sorted(rt.label_of(r, rows) for r in rows) == [
        "lenet5 (a/1)",
        "lenet5 (b/1)",
        "lenet5 (b/2)",
    ]


def test_runs_without_validation_are_in_the_legend_and_get_no_empty_panel(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    make_run(tmp_path, "val", test_top1=90.0)
    make_run(tmp_path, "noval", model="resnet20", test_top1=80.0)
    metrics = tmp_path / "noval" / "metrics.csv"  # trained with val_split=0: no val columns
    metrics.write_text("epoch,lr,train/loss,train/top1,time\n1,0.1,2.0,40.0,1.0\n")
    rows = rt.read_runs([tmp_path])
    fig = plots.curves_figure(rows)
    (legend,) = fig.legends
    assert sorted(t.get_text() for t in legend.get_texts()) == ["lenet5", "resnet20 (no val)"]
    assert [ax.get_title() for ax in fig.axes] == ["validation top-1 (%)", "training loss"]
    only_loss = plots.curves_figure([r for r in rows if r["model"] == "resnet20"])
    assert [ax.get_title() for ax in only_loss.axes] == ["training loss"]
    assert [t.get_text() for t in only_loss.legends[0].get_texts()] == ["resnet20"]


def _labels_inside_their_axes(fig):
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        frame = ax.get_window_extent(renderer)
        for text in ax.texts:
            box = text.get_window_extent(renderer)
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1, text.get_text()


def test_pareto_ticks_read_plainly_and_labels_stay_inside(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path / "cache"))
    make_run(tmp_path, "a", test_top1=91.0)  # 417K MACs, alone: a range of less than a decade
    fig = plots.pareto_figure(rt.read_runs([tmp_path]), "macs")
    fig.canvas.draw()
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True)]
    assert "200K" in ticks and "500K" in ticks
    assert not [t for t in ticks if "times" in t or "^" in t or "$" in t]  # no 4.158x10^5
    assert ax.get_ylim()[1] <= 100.0  # no accuracy axis above 100%
    # a long name at the right end of the axis goes to the left of its point
    rows = [dict(run=str(i), model=f"model_with_a_long_name_{i}", dataset="d", macs=10.0**i,
                 test_top1=50.0 + i) for i in range(4, 8)]  # fmt: skip
    fig = plots.pareto_figure(rows, "macs")
    _labels_inside_their_axes(fig)


def test_runs_of_different_data_sets_get_their_own_accuracy_axis():
    rows = [
        dict(run="a", model="lenet5", dataset="mnist", macs=4e5, test_top1=99.1),
        dict(run="b", model="resnet20", dataset="cifar10", macs=4e7, test_top1=91.0),
        dict(run="c", model="resnet56", dataset="cifar10", macs=1.2e8, test_top1=93.0),
    ]
    fig = plots.pareto_figure(rows, "macs")
    assert [ax.get_title() for ax in fig.axes] == ["mnist", "cifar10"]
    mnist, cifar = fig.axes
    assert mnist.get_ylim()[0] > 91.0 and cifar.get_ylim()[1] < 99.1  # not one shared range
    assert mnist.get_xlim() == cifar.get_xlim()  # one cost axis
    fronts = [[line for line in ax.lines if line.get_label() == "Pareto front"] for ax in fig.axes]
    assert [len(f[0].get_xdata()) for f in fronts] == [1, 2]


def test_the_status_column_says_how_each_run_ended(runs):
    from cnnzoo.rundir import STATUS as STATUS_FILE
    from cnnzoo.rundir import run_lock

    failed = make_run(runs, "failed", summary=False, val=(30.0, 31.0))
    (failed / STATUS_FILE).write_text(json.dumps(dict(status="failed", epoch=2, error="NaN")))
    status = {r["run"]: r["status"] for r in rt.read_runs([runs])}
    assert status[str(runs / "a" / "1")] == "finished"
    assert status[str(runs / "c" / "deep" / "1")] == "stopped at epoch 1"  # left no word
    assert status[str(failed)] == "failed at epoch 2"
    with run_lock(runs / "b" / "2"):
        assert rt.read_run(runs / "b" / "2")["status"] == "running"
    assert rt.read_run(runs / "b" / "2")["status"] == "finished"
    assert "| finished |" in rt.format_runs(rt.read_runs([runs]), "md")


def test_one_run_named_shows_its_epochs(runs, capsys):
    assert main(["runs", str(runs / "b" / "1")]) == 0
    out = capsys.readouterr().out
    assert f"epochs of {runs / 'b' / '1'}:" in out
    assert "| epoch | lr | train/loss | train/top1 | val/loss | val/top1 | time |" in out
    assert "| 3 | 0.1 | 0.6667 | 90.00 | 0.3333 | 95.00 | 10.0 s |" in out
    assert main(["runs", str(runs)]) == 0
    assert "epochs of" not in capsys.readouterr().out  # a folder of runs: the table alone
