import json

import numpy as np
import torch
from matplotlib import image as mpimg

from cnnzoo.analysis.report import machine_info, summary_markdown, write_reports

PNG = b"\x89PNG\r\n\x1a\n"


def _row(epoch, val=True):
    row = {
        "epoch": epoch,
        "lr": 0.1 / epoch,
        "train/loss": 2.0 / epoch,
        "train/top1": 40.0 + epoch,
        "time": 1.5,
    }
    if val:
        row.update({"val/loss": 2.2 / epoch, "val/top1": 38.0 + epoch, "val/top5": 80.0})
    return row


SUMMARY = {
    "model": "lenet5",
    "dataset": "digits",
    "params": 61706,
    "macs": 416520,
    "epochs": 3,
    "train_time_s": 4.5,
    "test/loss": 0.12,
    "test/top1": 97.25,
    "test/top5": 100.0,
    "per_class_top1": {"zero": 100.0, "one": 90.0, "two": float("nan")},
}


def test_writes_all_reports(tmp_path):
    history = [_row(e) for e in (1, 2, 3)]
    confusion = [[9, 1, 0], [2, 8, 0], [0, 0, 0]]
    written = write_reports(
        tmp_path, history, confusion=confusion, class_names=["zero", "one", "two"], summary=SUMMARY
    )
    assert set(written) == {"curves", "confusion", "summary_json", "summary_md"}
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
        assert mpimg.imread(tmp_path / name).shape[0] > 100
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test/top1"] == 97.25 and summary["params"] == 61706
    assert summary["per_class_top1"]["two"] is None  # NaN is not JSON
    assert summary["machine"]["torch"] == torch.__version__
    md = (tmp_path / "summary.md").read_text()
    assert md.startswith("# lenet5 on digits")
    assert (
        "97.25%" in md
        and "61.71K" in md
        and "two" not in md.split("weakest classes:")[1].split("\n")[0]
    )
    assert not list(tmp_path.glob("*.tmp"))


def test_one_epoch_without_validation(tmp_path):
    write_reports(
        tmp_path,
        [_row(1, val=False)],
        confusion=np.eye(2, dtype=int) * 5,
        class_names=None,
        summary={},
    )
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG
    assert (tmp_path / "confusion.png").is_file()
    assert json.loads((tmp_path / "summary.json").read_text())["machine"]["cpu_count"] >= 1
    assert (tmp_path / "summary.md").read_text().startswith("# cnnzoo run")


def test_regression_history_and_no_confusion(tmp_path):
    history = [
        {
            "epoch": e,
            "lr": 1e-3,
            "train/loss": 1.0 / e,
            "train/mae": 0.8 / e,
            "val/rmse": 1.1 / e,
            "val/top1": 50.0,
        }
        for e in (1, 2)
    ]
    written = write_reports(
        tmp_path / "new", history, confusion=None, class_names=None, summary={"test/mae": 0.4}
    )
    assert "confusion" not in written and not (tmp_path / "new" / "confusion.png").exists()
    assert (tmp_path / "new" / "curves.png").is_file()


def test_many_classes_and_tensor_inputs(tmp_path):
    counts = torch.randint(0, 5, (100, 100))
    summary = {"test/top1": torch.tensor(12.5), "value": np.float32(0.5), "path": tmp_path}
    write_reports(
        tmp_path, [], confusion=counts, class_names=[f"c{i}" for i in range(100)], summary=summary
    )
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["test/top1"] == 12.5 and data["value"] == 0.5 and data["path"] == str(tmp_path)
    assert (tmp_path / "confusion.png").is_file() and not (tmp_path / "curves.png").exists()


def test_machine_info_and_markdown():
    info = machine_info()
    assert {"platform", "cpu", "cpu_count", "python", "torch"} <= set(info)
    md = summary_markdown({"model": "m", "train_time_s": 300.0, "test/top1": None})
    assert "5.0 min" in md and "n/a" in md
