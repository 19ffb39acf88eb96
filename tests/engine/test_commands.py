import json

import pytest
import torch
from PIL import Image

import cnnzoo.commands.test as commands
from cnnzoo.cli import main


def _one_line_error(capsys, code, expected):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err


@pytest.fixture
def tiny_config(make_cfg, tmp_path):
    make_cfg()  # writes tiny.py and sets CNNZOO_CACHE
    return str(tmp_path / "tiny.py")


def test_train_test_predict_round_trip(fake_data, tiny_config, tmp_path, monkeypatch, capsys):
    work = tmp_path / "w"
    args = [
        "train",
        tiny_config,
        "--cfg-options",
        "train_cfg.max_epochs=1",
        "device=cpu",
        "--work-dir",
        str(work),
        "--quiet",
    ]
    assert main(args) == 0
    run_dir = next((work / "tiny").iterdir())
    assert f"run dir: {run_dir}" in capsys.readouterr().out

    monkeypatch.setattr(commands, "build_data", lambda *a, **k: fake_data[-1])
    assert main(["test", str(run_dir), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "top1" in out and "test_report.md" in out
    report = json.loads((run_dir / "test_report.json").read_text())
    assert (
        report["samples"] == 40
        and len(report["confusion"]) == 10
        and "c3" in report["per_class_top1"]
    )
    assert (run_dir / "test_report.md").read_text().startswith("# Test report: lenet5")
    # printed as training prints its scores (99.14, not 99.1400)
    top1 = json.loads((run_dir / "summary.json").read_text())["test/top1"]
    assert out.startswith(f"test  loss {report['loss']:.4g}  top1 {top1:.4g}  top5 ")
    # two data roots named alike keep their reports apart
    for parent in ("a", "b"):
        (tmp_path / parent / "data").mkdir(parents=True)
        assert (
            main(["test", str(run_dir), "--quiet", "--data", str(tmp_path / parent / "data")]) == 0
        )
    reports = sorted(p.name for p in run_dir.glob("test_report-data-*.json"))
    assert len(reports) == 2, reports
    capsys.readouterr()

    img = tmp_path / "digit.png"
    Image.fromarray((torch.rand(28, 28) * 255).byte().numpy(), mode="L").save(img)
    assert main(["predict", str(run_dir), str(img), "--topk", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == str(img) and len(lines) == 4 and lines[1].strip().startswith("1. c")
    assert sum(float(line.split()[-1]) for line in lines[1:]) <= 1.0


def test_user_errors_exit_2_with_one_line(fake_data, tiny_config, tmp_path, capsys):
    _one_line_error(
        capsys, main(["train", tiny_config, "--cfg-options", "optimizer.lrr=0.1"]), "optimizer.lrr"
    )
    _one_line_error(capsys, main(["train", str(tmp_path / "nope.py")]), "nope")
    _one_line_error(
        capsys, main(["train", tiny_config, "--resume", str(tmp_path)]), "not a run directory"
    )
    for argv in (["train", tiny_config, "--resume"], ["train", "--resume"]):  # with, without
        _one_line_error(  # was: "TMP holds no config.yaml", the parent of the missing path
            capsys, main([*argv, str(tmp_path / "gone")]), f"{tmp_path / 'gone'} does not exist"
        )
    _one_line_error(
        capsys, main(["train", tiny_config, "--gpus", "64"]), "--gpus 64 asks for 64 GPUs"
    )
    _one_line_error(
        capsys,
        main(["test", str(tmp_path / "missing")]),
        "neither a run directory nor a checkpoint",
    )
    torch.save({"w": torch.zeros(100)}, tmp_path / "bad.pt")
    (tmp_path / "bad.pt").write_bytes((tmp_path / "bad.pt").read_bytes()[:300])
    _one_line_error(
        capsys, main(["predict", str(tmp_path / "bad.pt"), "x.png"]), "corrupt or truncated"
    )


def _raise_in_epoch_2(monkeypatch, error: BaseException) -> None:
    """Train on the fake data, with ``error`` raised as epoch 2 starts drawing batches."""
    from fakes import FakeBundle

    import cnnzoo.engine.trainer as trainer

    def build(*a, **k):
        bundle = FakeBundle()
        real_iter = type(bundle.train).__iter__

        def it(self):
            if self.epoch == 2:
                raise error
            yield from real_iter(self)

        monkeypatch.setattr(type(bundle.train), "__iter__", it)
        return bundle

    monkeypatch.setattr(trainer, "build_data", build)


def _train_args(config: str, work) -> list[str]:
    return ["train", config, "--cfg-options", "device=cpu", "--work-dir", str(work), "--quiet"]


def test_ctrl_c_exits_130_and_says_how_to_resume(
    fake_data, tiny_config, tmp_path, monkeypatch, capsys
):
    _raise_in_epoch_2(monkeypatch, KeyboardInterrupt())
    assert main(_train_args(tiny_config, tmp_path / "w")) == 130
    err = capsys.readouterr().err
    assert "checkpoint of epoch 1 is kept" in err and "resume with: cnnzoo train --resume " in err


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4 GB"),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
    ids=["cpu", "cuda"],
)
def test_out_of_memory_is_one_line_with_what_to_lower_and_keeps_the_checkpoint(
    error, fake_data, tiny_config, tmp_path, monkeypatch, capsys
):
    _raise_in_epoch_2(monkeypatch, error)
    assert main(_train_args(tiny_config, tmp_path / "w")) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of memory" in err[0] and "batch_size" in err[0], err
    last = next((tmp_path / "w" / "tiny").iterdir()) / "checkpoints" / "last.pt"
    assert torch.load(last, weights_only=True)["epoch"] == 1


def test_other_runtime_errors_are_not_taken_for_memory(fake_data, tiny_config, monkeypatch):
    import cnnzoo.engine.trainer as trainer

    def broken(*a, **k):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(trainer, "build_data", broken)
    with pytest.raises(RuntimeError, match="mat1"):
        main(["train", tiny_config, "--cfg-options", "device=cpu", "--quiet"])


def test_quick_start_path_on_real_digits(make_cfg, tmp_path, capsys):
    """`cnnzoo train` without a config: LeNet-5 on scikit-learn's digits (one epoch here)."""
    code = main(
        ["train", "--cfg-options", "train_cfg.max_epochs=1", "--work-dir", str(tmp_path), "--quiet"]
    )
    assert code == 0
    run_dir = next((tmp_path / "quickstart_lenet5_digits").iterdir())
    for name in (
        "curves.png",
        "confusion.png",
        "summary.json",
        "summary.md",
        "metrics.csv",
        "config.yaml",
    ):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test/top1"] > 60.0  # one epoch of the quick start
